//! Records of triggers: schedules and bucket notifications.

use serde::{Deserialize, Serialize};

/// A trigger as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerRecord {
    /// Trigger name (unique).
    pub name: String,
    /// Function it invokes.
    pub function: String,
    /// Qualifier it invokes, if any.
    pub qualifier: Option<String>,
    /// Disabled triggers do not fire.
    pub enabled: bool,
    /// Creation time (ms since the epoch); `rate()` counts from here.
    pub created_ms: i64,
    /// What starts it.
    pub source: TriggerSource,
    /// Events queued by this trigger.
    #[serde(default)]
    pub fired: u64,
}

/// What starts a trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TriggerSource {
    /// A `cron()` or `rate()` schedule.
    Schedule {
        /// The expression.
        expression: String,
        /// Constant JSON input instead of the Scheduled Event.
        input: Option<String>,
        /// The last due time that fired or was skipped (ms), if any.
        last_due_ms: Option<i64>,
    },
    /// Notifications of one bucket.
    Bucket {
        /// Bucket name.
        bucket: String,
        /// Normalized event patterns.
        events: Vec<String>,
        /// Decoded-key prefix.
        prefix: String,
        /// Decoded-key suffix.
        suffix: String,
        /// S3 profile used to configure the bucket, if kumod did.
        configured_with: Option<String>,
    },
    /// An API-Gateway-style HTTP route.
    Http {
        /// Route template, normalized.
        path: String,
        /// Allowed methods (empty = any).
        methods: Vec<String>,
        /// "1.0" or "2.0".
        payload_format: String,
    },
}

/// What must be written in the same transaction as a new event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventCompanion {
    /// Nothing.
    None,
    /// A schedule fired: its record with the new `last_due_ms`, so a
    /// restart neither fires the same due time again nor loses it.
    Fired(Box<TriggerRecord>),
    /// A bucket event: its identity, so a redelivery is not queued twice.
    /// Holds the key to remember and the time it was first seen (ms).
    Delivery {
        /// Identity of the delivery (see `BucketEvent::identity`).
        key: String,
        /// When it was first seen.
        seen_ms: i64,
    },
}
