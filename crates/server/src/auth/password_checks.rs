//! A bound on the password checks running at once, and on the memory they keep. Each Argon2id
//! check holds about 19 MiB (the `argon2` crate's default memory cost) for its tens of
//! milliseconds; without a bound, 60 sign-ins sent at once grew the server by 1.1 GB. And the
//! allocator keeps a freed block for reuse by the thread that freed it, so checks spread over
//! Tokio's blocking pool (hundreds of threads) would leave a block behind on each of them.
//!
//! So checks run on `PASSWORD_CHECK_THREADS` threads of their own (the memory they keep is
//! bounded by that count), at most `MAX_WAITING_PASSWORD_CHECKS` more wait their turn, and the
//! sign-in endpoint refuses any beyond that with `TOO_MANY_ATTEMPTS_TRY_LATER`. A check that
//! is running or waiting holds its place until it has run, even if its client hung up.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// Threads that run password checks: about 76 MiB of Argon2 memory at most.
pub const PASSWORD_CHECK_THREADS: usize = 4;
/// Checks that may wait for a thread (a burst of tablets signing in at opening time); each
/// waits with its small request only.
pub const MAX_WAITING_PASSWORD_CHECKS: usize = 28;

type Job = Box<dyn FnOnce() + Send>;

/// The password-check threads of one server; they end when this is dropped.
pub struct PasswordCheckPool {
    /// Running plus waiting checks.
    admitted: Arc<Semaphore>,
    jobs: SyncSender<Job>,
}

/// Why a check did not run.
#[derive(Debug, thiserror::Error)]
pub enum PasswordCheckError {
    /// Every thread is busy and the waiting places are taken.
    #[error("the server is checking as many passwords as it will at once")]
    Busy,
    /// The check panicked on its thread.
    #[error("the password check did not finish")]
    Failed,
}

impl Default for PasswordCheckPool {
    fn default() -> Self {
        PasswordCheckPool::new(PASSWORD_CHECK_THREADS, MAX_WAITING_PASSWORD_CHECKS)
    }
}

impl PasswordCheckPool {
    pub fn new(threads: usize, waiting: usize) -> PasswordCheckPool {
        let (jobs, queue) = sync_channel::<Job>(threads + waiting);
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads {
            let queue = Arc::clone(&queue);
            // If a thread cannot be started the pool has fewer threads; checks still run.
            let _ = std::thread::Builder::new()
                .name(format!("password-check-{index}"))
                .spawn(move || run_jobs(&queue));
        }
        PasswordCheckPool {
            admitted: Arc::new(Semaphore::new(threads + waiting)),
            jobs,
        }
    }

    /// Runs `check` on a password-check thread and waits for its result, or refuses at once
    /// when all the running and waiting places are taken.
    pub async fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordCheckError> {
        let place: OwnedSemaphorePermit = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| PasswordCheckError::Busy)?;
        let (result, received) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _place = place;
            let _ = result.send(check());
        });
        // The queue holds as many jobs as there are places, so it has room for this one.
        self.jobs
            .try_send(job)
            .map_err(|_| PasswordCheckError::Busy)?;
        received.await.map_err(|_| PasswordCheckError::Failed)
    }
}

/// One password-check thread: runs jobs until the pool is dropped.
fn run_jobs(queue: &Mutex<Receiver<Job>>) {
    loop {
        // A std Mutex held only while taking the next job, never while running it.
        let job = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            Ok(job) => {
                // A panicking check drops its result sender; the caller sees `Failed`.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_beyond_the_running_and_waiting_places_are_refused_until_one_ends() {
        let pool = Arc::new(PasswordCheckPool::new(1, 1));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let blocked = |hold: Arc<Mutex<std::sync::mpsc::Receiver<()>>>| {
            move || {
                let _ = hold.lock().unwrap().recv();
                std::thread::current().name().map(str::to_owned)
            }
        };
        let running = tokio::spawn({
            let pool = Arc::clone(&pool);
            let check = blocked(Arc::clone(&hold));
            async move { pool.run(check).await }
        });
        let waiting = tokio::spawn({
            let pool = Arc::clone(&pool);
            let check = blocked(Arc::clone(&hold));
            async move { pool.run(check).await }
        });
        // Both places are taken once both tasks have been admitted.
        while pool.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            pool.run(|| ()).await,
            Err(PasswordCheckError::Busy)
        ));
        release.send(()).unwrap();
        release.send(()).unwrap();
        let ran_on = running.await.unwrap().unwrap();
        assert_eq!(ran_on.as_deref(), Some("password-check-0"));
        waiting.await.unwrap().unwrap();
        assert_eq!(
            pool.run(|| 7).await.unwrap(),
            7,
            "the places are free again"
        );
    }
}
