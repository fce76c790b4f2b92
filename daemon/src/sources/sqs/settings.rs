//! Checking `kumo trigger create --sqs-queue …` (docs/wire-formats.md §9):
//! batch size and window, concurrency, filters, and the queue itself
//! (it must exist and the profile's credentials must be accepted; the
//! function's timeout must not exceed the queue's visibility timeout).

use kumo_proto::control::SqsSource;
use kumo_triggers::event_pattern::{EventPattern, MAX_PATTERNS};

use super::client::{look_up, QueueError};
use crate::aws_profiles::AwsProfiles;
use crate::state::store::SqsSettings;

/// Default messages per batch.
const DEFAULT_BATCH_SIZE: u32 = 10;
/// Largest batch of a standard queue.
const MAX_STANDARD_BATCH: u32 = 10_000;
/// Largest batch of a FIFO queue.
const MAX_FIFO_BATCH: u32 = 10;
/// Longest batching window.
const MAX_WINDOW_SECONDS: u32 = 300;

/// An SQS source was refused.
#[derive(Debug, thiserror::Error)]
pub enum SqsSettingsError {
    /// A setting breaks a rule.
    #[error("{0}")]
    Invalid(String),
    /// The queue could not be looked up.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// The checked settings of `source`, whose function times out after
/// `function_timeout` seconds.
pub async fn check(
    profiles: &AwsProfiles,
    source: SqsSource,
    function: &str,
    function_timeout: u32,
) -> Result<SqsSettings, SqsSettingsError> {
    let invalid = |m: String| SqsSettingsError::Invalid(m);
    if source.profile.is_empty() {
        return Err(invalid(
            "--sqs-queue needs --aws-profile: the kumod profile with the queue's endpoint and credentials".into(),
        ));
    }
    if source.filters.len() > MAX_PATTERNS {
        return Err(invalid(format!(
            "{} filters given, at most {MAX_PATTERNS}",
            source.filters.len()
        )));
    }
    for filter in &source.filters {
        EventPattern::parse(filter).map_err(|e| invalid(e.to_string()))?;
    }
    if source.batch_window_seconds > MAX_WINDOW_SECONDS {
        return Err(invalid(format!(
            "--batch-window {} is over {MAX_WINDOW_SECONDS} seconds",
            source.batch_window_seconds
        )));
    }
    let max_concurrency = match source.max_concurrency {
        0 => None,
        n @ 2..=1000 => Some(n),
        n => {
            return Err(invalid(format!(
                "--max-concurrency {n} is not within 2-1000"
            )))
        }
    };
    let batch_size = match source.batch_size {
        0 => DEFAULT_BATCH_SIZE,
        n => n,
    };
    if batch_size > 10 && source.batch_window_seconds == 0 {
        return Err(invalid(format!(
            "--batch-size {batch_size} is over 10, which needs --batch-window of at least 1 second"
        )));
    }
    let queue = look_up(profiles, &source.profile, source.queue.trim()).await?;
    let most = if queue.fifo {
        MAX_FIFO_BATCH
    } else {
        MAX_STANDARD_BATCH
    };
    if batch_size > most {
        return Err(invalid(format!(
            "--batch-size {batch_size} is over {most}, the most for a {} queue",
            if queue.fifo { "FIFO" } else { "standard" }
        )));
    }
    if function_timeout > queue.visibility_timeout_seconds {
        return Err(invalid(format!(
            "function {function}'s timeout ({function_timeout} s) is longer than the visibility timeout of queue {} ({} s): messages would come back while the function still runs; raise the queue's VisibilityTimeout (AWS advises 6 × the function timeout) or lower the function's timeout",
            queue.arn, queue.visibility_timeout_seconds
        )));
    }
    Ok(SqsSettings {
        queue: source.queue.trim().to_string(),
        queue_url: queue.url,
        queue_arn: queue.arn,
        fifo: queue.fifo,
        profile: source.profile,
        batch_size,
        batch_window_seconds: source.batch_window_seconds,
        max_concurrency,
        report_batch_item_failures: source.report_batch_item_failures,
        filters: source.filters,
    })
}

/// The protocol view of stored settings.
pub fn source(settings: &SqsSettings) -> SqsSource {
    SqsSource {
        queue: settings.queue.clone(),
        profile: settings.profile.clone(),
        batch_size: settings.batch_size,
        batch_window_seconds: settings.batch_window_seconds,
        max_concurrency: settings.max_concurrency.unwrap_or(0),
        report_batch_item_failures: settings.report_batch_item_failures,
        filters: settings.filters.clone(),
        queue_url: settings.queue_url.clone(),
        queue_arn: settings.queue_arn.clone(),
        fifo: settings.fifo,
    }
}
