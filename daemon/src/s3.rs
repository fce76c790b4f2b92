//! S3-compatible stores kumod talks to, as named profiles from its
//! configuration (`[s3.profiles.NAME]`): fetching packages, configuring a
//! bucket's MinIO webhook notifications, and the credentials a function
//! with `--credentials NAME` receives. Uses aws-sdk-s3.

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use serde::{Deserialize, Serialize};

/// `[s3]` in kumod.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Profiles by name.
    pub profiles: BTreeMap<String, S3Profile>,
}

/// One S3-compatible endpoint with its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Profile {
    /// e.g. `http://127.0.0.1:9000`; empty for AWS itself.
    #[serde(default)]
    pub endpoint: String,
    /// Signing region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// File holding the secret access key (trailing whitespace ignored).
    pub secret_access_key_file: PathBuf,
    /// Path-style addressing (`endpoint/bucket/key`), as MinIO needs.
    #[serde(default = "default_true")]
    pub path_style: bool,
    /// The MinIO webhook target id (`MINIO_NOTIFY_WEBHOOK_ENABLE_<ID>`);
    /// `--configure-bucket` uses `arn:minio:sqs:<REGION>:<ID>:webhook`.
    #[serde(default = "default_target")]
    pub webhook_target_id: String,
    /// The region in that ARN: empty for a MinIO without `MINIO_REGION`
    /// (`arn:minio:sqs::<ID>:webhook`), else the server's region.
    #[serde(default)]
    pub webhook_arn_region: String,
}

impl S3Profile {
    /// The queue ARN of the MinIO webhook target.
    pub fn webhook_arn(&self) -> String {
        format!(
            "arn:minio:sqs:{}:{}:webhook",
            self.webhook_arn_region, self.webhook_target_id
        )
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_true() -> bool {
    true
}

fn default_target() -> String {
    "KUMO".into()
}

/// An S3 operation failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// No profile of that name.
    #[error("no S3 profile {name:?} in kumod's configuration (known: {known})")]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The configured names.
        known: String,
    },
    /// The secret file could not be read.
    #[error("S3 profile {profile}: reading secret_access_key_file {path}: {source}")]
    Secret {
        /// The profile.
        profile: String,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
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

/// The configured profiles.
#[derive(Clone, Default)]
pub struct S3Profiles {
    profiles: BTreeMap<String, S3Profile>,
}

impl S3Profiles {
    /// The profiles of `config`.
    pub fn new(config: &S3Config) -> Self {
        Self {
            profiles: config.profiles.clone(),
        }
    }

    /// One profile, or an error listing the known ones.
    pub fn profile(&self, name: &str) -> Result<&S3Profile, S3Error> {
        self.profiles
            .get(name)
            .ok_or_else(|| S3Error::UnknownProfile {
                name: name.to_string(),
                known: if self.profiles.is_empty() {
                    "none configured".into()
                } else {
                    self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                },
            })
    }

    fn secret(&self, name: &str) -> Result<String, S3Error> {
        let profile = self.profile(name)?;
        std::fs::read_to_string(&profile.secret_access_key_file)
            .map(|s| s.trim_end().to_string())
            .map_err(|source| S3Error::Secret {
                profile: name.to_string(),
                path: profile.secret_access_key_file.clone(),
                source,
            })
    }

    /// A client for a profile.
    pub fn client(&self, name: &str) -> Result<aws_sdk_s3::Client, S3Error> {
        let profile = self.profile(name)?;
        let credentials = Credentials::new(
            profile.access_key_id.clone(),
            self.secret(name)?,
            None,
            None,
            "kumo-s3-profile",
        );
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(profile.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(profile.path_style);
        if !profile.endpoint.is_empty() {
            builder = builder.endpoint_url(profile.endpoint.clone());
        }
        Ok(aws_sdk_s3::Client::from_conf(builder.build()))
    }

    /// The environment a function with these credentials gets: Kumo's
    /// stand-in for an execution role.
    pub fn function_environment(&self, name: &str) -> Result<Vec<(String, String)>, S3Error> {
        let profile = self.profile(name)?;
        let mut env = vec![
            (
                "AWS_ACCESS_KEY_ID".to_string(),
                profile.access_key_id.clone(),
            ),
            ("AWS_SECRET_ACCESS_KEY".to_string(), self.secret(name)?),
            ("AWS_REGION".to_string(), profile.region.clone()),
            ("AWS_DEFAULT_REGION".to_string(), profile.region.clone()),
        ];
        if !profile.endpoint.is_empty() {
            env.push(("AWS_ENDPOINT_URL_S3".to_string(), profile.endpoint.clone()));
        }
        Ok(env)
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
