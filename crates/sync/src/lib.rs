//! Sync core.
