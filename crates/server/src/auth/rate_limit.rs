//! Sign-in rate limiting: how many passwords a client may try, and how fast.
//!
//! The policy (also in the server README):
//! - **Per account and client network** (an IPv4 address, or an IPv6 /64, `client_network`):
//!   the first `FREE_FAILURES` failed sign-ins cost nothing; after that each attempt must wait
//!   `FIRST_DELAY_SECONDS` after the last failure, doubling with every further failure up to
//!   `MAX_DELAY_SECONDS`. A successful sign-in clears the pair; a pair is forgotten
//!   `PAIR_MEMORY_SECONDS` after its last failure. These are delays, not a lock of the account:
//!   a stranger failing for a cashier's email slows only the stranger's own network, and the
//!   cashier signing in from the shop is never refused because of them.
//! - **Per client network**, across every email: at most `MAX_NETWORK_FAILURES` failures within
//!   `NETWORK_WINDOW_SECONDS`; then attempts from that network are refused until the oldest
//!   failure leaves the window (guessing many accounts from one place).
//! - Refused attempts are answered `TOO_MANY_ATTEMPTS_TRY_LATER` without checking the password,
//!   and are not counted (a refusal does not prolong itself).
//!
//! Checking and counting are one step under one lock (`begin_attempt`): an attempt is counted
//! as a failure before its password is checked, and `AttemptReservation::succeeded` takes that
//! back. So parallel guesses see each other: of 40 guesses sent at once for one account, only
//! the free ones are checked. An attempt whose request is dropped mid-check stays a failure.
//!
//! In memory: a restart forgets the failures, which costs an attacker a restart they cannot
//! cause. Time is passed in, so tests move it without sleeping.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use crate::client_network::client_network;

/// Failed sign-ins per (account, network) that need no wait.
pub const FREE_FAILURES: u32 = 3;
/// The wait after the first failure beyond the free ones; it doubles with each further one.
pub const FIRST_DELAY_SECONDS: i64 = 5;
/// The longest wait between two attempts of one (account, network).
pub const MAX_DELAY_SECONDS: i64 = 15 * 60;
/// How long an (account, network) pair's failures are remembered after its last one.
pub const PAIR_MEMORY_SECONDS: i64 = 60 * 60;
/// Failures one network may make across all emails within `NETWORK_WINDOW_SECONDS`.
pub const MAX_NETWORK_FAILURES: usize = 30;
pub const NETWORK_WINDOW_SECONDS: i64 = 5 * 60;
/// Past this many tracked keys, keys whose failures are forgotten are dropped, so a flood of
/// made-up emails does not keep memory it no longer needs.
const PRUNE_ABOVE_KEYS: usize = 10_000;

/// An attempt refused by the limit: the client may try again after this many seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter {
    pub seconds: i64,
}

/// The failures of one (account, network) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PairFailures {
    count: u32,
    last_failure: i64,
}

type PairKey = (String, Option<IpAddr>);

#[derive(Default)]
struct LimiterState {
    pairs: HashMap<PairKey, PairFailures>,
    /// Failure times per network, oldest first.
    networks: HashMap<IpAddr, VecDeque<i64>>,
}

/// Failed sign-ins per (account, network) and per network.
#[derive(Default)]
pub struct SignInRateLimiter {
    /// A std Mutex: held only for a few map operations, never across an `.await`.
    state: Mutex<LimiterState>,
}

/// The wait an (account, network) pair with `failures` failures owes after its last one.
pub fn delay_after_failures(failures: u32) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let doublings = (failures - FREE_FAILURES).min(32);
    FIRST_DELAY_SECONDS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_DELAY_SECONDS)
}

/// An attempt admitted by the limit and already counted as a failure. Dropping it keeps the
/// failure; `succeeded` and `withdraw` take it back.
#[must_use = "an admitted attempt is a failure unless it is settled"]
pub struct AttemptReservation<'a> {
    limiter: &'a SignInRateLimiter,
    pair: PairKey,
    network: Option<IpAddr>,
    now: i64,
    /// The pair's failures before this attempt was counted.
    previous: Option<PairFailures>,
}

