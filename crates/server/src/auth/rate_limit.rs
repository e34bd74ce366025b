//! Sign-in rate limiting: after `MAX_FAILURES` failed sign-ins within `WINDOW_SECONDS`, for one
//! email or from one IP address, further attempts for it are refused
//! (`TOO_MANY_ATTEMPTS_TRY_LATER`) without even checking the password, until the oldest failure
//! leaves the window. A successful sign-in clears the email's failures.
//!
//! In memory: a restart forgets the failures, which costs an attacker a restart they cannot
//! cause. Time is passed in, so tests move it without sleeping.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

pub const MAX_FAILURES: usize = 5;
pub const WINDOW_SECONDS: i64 = 300;
/// Past this many tracked keys, keys whose failures have all left the window are dropped, so
/// a flood of made-up emails cannot grow memory without bound.
const PRUNE_ABOVE_KEYS: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum AttemptKey {
    Email(String),
    Address(IpAddr),
}

/// Failed sign-in times per email and per client address.
#[derive(Default)]
pub struct SignInRateLimiter {
    /// A std Mutex: held only for a few map operations, never across an `.await`.
    failures: Mutex<HashMap<AttemptKey, VecDeque<i64>>>,
}

fn keys(email: &str, address: Option<IpAddr>) -> impl Iterator<Item = AttemptKey> {
    std::iter::once(AttemptKey::Email(email.to_owned())).chain(address.map(AttemptKey::Address))
}

impl SignInRateLimiter {
    /// Whether a sign-in for `email` from `address` must be refused at `now`.
    pub fn is_limited(&self, email: &str, address: Option<IpAddr>, now: i64) -> bool {
        let mut failures = self.lock();
        keys(email, address).any(|key| {
            failures.get_mut(&key).is_some_and(|times| {
                forget_old(times, now);
                times.len() >= MAX_FAILURES
            })
        })
    }

    pub fn record_failure(&self, email: &str, address: Option<IpAddr>, now: i64) {
        let mut failures = self.lock();
        if failures.len() > PRUNE_ABOVE_KEYS {
            failures.retain(|_, times| {
                forget_old(times, now);
                !times.is_empty()
            });
        }
        for key in keys(email, address) {
            let times = failures.entry(key).or_default();
            forget_old(times, now);
            times.push_back(now);
        }
    }

    pub fn record_success(&self, email: &str) {
        self.lock().remove(&AttemptKey::Email(email.to_owned()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AttemptKey, VecDeque<i64>>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn forget_old(times: &mut VecDeque<i64>, now: i64) {
    while times
        .front()
        .is_some_and(|&time| time <= now - WINDOW_SECONDS)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_the_email_and_the_address_for_the_window() {
        let limiter = SignInRateLimiter::default();
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        let other_address: IpAddr = "192.0.2.8".parse().unwrap();
        for second in 0..5 {
            assert!(!limiter.is_limited("a@x.com", Some(address), 100 + second));
            limiter.record_failure("a@x.com", Some(address), 100 + second);
        }
        assert!(limiter.is_limited("a@x.com", Some(other_address), 110));
        assert!(limiter.is_limited("b@x.com", Some(address), 110));
        assert!(!limiter.is_limited("b@x.com", Some(other_address), 110));
        // The first failure (at 100) leaves the window at 400.
        assert!(limiter.is_limited("a@x.com", None, 399));
        assert!(!limiter.is_limited("a@x.com", None, 400));
    }

    #[test]
    fn success_clears_the_email_but_not_the_address() {
        let limiter = SignInRateLimiter::default();
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..5 {
            limiter.record_failure("a@x.com", Some(address), 0);
        }
        limiter.record_success("a@x.com");
        assert!(!limiter.is_limited("a@x.com", None, 1));
        assert!(limiter.is_limited("a@x.com", Some(address), 1));
    }
}
