//! Syncing this device with the backend: the [`driver`] (the only code that awaits sync work,
//! feeding the sans-IO engines of `counterbook-sync`), the REST client [`remote`], the Listen
//! transport [`listen_channel`], [`tabs`] (one leader tab per browser profile), and who signs
//! the requests: [`identity`] (Firebase Auth's REST sign-in and refresh) and [`session`] (the
//! people signed in on this tablet, their tokens and PINs). [`background`] is the service
//! worker's way in: it drains the outbox on a Background Sync event with no page open.
//!
//! Only `remote`, `listen_channel` and `identity` touch the network; nothing here draws a
//! screen or knows what a shop action means: actions come in as finished units of work.

pub mod background;
pub mod change_log;
pub mod driver;
pub mod engine;
pub mod identity;
pub mod listen_channel;
pub mod remote;
pub mod session;
pub mod shop_people;
pub mod tabs;

pub use change_log::{ChangeLog, ChangesSince};
pub use driver::{DeadLetter, LastProblem, StartError, SyncDriver, SyncStatus};