impl AttemptReservation<'_> {
    /// The password was right: the pair's failures are cleared, and this attempt is not a
    /// failure of its network.
    pub fn succeeded(self) {
        let mut state = self.limiter.lock();
        state.pairs.remove(&self.pair);
        self.uncount_network_failure(&mut state);
    }

    /// The attempt was not made after all (the server was too busy to check the password):
    /// everything is as if it had never been admitted.
    pub fn withdraw(self) {
        let mut state = self.limiter.lock();
        match self.previous {
            Some(previous) => {
                state.pairs.insert(self.pair.clone(), previous);
            }
            None => {
                state.pairs.remove(&self.pair);
            }
        }
        self.uncount_network_failure(&mut state);
    }

    fn uncount_network_failure(&self, state: &mut LimiterState) {
        let Some(network) = self.network else { return };
        if let Some(times) = state.networks.get_mut(&network) {
            if let Some(position) = times.iter().rposition(|&time| time == self.now) {
                times.remove(position);
            }
        }
    }
}

impl SignInRateLimiter {
    /// Admits a sign-in for `email` from `address` at `now`, counting it as a failure at once,
    /// or refuses it with the wait the client owes.
    pub fn begin_attempt(
        &self,
        email: &str,
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<AttemptReservation<'_>, RetryAfter> {
        let network = address.map(client_network);
        let pair: PairKey = (email.to_owned(), network);
        let mut state = self.lock();
        if state.pairs.len() + state.networks.len() > PRUNE_ABOVE_KEYS {
            prune(&mut state, now);
        }
        let previous = state
            .pairs
            .get(&pair)
            .copied()
            .filter(|failures| now - failures.last_failure < PAIR_MEMORY_SECONDS);
        if let Some(failures) = previous {
            let allowed_at = failures.last_failure + delay_after_failures(failures.count);
            if now < allowed_at {
                return Err(RetryAfter {
                    seconds: allowed_at - now,
                });
            }
        }
        if let Some(network) = network {
            let times = state.networks.entry(network).or_default();
            forget_old(times, now);
            if times.len() >= MAX_NETWORK_FAILURES {
                let oldest = times.front().copied().unwrap_or(now);
                return Err(RetryAfter {
                    seconds: (oldest + NETWORK_WINDOW_SECONDS - now).max(1),
                });
            }
            times.push_back(now);
        }
        state.pairs.insert(
            pair.clone(),
            PairFailures {
                count: previous.map_or(0, |failures| failures.count) + 1,
                last_failure: now,
            },
        );
        Ok(AttemptReservation {
            limiter: self,
            pair,
            network,
            now,
            previous,
        })
    }

    fn lock(&self) -> MutexGuard<'_, LimiterState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn prune(state: &mut LimiterState, now: i64) {
    state
        .pairs
        .retain(|_, failures| now - failures.last_failure < PAIR_MEMORY_SECONDS);
    state.networks.retain(|_, times| {
        forget_old(times, now);
        !times.is_empty()
    });
}

