//! Records of the asynchronous queue: accepted events and dead letters.

use serde::{Deserialize, Serialize};

/// An accepted asynchronous event, kept until it succeeds or is
/// dead-lettered. Its id is also the request id of every attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Event id = Lambda request id (lowercase UUID).
    pub id: String,
    /// Function name.
    pub function: String,
    /// Qualifier the caller used, if any.
    pub qualifier: Option<String>,
    /// The event (JSON text, at most 256 KB).
    pub payload: String,
    /// When kumod accepted it (ms since the epoch).
    pub accepted_ms: i64,
    /// Not to be attempted before this time (retry delay or backoff).
    pub not_before_ms: i64,
    /// Attempts that ran the function and failed.
    pub attempts: u32,
    /// Consecutive re-queues for throttles or platform errors.
    pub backoffs: u32,
    /// Set while an attempt is running; found set at start-up, it means
    /// kumod stopped mid-attempt and the event may run twice.
    pub dispatched: bool,
    /// errorType of the last failure.
    pub last_error_type: String,
    /// errorMessage of the last failure.
    pub last_error_message: String,
    /// The function's last error document (JSON), if it ran.
    pub last_response: String,
    /// The dead letter this event replays, if any.
    pub replay_of: String,
}

/// Why an event was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeadLetterCondition {
    /// Every attempt failed.
    RetriesExhausted,
    /// The event grew older than the function's maximum event age.
    EventAgeExceeded,
    /// The function's reserved concurrency is 0.
    ZeroReservedConcurrency,
}

impl DeadLetterCondition {
    /// The name used in destination records and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RetriesExhausted => "RetriesExhausted",
            Self::EventAgeExceeded => "EventAgeExceeded",
            Self::ZeroReservedConcurrency => "ZeroReservedConcurrency",
        }
    }
}

/// An event that failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterRecord {
    /// The event id (= request id of its attempts).
    pub id: String,
    /// Function name.
    pub function: String,
    /// Qualifier the event was sent to.
    pub qualifier: Option<String>,
    /// The original event.
    pub payload: String,
    /// Why it failed for good.
    pub condition: DeadLetterCondition,
    /// errorType of the last failure.
    pub error_type: String,
    /// errorMessage of the last failure (at most 1 KB).
    pub error_message: String,
    /// Attempts that ran the function.
    pub attempts: u32,
    /// When the event was accepted (ms since the epoch).
    pub accepted_ms: i64,
    /// When it was dead-lettered.
    pub failed_ms: i64,
    /// The function's last error document, if it ran.
    pub response: String,
}
