//! What a shopkeeper does, as units of work: each action builds its records, audit entries and
//! document writes and hands them to the [`crate::sync::SyncDriver`] in one piece. Neither UI
//! (components call these) nor sync (the driver only stores and pushes what it is given).

pub mod products;
pub mod sale;
