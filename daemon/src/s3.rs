//! What kumod does with S3-compatible stores through its AWS profiles
//! (`crate::aws_profiles`): fetching packages and configuring a bucket's
//! MinIO webhook notifications. Uses aws-sdk-s3.

use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};

use crate::aws_profiles::Service;
pub use crate::aws_profiles::{AwsConfig as S3Config, AwsProfiles as S3Profiles, ProfileError};

/// An S3 operation failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The profile is unknown or its secret unreadable.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The store answered with an error or could not be reached.
    #[error("S3 {op} s3://{bucket}/{key} (profile {profile}): {message}")]
    Request {
        /// The operation.
        op: &'static str,
        /// The profile.
        profile: String,
        /// The bucket.
        bucket: String,
        /// The key, if any.
        key: String,
        /// The SDK's error with its context.
        message: String,
    },
    /// The object is larger than allowed.
    #[error("s3://{bucket}/{key} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

impl S3Profiles {
    /// A client for a profile.
    pub fn client(&self, name: &str) -> Result<aws_sdk_s3::Client, S3Error> {
        let (profile, credentials) = self.credentials(name)?;
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(profile.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(profile.path_style);
        let endpoint = profile.endpoint_of(Service::S3);
        if !endpoint.is_empty() {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(aws_sdk_s3::Client::from_conf(builder.build()))
    }

    /// Reads a function package, refusing objects over the package limit
    /// (both the CLI's and the management API's deploys from S3 use this).
    pub async fn get_package(
        &self,
        profile: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<u8>, S3Error> {
        let limit = kumo_proto::model::MAX_PACKAGE_ZIPPED_BYTES;
        self.get_object(profile, bucket, key, limit).await
    }

    /// Reads an object of at most `limit` bytes.
    pub async fn get_object(
        &self,
        profile: &str,
        bucket: &str,
        key: &str,
        limit: u64,
    ) -> Result<Vec<u8>, S3Error> {
        let fail = |op: &'static str, message: String| S3Error::Request {
            op,
            profile: profile.to_string(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            message,
        };
        let client = self.client(profile)?;
        let object = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| fail("GetObject", DisplayErrorContext(&e).to_string()))?;
        let size = object.content_length().unwrap_or(0).max(0) as u64;
        if size > limit {
            return Err(S3Error::TooLarge {
                bucket: bucket.to_string(),
                key: key.to_string(),
                size,
                limit,
            });
        }
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| fail("GetObject body", e.to_string()))?
            .into_bytes();
        if bytes.len() as u64 > limit {
            return Err(S3Error::TooLarge {
                bucket: bucket.to_string(),
                key: key.to_string(),
                size: bytes.len() as u64,
                limit,
            });
        }
        Ok(bytes.to_vec())
    }

    /// Adds (or replaces) the queue configuration `id` on `bucket` that
    /// sends `events` under `prefix`/`suffix` to the profile's MinIO
    /// webhook target, keeping the bucket's other configurations.
    pub async fn configure_bucket(
        &self,
        profile: &str,
        bucket: &str,
        binding: &BucketBinding<'_>,
    ) -> Result<(), S3Error> {
        let arn = self.profile(profile)?.webhook_arn();
        let mut rules = Vec::new();
        for (name, value) in [
            (FilterRuleName::Prefix, binding.prefix),
            (FilterRuleName::Suffix, binding.suffix),
        ] {
            if !value.is_empty() {
                rules.push(FilterRule::builder().name(name).value(value).build());
            }
        }
        let mut queue = QueueConfiguration::builder()
            .id(binding.id)
            .queue_arn(arn)
            .set_events(Some(
                binding
                    .events
                    .iter()
                    .map(|e| Event::from(e.as_str()))
                    .collect(),
            ));
        if !rules.is_empty() {
            queue = queue.filter(
                NotificationConfigurationFilter::builder()
                    .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                    .build(),
            );
        }
        let queue = queue.build().map_err(|e| S3Error::Request {
            op: "build QueueConfiguration",
            profile: profile.to_string(),
            bucket: bucket.to_string(),
            key: String::new(),
            message: e.to_string(),
        })?;
        self.edit_notifications(profile, bucket, binding.id, Some(queue))
            .await
    }

    /// Removes the queue configuration `id` from `bucket`.
    pub async fn unconfigure_bucket(
        &self,
        profile: &str,
        bucket: &str,
        id: &str,
    ) -> Result<(), S3Error> {
        self.edit_notifications(profile, bucket, id, None).await
    }

    async fn edit_notifications(
        &self,
        profile: &str,
        bucket: &str,
        id: &str,
        replacement: Option<QueueConfiguration>,
    ) -> Result<(), S3Error> {
        let fail = |op: &'static str, message: String| S3Error::Request {
            op,
            profile: profile.to_string(),
            bucket: bucket.to_string(),
            key: String::new(),
            message,
        };
        let client = self.client(profile)?;
        let current = client
            .get_bucket_notification_configuration()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| {
                fail(
                    "GetBucketNotificationConfiguration",
                    DisplayErrorContext(&e).to_string(),
                )
            })?;
        let mut queues: Vec<QueueConfiguration> = current
            .queue_configurations()
            .iter()
            .filter(|q| q.id() != Some(id))
            .cloned()
            .collect();
        queues.extend(replacement);
        let config = NotificationConfiguration::builder()
            .set_queue_configurations(Some(queues))
            .set_topic_configurations(current.topic_configurations.clone())
            .set_lambda_function_configurations(current.lambda_function_configurations.clone())
            .build();
        client
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(config)
            .send()
            .await
            .map_err(|e| {
                fail(
                    "PutBucketNotificationConfiguration",
                    DisplayErrorContext(&e).to_string(),
                )
            })?;
        Ok(())
    }
}

/// What a bucket trigger asks of the bucket's notification configuration.
pub struct BucketBinding<'a> {
    /// Configuration id (unique per trigger).
    pub id: &'a str,
    /// Event patterns.
    pub events: &'a [String],
    /// Key prefix filter.
    pub prefix: &'a str,
    /// Key suffix filter.
    pub suffix: &'a str,
}