fn forget_old(times: &mut VecDeque<i64>, now: i64) {
    while times
        .front()
        .is_some_and(|&time| time <= now - NETWORK_WINDOW_SECONDS)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    /// Makes a failed attempt and says whether it was admitted.
    fn fail(limiter: &SignInRateLimiter, email: &str, from: &str, now: i64) -> bool {
        limiter.begin_attempt(email, address(from), now).is_ok()
    }

    #[test]
    fn delays_grow_from_the_fourth_failure_and_stop_at_the_ceiling() {
        let delays: Vec<i64> = (0..12).map(delay_after_failures).collect();
        assert_eq!(
            delays,
            [0, 0, 0, 5, 10, 20, 40, 80, 160, 320, 640, 900],
            "failures 0..12"
        );
        assert_eq!(delay_after_failures(u32::MAX), MAX_DELAY_SECONDS);
    }

    #[test]
    fn a_pair_waits_after_its_free_failures_and_others_are_not_slowed() {
        let limiter = SignInRateLimiter::default();
        for second in 0..3 {
            assert!(fail(&limiter, "a@x.com", "192.0.2.7", 100 + second));
        }
        // The fourth attempt owes 5 s after the third failure (at 102).
        assert_eq!(
            limiter
                .begin_attempt("a@x.com", address("192.0.2.7"), 104)
                .err(),
            Some(RetryAfter { seconds: 3 })
        );
        // The same account from another network, and another account from this one, are free.
        assert!(fail(&limiter, "a@x.com", "198.51.100.1", 104));
        assert!(fail(&limiter, "b@x.com", "192.0.2.7", 104));
        assert!(fail(&limiter, "a@x.com", "192.0.2.7", 107));
        // Now 10 s after 107.
        assert!(!fail(&limiter, "a@x.com", "192.0.2.7", 116));
        assert!(fail(&limiter, "a@x.com", "192.0.2.7", 117));
        // An hour after the last failure the pair is forgotten.
        assert!(fail(
            &limiter,
            "a@x.com",
            "192.0.2.7",
            117 + PAIR_MEMORY_SECONDS
        ));
        assert!(fail(
            &limiter,
            "a@x.com",
            "192.0.2.7",
            117 + PAIR_MEMORY_SECONDS
        ));
    }

    #[test]
    fn parallel_attempts_are_counted_before_any_password_is_checked() {
        let limiter = SignInRateLimiter::default();
        let admitted: Vec<_> = (0..40)
            .filter_map(|_| {
                limiter
                    .begin_attempt("a@x.com", address("192.0.2.7"), 100)
                    .ok()
            })
            .collect();
        assert_eq!(admitted.len(), FREE_FAILURES as usize);
        drop(admitted);
    }

    #[test]
    fn success_clears_the_pair_and_a_withdrawn_attempt_leaves_no_trace() {
        let limiter = SignInRateLimiter::default();
        for _ in 0..2 {
            assert!(fail(&limiter, "a@x.com", "192.0.2.7", 0));
        }
        limiter
            .begin_attempt("a@x.com", address("192.0.2.7"), 0)
            .unwrap()
            .succeeded();
        for _ in 0..2 {
            assert!(fail(&limiter, "a@x.com", "192.0.2.7", 1));
        }
        for _ in 0..5 {
            limiter
                .begin_attempt("a@x.com", address("192.0.2.7"), 1)
                .unwrap()
                .withdraw();
        }
        assert!(fail(&limiter, "a@x.com", "192.0.2.7", 1));
        assert!(!fail(&limiter, "a@x.com", "192.0.2.7", 1));
    }

    #[test]
    fn a_network_has_a_budget_across_emails_and_ipv6_counts_by_its_slash_64() {
        let limiter = SignInRateLimiter::default();
        for attempt in 0..MAX_NETWORK_FAILURES {
            // Every address of one /64 is the same network.
            let from = format!("2001:db8:1:2::{:x}", attempt + 1);
            assert!(fail(&limiter, &format!("guess{attempt}@x.com"), &from, 10));
        }
        assert_eq!(
            limiter
                .begin_attempt("owner@x.com", address("2001:db8:1:2:ffff::1"), 20)
                .err(),
            Some(RetryAfter {
                seconds: NETWORK_WINDOW_SECONDS - 10
            })
        );
        assert!(fail(&limiter, "owner@x.com", "2001:db8:1:3::1", 20));
        assert!(fail(
            &limiter,
            "owner@x.com",
            "2001:db8:1:2::1",
            10 + NETWORK_WINDOW_SECONDS
        ));
    }
}
