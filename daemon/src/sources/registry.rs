//! Trigger management: create (validated; bucket triggers can configure
//! the bucket through an S3 profile), get with the next fire times, list,
//! enable/disable, delete. Records live in the store; the scheduler and
//! the webhook read them from there.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kumo_proto::control::{
    trigger_config, BucketSource, CreateTriggerRequest, QueueSourceState, ScheduleSource,
    TriggerConfig, TriggerInfo,
};
use kumo_proto::model::{self, ValidationError, MAX_ASYNC_PAYLOAD_BYTES};
use kumo_triggers::minio::{normalize_event_patterns, EventPatternError};
use kumo_triggers::s3_event::EventFormat;
use kumo_triggers::schedule_expression::{self, ScheduleError};
use tokio::sync::Notify;

use super::routes::Routes;
use super::sqs::settings::SqsSettingsError;
use super::sqs::QueueStats;
use super::webhook::WebhookCounters;
use crate::metrics::Metrics;
use crate::s3::{BucketBinding, S3Error, S3Profiles};
use crate::state::functions::{FunctionError, Functions};
use crate::state::store::{Store, StoreError, TriggerRecord, TriggerSource};

/// Longest prefix or suffix filter.
const MAX_FILTER_BYTES: usize = 1024;
/// Fire times shown by `kumo trigger get`.
const SHOWN_FIRES: usize = 5;

