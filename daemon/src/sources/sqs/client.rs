//! The SQS side of a queue source: a client per AWS profile, looking a
//! queue up at create time (URL or ARN → URL, ARN, FIFO, visibility
//! timeout), and the receive/delete calls of the pollers, as a
//! [`Broker`](super::broker::Broker).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::config::{BehaviorVersion, Region};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::{json, Map, Value};

use super::broker::{Broker, BrokerError, Received};
use crate::aws_profiles::{AwsProfiles, ProfileError, Service};

/// Looking a queue up failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The profile is unknown or its secret unreadable.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The queue reference is neither an SQS URL nor an SQS ARN.
    #[error("--sqs-queue {0:?} is neither a queue URL (https://…/ACCOUNT/NAME) nor an ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)")]
    BadReference(String),
    /// The server refused or could not be reached.
    #[error("SQS {op} of queue {queue} (profile {profile}): {message}")]
    Request {
        /// The operation.
        op: &'static str,
        /// The queue as given.
        queue: String,
        /// The profile.
        profile: String,
        /// The SDK's error with its context.
        message: String,
    },
}

/// A queue as found at create time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// Its URL.
    pub url: String,
    /// Its ARN.
    pub arn: String,
    /// FIFO queue.
    pub fifo: bool,
    /// Its visibility timeout in seconds.
    pub visibility_timeout_seconds: u32,
}

/// An SQS client for a profile.
pub fn client(profiles: &AwsProfiles, name: &str) -> Result<aws_sdk_sqs::Client, ProfileError> {
    let (profile, credentials) = profiles.credentials(name)?;
    let mut builder = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(profile.region.clone()))
        .credentials_provider(credentials);
    let endpoint = profile.endpoint_of(Service::Sqs);
    if !endpoint.is_empty() {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(aws_sdk_sqs::Client::from_conf(builder.build()))
}

/// (account, name) of an `arn:PARTITION:sqs:REGION:ACCOUNT:NAME`.
fn parse_arn(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", _, account, name] if !account.is_empty() && !name.is_empty() => {
            Some((account, name))
        }
        _ => None,
    }
}

/// Finds a queue by URL or ARN and reads what a trigger needs of it;
/// an unknown queue or refused credentials are errors naming both.
pub async fn look_up(
    profiles: &AwsProfiles,
    profile: &str,
    queue: &str,
) -> Result<QueueInfo, QueueError> {
    let sqs = client(profiles, profile)?;
    let fail = |op: &'static str, message: String| QueueError::Request {
        op,
        queue: queue.to_string(),
        profile: profile.to_string(),
        message,
    };
    let url = if queue.starts_with("arn:") {
        let (account, name) =
            parse_arn(queue).ok_or_else(|| QueueError::BadReference(queue.to_string()))?;
        sqs.get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .send()
            .await
            .map_err(|e| fail("GetQueueUrl", DisplayErrorContext(&e).to_string()))?
            .queue_url
            .ok_or_else(|| fail("GetQueueUrl", "the answer has no QueueUrl".into()))?
    } else if queue.starts_with("https://") || queue.starts_with("http://") {
        queue.to_string()
    } else {
        return Err(QueueError::BadReference(queue.to_string()));
    };
    let answer = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .attribute_names(QueueAttributeName::FifoQueue)
        .send()
        .await
        .map_err(|e| fail("GetQueueAttributes", DisplayErrorContext(&e).to_string()))?;
    let attributes = answer.attributes.unwrap_or_default();
    let arn = attributes
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .ok_or_else(|| fail("GetQueueAttributes", "the answer has no QueueArn".into()))?;
    let visibility_timeout_seconds = attributes
        .get(&QueueAttributeName::VisibilityTimeout)
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let fifo = attributes
        .get(&QueueAttributeName::FifoQueue)
        .is_some_and(|v| v == "true");
    Ok(QueueInfo {
        url,
        arn,
        fifo,
        visibility_timeout_seconds,
    })
}

/// One SQS queue, polled.
#[derive(Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    /// The queue at `url` through this client.
    pub fn new(client: aws_sdk_sqs::Client, url: String) -> Self {
        Self { client, url }
    }
}

fn attributes_json(message: &aws_sdk_sqs::types::Message) -> Map<String, Value> {
    message
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_string(), json!(v)))
                .collect()
        })
        .unwrap_or_default()
}

fn message_attributes_json(message: &aws_sdk_sqs::types::Message) -> Map<String, Value> {
    use base64::Engine;
    let b64 = |b: &aws_sdk_sqs::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(b.as_ref())
    };
    let mut out = Map::new();
    let empty = HashMap::new();
    for (name, value) in message.message_attributes().unwrap_or(&empty) {
        let mut v = Map::new();
        if let Some(s) = value.string_value() {
            v.insert("stringValue".into(), json!(s));
        }
        if let Some(b) = value.binary_value() {
            v.insert("binaryValue".into(), json!(b64(b)));
        }
        v.insert("stringListValues".into(), json!(value.string_list_values()));
        v.insert(
            "binaryListValues".into(),
            Value::Array(
                value
                    .binary_list_values()
                    .iter()
                    .map(|b| json!(b64(b)))
                    .collect(),
            ),
        );
        v.insert("dataType".into(), json!(value.data_type()));
        out.insert(name.clone(), Value::Object(v));
    }
    out
}

impl Broker for SqsQueue {
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Received>, BrokerError> {
        let answer = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| BrokerError::new("ReceiveMessage", DisplayErrorContext(&e)))?;
        Ok(answer
            .messages()
            .iter()
            .filter_map(|m| {
                let attributes = attributes_json(m);
                Some(Received {
                    id: m.message_id()?.to_string(),
                    receipt: m.receipt_handle()?.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    md5_of_body: m.md5_of_body().unwrap_or_default().to_string(),
                    group: attributes
                        .get("MessageGroupId")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    attributes,
                    message_attributes: message_attributes_json(m),
                })
            })
            .collect())
    }

    async fn delete(&self, receipts: &[String]) -> Result<usize, BrokerError> {
        let mut failed = 0;
        for chunk in receipts.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, receipt)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                        .map_err(|e| BrokerError::new("DeleteMessageBatch", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let answer = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| BrokerError::new("DeleteMessageBatch", DisplayErrorContext(&e)))?;
            failed += answer.failed().len();
        }
        Ok(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_name_account_and_queue() {
        assert_eq!(
            parse_arn("arn:aws:sqs:us-east-1:123456789012:orders.fifo"),
            Some(("123456789012", "orders.fifo"))
        );
        assert_eq!(parse_arn("arn:aws:sns:us-east-1:1:t"), None);
        assert_eq!(parse_arn("arn:aws:sqs:us-east-1::q"), None);
        assert_eq!(parse_arn("arn:aws:sqs:us-east-1:1:q:extra"), None);
    }
}
