//! Records of triggers: schedules, bucket notifications, HTTP routes and
//! SQS queues.

use kumo_triggers::apigw::cors::Cors;
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
        /// "aws" (S3's event shape) or "minio" (MinIO's record verbatim);
        /// records written before the setting existed read as "" = aws.
        #[serde(default)]
        event_format: String,
    },
    /// An API-Gateway-style HTTP route.
    Http {
        /// Route template, normalized.
        path: String,
        /// Allowed methods (empty = any).
        methods: Vec<String>,
        /// "1.0" or "2.0".
        payload_format: String,
        /// `requestContext.stage` ("" in older records = `$default`).
        #[serde(default)]
        stage: String,
        /// `requestContext.apiId` ("" in older records = `kumo`).
        #[serde(default)]
        api_id: String,
        /// CORS handling, if configured.
        #[serde(default)]
        cors: Option<Cors>,
    },
    /// An SQS queue kumod polls.
    Sqs(SqsSettings),
    /// An SNS topic kumod's HTTP listener is subscribed to.
    Sns(SnsSettings),
}

/// The settings of an SNS event source (docs/wire-formats.md §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnsSettings {
    /// The topic's ARN.
    pub topic_arn: String,
    /// kumod's AWS profile for the topic.
    pub profile: String,
    /// Filter policy on message attributes (JSON text, validated).
    pub filter_policy: Option<String>,
    /// The subscription's ARN (`EventSubscriptionArn`).
    pub subscription_arn: String,
    /// The URL subscribed.
    pub endpoint: String,
}

/// The settings of an SQS event source (docs/wire-formats.md §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqsSettings {
    /// The queue's URL or ARN as given.
    pub queue: String,
    /// Its URL, resolved at create time.
    pub queue_url: String,
    /// Its ARN (`eventSourceARN`).
    pub queue_arn: String,
    /// FIFO queue.
    pub fifo: bool,
    /// kumod's AWS profile for the queue.
    pub profile: String,
    /// Messages per batch.
    pub batch_size: u32,
    /// Batching window in seconds.
    pub batch_window_seconds: u32,
    /// Most batches in flight (None: the reserved concurrency or 1000).
    pub max_concurrency: Option<u32>,
    /// The function reports partial failures.
    pub report_batch_item_failures: bool,
    /// Filter patterns (JSON text, validated).
    pub filters: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Records stored before `event_format`, `stage`, `api_id` and `cors`
    /// existed still load, with the defaults.
    #[test]
    fn records_written_before_the_newer_settings_still_load() {
        let bucket = r#"{"name":"uploads","function":"f","qualifier":null,"enabled":true,"created_ms":1,"source":{"Bucket":{"bucket":"images","events":["s3:ObjectCreated:*"],"prefix":"","suffix":"","configured_with":null}},"fired":0}"#;
        let record: TriggerRecord = serde_json::from_str(bucket).expect("old bucket record");
        assert!(matches!(
            &record.source,
            TriggerSource::Bucket { event_format, .. } if event_format.is_empty()
        ));
        let http = r#"{"name":"web","function":"f","qualifier":null,"enabled":true,"created_ms":1,"source":{"Http":{"path":"/a","methods":[],"payload_format":"1.0"}}}"#;
        let record: TriggerRecord = serde_json::from_str(http).expect("old HTTP record");
        assert!(matches!(
            &record.source,
            TriggerSource::Http { stage, api_id, cors: None, .. } if stage.is_empty() && api_id.is_empty()
        ));
        let again: TriggerRecord =
            serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(again, record);
    }
}
