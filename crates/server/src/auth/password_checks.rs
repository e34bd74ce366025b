//! A bound on the password checks running at once. Each Argon2id check holds about 19 MiB
//! (the `argon2` crate's default memory cost) for its tens of milliseconds, so without a bound
//! 60 sign-ins sent at once grew the server by 1.1 GB. At most `MAX_RUNNING_PASSWORD_CHECKS`
//! run, at most `MAX_WAITING_PASSWORD_CHECKS` more wait their turn, and the sign-in endpoint
//! refuses any beyond that with `TOO_MANY_ATTEMPTS_TRY_LATER` before reading the stored hash.
//!
//! A running slot is owned by the blocking task that runs the check, so a client that hangs up
//! mid-check does not free its slot before the memory is.

use std::sync::Arc;

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// Password checks that may run at once: about 76 MiB of Argon2 memory at most.
pub const MAX_RUNNING_PASSWORD_CHECKS: usize = 4;
/// Password checks that may wait for a running slot (a burst of tablets signing in at
/// opening time); each waits with its small request only.
pub const MAX_WAITING_PASSWORD_CHECKS: usize = 28;

/// The slots of one server.
pub struct PasswordCheckSlots {
    /// Running plus waiting checks.
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

/// A check admitted to wait for a running slot.
pub struct AdmittedPasswordCheck {
    admitted: OwnedSemaphorePermit,
    running: Arc<Semaphore>,
}

/// The right to run one password check; hold it until the check has returned.
pub struct RunningPasswordCheck {
    _admitted: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
}

impl Default for PasswordCheckSlots {
    fn default() -> Self {
        PasswordCheckSlots::new(MAX_RUNNING_PASSWORD_CHECKS, MAX_WAITING_PASSWORD_CHECKS)
    }
}

impl PasswordCheckSlots {
    pub fn new(running: usize, waiting: usize) -> PasswordCheckSlots {
        PasswordCheckSlots {
            admitted: Arc::new(Semaphore::new(running + waiting)),
            running: Arc::new(Semaphore::new(running)),
        }
    }

    /// A place among the running or waiting checks, or `None` when they are all taken.
    pub fn try_admit(&self) -> Option<AdmittedPasswordCheck> {
        let admitted = Arc::clone(&self.admitted).try_acquire_owned().ok()?;
        Some(AdmittedPasswordCheck {
            admitted,
            running: Arc::clone(&self.running),
        })
    }
}

impl AdmittedPasswordCheck {
    /// Waits for a running slot. Fails only if the slots were closed, which this server never
    /// does.
    pub async fn until_running(self) -> Result<RunningPasswordCheck, AcquireError> {
        let running = self.running.acquire_owned().await?;
        Ok(RunningPasswordCheck {
            _admitted: self.admitted,
            _running: running,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_beyond_the_running_and_waiting_slots_are_refused_until_one_ends() {
        let slots = PasswordCheckSlots::new(2, 1);
        let first = slots.try_admit().unwrap().until_running().await.unwrap();
        let _second = slots.try_admit().unwrap().until_running().await.unwrap();
        let waiting = slots.try_admit().unwrap();
        assert!(slots.try_admit().is_none(), "two running and one waiting");
        drop(first);
        let _third = waiting.until_running().await.unwrap();
        assert!(slots.try_admit().is_some(), "the first check ended");
    }
}
