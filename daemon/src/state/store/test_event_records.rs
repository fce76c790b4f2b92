//! Saved test events: a named JSON event per function, kept for the web
//! console's Test tab (Lambda's console keeps the same per function).

use serde::{Deserialize, Serialize};

/// One saved test event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestEventRecord {
    /// The function it belongs to.
    pub function: String,
    /// Its name (unique per function).
    pub name: String,
    /// The event, JSON text as typed.
    pub event: String,
    /// RFC 3339 time it was last saved.
    pub saved: String,
}
