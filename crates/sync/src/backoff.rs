//! Exponential backoff with full jitter, driven by a seeded generator so runs replay exactly.

/// A small, fast, seedable generator (SplitMix64); plenty for jitter, never for secrets.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..=max`.
    pub fn up_to(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            return self.next_u64();
        }
        self.next_u64() % (max + 1)
    }
}

/// Backoff policy: the n-th retry waits a uniformly random time in `0..=min(cap, base * 2^(n-1))`
/// ("full jitter"), so many tablets coming back online at once do not retry in lockstep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base_millis: u64,
    pub cap_millis: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_millis: 1_000,
            cap_millis: 5 * 60 * 1_000,
        }
    }
}

impl Backoff {
    /// The upper bound of the wait before retry number `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> u64 {
        let shift = attempt.saturating_sub(1).min(40);
        self.base_millis
            .saturating_mul(1u64 << shift)
            .min(self.cap_millis)
    }

    /// The wait before retry number `attempt`, never shorter than a server's `Retry-After`.
    pub fn delay(
        &self,
        attempt: u32,
        retry_after_millis: Option<u64>,
        rng: &mut SplitMix64,
    ) -> u64 {
        let jittered = rng.up_to(self.ceiling(attempt));
        jittered.max(retry_after_millis.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let backoff = Backoff {
            base_millis: 100,
            cap_millis: 1_000,
        };
        let ceilings: Vec<u64> = (1..=6).map(|n| backoff.ceiling(n)).collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(backoff.ceiling(u32::MAX), 1_000);
    }

    #[test]
    fn delays_stay_within_the_ceiling_and_honour_retry_after() {
        let backoff = Backoff::default();
        let mut rng = SplitMix64::new(7);
        let mut seen_small = false;
        let mut seen_large = false;
        for _ in 0..1_000 {
            let delay = backoff.delay(3, None, &mut rng);
            assert!(delay <= 4_000);
            seen_small |= delay < 1_000;
            seen_large |= delay > 3_000;
        }
        // Full jitter spreads over the whole range rather than clustering at the ceiling.
        assert!(seen_small && seen_large);
        assert!(backoff.delay(1, Some(30_000), &mut rng) >= 30_000);
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let backoff = Backoff::default();
        let run = |seed| {
            let mut rng = SplitMix64::new(seed);
            (1..10)
                .map(|n| backoff.delay(n, None, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }
}
