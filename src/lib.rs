//! Counterbook app.