/// A trigger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// No such trigger.
    #[error("trigger {name} not found")]
    NotFound {
        /// The name.
        name: String,
    },
    /// The name is taken.
    #[error("trigger {name} already exists")]
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// A setting breaks a rule.
    #[error("invalid trigger: {0}")]
    Invalid(String),
    /// The function does not exist.
    #[error(transparent)]
    Function(#[from] FunctionError),
    /// The schedule expression is wrong.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// An event type is wrong.
    #[error(transparent)]
    Pattern(#[from] EventPatternError),
    /// Configuring the bucket failed.
    #[error(transparent)]
    S3(#[from] S3Error),
    /// An SQS source was refused (settings, unknown queue, credentials).
    #[error(transparent)]
    Sqs(#[from] SqsSettingsError),
    /// An SNS source was refused (settings, unknown topic, credentials).
    #[error(transparent)]
    Sns(#[from] super::sns::SnsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ValidationError> for TriggerError {
    fn from(err: ValidationError) -> Self {
        TriggerError::Invalid(err.to_string())
    }
}

/// Trigger management.
#[derive(Clone)]
pub struct Triggers {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) functions: Functions,
    s3: S3Profiles,
    pub(crate) region: String,
    pub(crate) account_id: String,
    /// Woken when schedules change.
    pub(crate) changed: Arc<Notify>,
    /// Woken when triggers change, for the queue sources.
    pub(crate) sources_changed: Arc<Notify>,
    /// The queue sources' counters.
    pub(crate) queue_stats: QueueStats,
    /// The webhook's counters (bucket triggers' fire counts).
    pub(crate) webhook_counters: Arc<WebhookCounters>,
    /// Schedule fires are counted here.
    pub(crate) metrics: Metrics,
    /// The route table of the webhook and HTTP triggers, replaced
    /// whenever a trigger changes.
    routes: Routes,
    /// The URL at which SNS reaches kumod's HTTP listener.
    pub(crate) sns_public_url: String,
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Checks a bucket name the way S3 does (3-63 of a-z 0-9 . -, starting
/// and ending with a letter or digit).
fn validate_bucket(bucket: &str) -> Result<(), TriggerError> {
    let ok_chars = bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let ends_ok = bucket
        .chars()
        .next()
        .zip(bucket.chars().last())
        .is_some_and(|(a, b)| a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric());
    if (3..=63).contains(&bucket.len()) && ok_chars && ends_ok {
        Ok(())
    } else {
        Err(TriggerError::Invalid(format!(
            "bucket {bucket:?} is not a valid bucket name (3-63 characters of a-z, 0-9, '.', '-')"
        )))
    }
}

impl Triggers {
    /// Triggers over this store, invoking these functions, keeping
    /// `routes` current.
    pub fn new(
        store: Arc<dyn Store>,
        functions: Functions,
        s3: S3Profiles,
        region: String,
        account_id: String,
        metrics: Metrics,
        routes: Routes,
    ) -> Result<Self, StoreError> {
        let triggers = Self {
            store,
            functions,
            s3,
            region,
            account_id,
            changed: Arc::new(Notify::new()),
            sources_changed: Arc::new(Notify::new()),
            queue_stats: QueueStats::default(),
            webhook_counters: Arc::default(),
            metrics,
            routes,
            sns_public_url: String::new(),
        };
        triggers.refresh_routes()?;
        Ok(triggers)
    }

    /// The same triggers, subscribing SNS topics to `url` (`[sns] public_url`).
    pub fn with_sns_public_url(self, url: String) -> Self {
        Self {
            sns_public_url: url,
            ..self
        }
    }

    /// After a change: reads the routes again and wakes the scheduler.
    fn after_change(&self) -> Result<(), StoreError> {
        self.changed.notify_one();
        self.sources_changed.notify_one();
        self.refresh_routes()
    }

    /// kumod's AWS profiles.
    pub fn profiles(&self) -> &S3Profiles {
        &self.s3
    }

    fn refresh_routes(&self) -> Result<(), StoreError> {
        self.routes.replace(self.store.list_triggers()?);
        Ok(())
    }

    /// The ARN of a trigger (an EventBridge rule ARN for schedules).
    pub fn arn(&self, record: &TriggerRecord) -> String {
        match record.source {
            TriggerSource::Schedule { .. } => format!(
                "arn:aws:events:{}:{}:rule/{}",
                self.region, self.account_id, record.name
            ),
            TriggerSource::Sqs(ref sqs) => format!(
                "arn:kumo:triggers:{}:{}:trigger/{}:{}",
                self.region, self.account_id, record.name, sqs.queue_arn
            ),
            TriggerSource::Sns(ref sns) => format!(
                "arn:kumo:triggers:{}:{}:trigger/{}:{}",
                self.region, self.account_id, record.name, sns.topic_arn
            ),
            TriggerSource::Bucket { .. } | TriggerSource::Http { .. } => format!(
                "arn:kumo:triggers:{}:{}:trigger/{}",
                self.region, self.account_id, record.name
            ),
        }
    }

    /// Creates a trigger.
    pub async fn create(&self, request: CreateTriggerRequest) -> Result<TriggerInfo, TriggerError> {
        let config = request
            .config
            .ok_or_else(|| TriggerError::Invalid("CreateTrigger needs a config".into()))?;
        model::validate_function_name(&config.name)
            .map_err(|e| TriggerError::Invalid(format!("name: {}", e.message)))?;
        if self.store.get_trigger(&config.name)?.is_some() {
            return Err(TriggerError::AlreadyExists { name: config.name });
        }
        let target = model::FunctionRef::parse(&config.function, None)
            .map_err(|e| TriggerError::Invalid(format!("function: {e}")))?;
        self.functions.check_here(&target)?;
        let resolved = crate::state::qualifiers::resolve(
            &self.functions,
            &target.name,
            target.qualifier.as_deref(),
        )?;
        let model::FunctionRef {
            name: function,
            qualifier,
            ..
        } = target;
        let source = match config.source {
            Some(trigger_config::Source::Schedule(schedule)) => self.schedule_source(schedule)?,
            Some(trigger_config::Source::Http(http)) => {
                super::http_trigger::source(&self.store.list_triggers()?, http)
                    .map_err(TriggerError::Invalid)?
            }
            Some(trigger_config::Source::Bucket(bucket)) => {
                self.bucket_source(&config.name, bucket, &request.configure_bucket_profile)
                    .await?
            }
            Some(trigger_config::Source::Sqs(sqs)) => TriggerSource::Sqs(
                super::sqs::settings::check(
                    &self.s3,
                    sqs,
                    &config.function,
                    resolved.config.timeout_seconds,
                )
                .await?,
            ),
            Some(trigger_config::Source::Sns(sns)) => TriggerSource::Sns(
                super::sns::check(&self.s3, &self.sns_public_url, &config.name, sns).await?,
            ),
            None => {
                return Err(TriggerError::Invalid(
                    "a trigger needs a schedule, a bucket, an HTTP path, a queue or a topic".into(),
                ))
            }
        };
        let record = TriggerRecord {
            name: config.name,
            function,
            qualifier,
            enabled: !config.disabled,
            created_ms: Utc::now().timestamp_millis(),
            source,
            fired: 0,
        };
        self.store.put_trigger(&record)?;
        self.after_change()?;
        let record = self.subscribe_if_sns(record).await?;
        tracing::info!(trigger = %record.name, function = %config.function, "trigger created");
        Ok(self.info(&record))
    }

    /// Subscribes a stored SNS trigger to its topic, recording the
    /// subscription; the record is stored first, so a confirmation SNS
    /// sends while Subscribe runs finds its trigger. If Subscribe fails
    /// the record is removed again.
    async fn subscribe_if_sns(
        &self,
        mut record: TriggerRecord,
    ) -> Result<TriggerRecord, TriggerError> {
        let TriggerSource::Sns(settings) = &mut record.source else {
            return Ok(record);
        };
        if let Err(err) = super::sns::subscribe(&self.s3, settings).await {
            self.store.delete_trigger(&record.name)?;
            self.after_change()?;
            return Err(err.into());
        }
        self.store.put_trigger(&record)?;
        self.after_change()?;
        Ok(record)
    }

    fn schedule_source(&self, schedule: ScheduleSource) -> Result<TriggerSource, TriggerError> {
        let expression = schedule.expression.trim().to_string();
        schedule_expression::parse(&expression)?;
        let input = (!schedule.input.trim().is_empty()).then_some(schedule.input);
        if let Some(input) = &input {
            serde_json::from_str::<serde_json::Value>(input)
                .map_err(|e| TriggerError::Invalid(format!("--input is not JSON: {e}")))?;
            if input.len() > MAX_ASYNC_PAYLOAD_BYTES {
                return Err(TriggerError::Invalid(format!(
                    "--input is {} bytes, over the {MAX_ASYNC_PAYLOAD_BYTES}-byte event limit",
                    input.len()
                )));
            }
        }
        Ok(TriggerSource::Schedule {
            expression,
            input,
            last_due_ms: None,
        })
    }

    async fn bucket_source(
        &self,
        name: &str,
        bucket: BucketSource,
        configure_with: &str,
    ) -> Result<TriggerSource, TriggerError> {
        validate_bucket(&bucket.bucket)?;
        let events = normalize_event_patterns(&bucket.events)?;
        let event_format = EventFormat::parse(&bucket.event_format)
            .map_err(|e| TriggerError::Invalid(e.to_string()))?;
        for (what, value) in [("prefix", &bucket.prefix), ("suffix", &bucket.suffix)] {
            if value.len() > MAX_FILTER_BYTES {
                return Err(TriggerError::Invalid(format!(
                    "{what} is {} bytes, over {MAX_FILTER_BYTES}",
                    value.len()
                )));
            }
        }
        let configured_with = if configure_with.is_empty() {
            None
        } else {
            let id = format!("kumo-{name}");
            let binding = BucketBinding {
                id: &id,
                events: &events,
                prefix: &bucket.prefix,
                suffix: &bucket.suffix,
            };
            self.s3
                .configure_bucket(configure_with, &bucket.bucket, &binding)
                .await?;
            Some(configure_with.to_string())
        };
        Ok(TriggerSource::Bucket {
            bucket: bucket.bucket,
            events,
            prefix: bucket.prefix,
            suffix: bucket.suffix,
            configured_with,
            event_format: event_format.as_str().to_string(),
        })
    }

    fn record(&self, name: &str) -> Result<TriggerRecord, TriggerError> {
        self.store
            .get_trigger(name)?
            .ok_or_else(|| TriggerError::NotFound {
                name: name.to_string(),
            })
    }

    /// One trigger.
    pub fn get(&self, name: &str) -> Result<TriggerInfo, TriggerError> {
        Ok(self.info(&self.record(name)?))
    }

    /// Every trigger, by name.
    pub fn list(&self) -> Result<Vec<TriggerInfo>, TriggerError> {
        Ok(self
            .store
            .list_triggers()?
            .iter()
            .map(|r| self.info(r))
            .collect())
    }

    /// Enables or disables a trigger. A schedule enabled again starts from
    /// now: fires it missed while disabled do not happen.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<TriggerInfo, TriggerError> {
        let mut record = self.record(name)?;
        if enabled && !record.enabled {
            if let TriggerSource::Schedule { last_due_ms, .. } = &mut record.source {
                *last_due_ms = Some(Utc::now().timestamp_millis());
            }
        }
        record.enabled = enabled;
        self.store.put_trigger(&record)?;
        self.after_change()?;
        Ok(self.info(&record))
    }

    /// Deletes a trigger, removing the bucket configuration kumod made
    /// (a failure there is logged, the trigger is deleted anyway).
    pub async fn delete(&self, name: &str) -> Result<(), TriggerError> {
        let record = self.record(name)?;
        if let TriggerSource::Bucket {
            bucket,
            configured_with: Some(profile),
            ..
        } = &record.source
        {
            let id = format!("kumo-{name}");
            if let Err(err) = self.s3.unconfigure_bucket(profile, bucket, &id).await {
                tracing::warn!(%err, trigger = %name, "could not remove the bucket notification configuration");
            }
        }
        if let TriggerSource::Sns(settings) = &record.source {
            if let Err(err) = super::sns::unsubscribe(&self.s3, settings).await {
                tracing::warn!(%err, trigger = %name, "could not unsubscribe from the SNS topic; its deliveries will get 404");
            }
        }
        self.store.delete_trigger(name)?;
        self.after_change()?;
        Ok(())
    }

    /// The protocol view of a trigger.
    pub fn info(&self, record: &TriggerRecord) -> TriggerInfo {
        let function = match &record.qualifier {
            Some(q) => format!("{}:{q}", record.function),
            None => record.function.clone(),
        };
        let mut info = TriggerInfo {
            arn: self.arn(record),
            created_at: rfc3339(millis(record.created_ms)),
            fired: record.fired,
            ..Default::default()
        };
        let source = match &record.source {
            TriggerSource::Schedule {
                expression,
                input,
                last_due_ms,
            } => {
                if let Ok(parsed) = schedule_expression::parse(expression) {
                    let from = last_due_ms
                        .unwrap_or(record.created_ms)
                        .max(Utc::now().timestamp_millis());
                    info.next_fires = parsed
                        .upcoming(millis(from), millis(record.created_ms), SHOWN_FIRES)
                        .into_iter()
                        .map(rfc3339)
                        .collect();
                }
                info.last_fired_at = last_due_ms
                    .map(|ms| rfc3339(millis(ms)))
                    .unwrap_or_default();
                trigger_config::Source::Schedule(ScheduleSource {
                    expression: expression.clone(),
                    input: input.clone().unwrap_or_default(),
                })
            }
            TriggerSource::Bucket {
                bucket,
                events,
                prefix,
                suffix,
                configured_with,
                event_format,
            } => {
                info.configured_with = configured_with.clone().unwrap_or_default();
                info.fired = self.webhook_counters.queued_for(&record.name);
                trigger_config::Source::Bucket(BucketSource {
                    bucket: bucket.clone(),
                    events: events.clone(),
                    prefix: prefix.clone(),
                    suffix: suffix.clone(),
                    event_format: EventFormat::parse(event_format)
                        .unwrap_or_default()
                        .as_str()
                        .to_string(),
                })
            }
            TriggerSource::Sqs(settings) => {
                let stats = self.queue_stats.get(&record.name);
                let state = match (&stats, record.enabled) {
                    (_, false) => "disabled",
                    (None, true) => "starting",
                    (Some(_), true) => "polling",
                };
                let stats = stats.unwrap_or_default();
                info.fired = stats.processed;
                info.queue_state = Some(QueueSourceState {
                    state: state.into(),
                    in_flight_batches: stats.in_flight,
                    processed: stats.processed,
                    failed: stats.failed,
                    filtered: stats.filtered,
                    throttled: stats.throttled,
                    last_error: stats.last_error,
                });
                trigger_config::Source::Sqs(super::sqs::settings::source(settings))
            }
            TriggerSource::Sns(settings) => {
                trigger_config::Source::Sns(super::sns::source(settings))
            }
            TriggerSource::Http { path, .. } => {
                info.url_path = format!("{}{path}", super::http_trigger::PREFIX);
                trigger_config::Source::Http(super::http_trigger::http_source(&record.source))
            }
        };
        info.config = Some(TriggerConfig {
            name: record.name.clone(),
            function,
            disabled: !record.enabled,
            source: Some(source),
        });
        info
    }
}
