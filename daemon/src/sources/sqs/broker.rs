//! What a poller needs of a message broker: receive a few messages with a
//! long poll, delete those handled. SQS is one implementation
//! ([`super::client::SqsQueue`]); another broker is one more.

use std::future::Future;
use std::time::Duration;

use serde_json::{Map, Value};

/// A broker call failed.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {message}")]
pub struct BrokerError {
    /// The operation.
    pub op: &'static str,
    /// What went wrong.
    pub message: String,
}

impl BrokerError {
    /// An error of `op`.
    pub fn new(op: &'static str, message: impl std::fmt::Display) -> Self {
        Self {
            op,
            message: message.to_string(),
        }
    }
}

/// One received message, invisible to other receivers until it is
/// deleted or its visibility timeout passes.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The message id (`messageId`, `itemIdentifier`).
    pub id: String,
    /// The handle that deletes it.
    pub receipt: String,
    /// The body as sent.
    pub body: String,
    /// MD5 of the body, hex.
    pub md5_of_body: String,
    /// System attributes (`ApproximateReceiveCount`, `SentTimestamp`, …).
    pub attributes: Map<String, Value>,
    /// Message attributes in Lambda's record shape.
    pub message_attributes: Map<String, Value>,
    /// FIFO message group.
    pub group: Option<String>,
}

/// A queue the pollers drain.
pub trait Broker: Clone + Send + Sync + 'static {
    /// Up to `max` messages, waiting up to `wait` for the first.
    fn receive(
        &self,
        max: u32,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Received>, BrokerError>> + Send;

    /// Deletes messages by receipt; answers how many the broker refused.
    fn delete(
        &self,
        receipts: &[String],
    ) -> impl Future<Output = Result<usize, BrokerError>> + Send;
}
