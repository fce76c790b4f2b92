//! Kumo's event-source formats, as pure functions without I/O so they can
//! be unit-tested exhaustively and fuzzed (§N cites docs/wire-formats.md):
//!
//! - [`schedule_expression`]: EventBridge `cron(…)` and `rate(…)` with fire
//!   times (docs/wire-formats.md §6).
//! - [`scheduled_event`]: the Scheduled Event JSON a schedule sends (§5c).
//! - [`apigw`]: API Gateway proxy events and responses for HTTP triggers
//!   (§5d).
//! - [`minio`]: MinIO webhook bodies, key decoding, and which bucket
//!   triggers an S3 event record matches (§5b).
//! - [`s3_event`]: the S3 event record a function receives (§5a), built
//!   from MinIO's.
//! - [`event_pattern`]: EventBridge-style filter patterns of SQS event
//!   sources (§9).
//! - [`sns`], [`sns_filter`], [`sns_signature`]: SNS HTTP deliveries,
//!   the Lambda SNS event, filter policies and signatures (§10).
//! - [`percent`]: percent-decoding and form encoding for all of them.

pub mod apigw;
pub mod event_pattern;
pub mod minio;
pub mod percent;
pub mod s3_event;
pub mod schedule_expression;
pub mod scheduled_event;
pub mod sns;
pub mod sns_filter;
pub mod sns_signature;
