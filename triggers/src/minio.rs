//! MinIO bucket notifications (docs/wire-formats.md §5b): the webhook body,
//! the object key encoding (Go `QueryEscape`), the filters of a bucket
//! trigger (event-name patterns, prefix and suffix on the decoded key), and
//! the payload a function receives (S3's shape by default, see
//! [`crate::s3_event`]).

use serde_json::Value;

use crate::s3_event::{self, EventFormat};

/// Largest webhook body accepted (a MinIO body carries one record).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A webhook body that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Not JSON at all.
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// JSON without a non-empty `Records` array.
    #[error("body has no \"Records\" array with at least one record")]
    NoRecords,
    /// A record lacks a field or has a bad one.
    #[error("record {index}: {reason}")]
    BadRecord {
        /// Position in `Records`.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// One S3 event record of a webhook body.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketEvent {
    /// `eventName` with the `s3:` prefix (added if the sender omitted it).
    pub event_name: String,
    /// Bucket name.
    pub bucket: String,
    /// The key as sent (query-escaped).
    pub raw_key: String,
    /// The decoded key's bytes, what prefix and suffix filters see. Not
    /// necessarily UTF-8, and may hold NUL: nothing is refused or replaced,
    /// and [`s3_event::encode_key`] carries every byte into the event.
    pub key: Vec<u8>,
    /// `versionId`, or "".
    pub version_id: String,
    /// `sequencer`, or "".
    pub sequencer: String,
    /// The record exactly as sent; the function receives `{"Records":[record]}`.
    pub record: Value,
}

impl BucketEvent {
    /// What identifies one delivery of one event (MinIO may redeliver):
    /// bucket, key, versionId, sequencer and eventName.
    pub fn identity(&self) -> String {
        [
            self.bucket.as_str(),
            &self.raw_key,
            &self.version_id,
            &self.sequencer,
            &self.event_name,
        ]
        .join("\u{0}")
    }

    /// The key as S3 writes it in events (docs/wire-formats.md §5a).
    pub fn s3_key(&self) -> String {
        s3_event::encode_key(&self.key)
    }

    /// The payload a function receives for this record: `{"Records":[…]}`
    /// with the record in S3's shape for `region`, or MinIO's verbatim.
    pub fn payload(&self, format: EventFormat, region: &str) -> Value {
        let record = match format {
            EventFormat::Aws => s3_event::aws_record(&self.record, &self.key, region),
            EventFormat::Minio => self.record.clone(),
        };
        serde_json::json!({ "Records": [record] })
    }
}

/// Parses a webhook body into its records.
pub fn parse_body(body: &[u8]) -> Result<Vec<BucketEvent>, WebhookError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::NotJson(e.to_string()))?;
    let records = value
        .get("Records")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
        .ok_or(WebhookError::NoRecords)?;
    records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            parse_record(record).map_err(|reason| WebhookError::BadRecord { index, reason })
        })
        .collect()
}

fn text<'a>(record: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(record, |v, key| v.get(*key))
        .and_then(Value::as_str)
}

fn parse_record(record: &Value) -> Result<BucketEvent, String> {
    if !record.is_object() {
        return Err("not a JSON object".into());
    }
    let event_name = text(record, &["eventName"]).ok_or("no eventName")?;
    if event_name.is_empty() {
        return Err("empty eventName".into());
    }
    let bucket = text(record, &["s3", "bucket", "name"]).ok_or("no s3.bucket.name")?;
    if bucket.is_empty() {
        return Err("empty s3.bucket.name".into());
    }
    let raw_key = text(record, &["s3", "object", "key"]).ok_or("no s3.object.key")?;
    let key = decode_key(raw_key)?;
    Ok(BucketEvent {
        event_name: with_s3_prefix(event_name),
        bucket: bucket.to_string(),
        raw_key: raw_key.to_string(),
        key,
        version_id: text(record, &["s3", "object", "versionId"])
            .unwrap_or_default()
            .to_string(),
        sequencer: text(record, &["s3", "object", "sequencer"])
            .unwrap_or_default()
            .to_string(),
        record: record.clone(),
    })
}

fn with_s3_prefix(name: &str) -> String {
    if name.starts_with("s3:") {
        name.to_string()
    } else {
        format!("s3:{name}")
    }
}

/// Decodes a key escaped like Go's `url.QueryEscape` (and AWS's form
/// encoding): `+` is a space, `%XX` a byte. The bytes are kept as they are
/// (invalid UTF-8 and NUL included); only a malformed escape is refused.
pub fn decode_key(raw: &str) -> Result<Vec<u8>, String> {
    let (bytes, bad) = crate::percent::decode(raw, true);
    match bad {
        Some(i) => Err(format!("key {raw:?} has a bad %-escape at byte {i}")),
        None => Ok(bytes),
    }
}

/// A filter pattern or event list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event type {0:?}: use s3:ObjectCreated:*, s3:ObjectRemoved:*, s3:ObjectAccessed:*, an exact name like s3:ObjectCreated:Put, or put, delete, get")]
pub struct EventPatternError(pub String);

/// The event families MinIO sends.
const FAMILIES: &[&str] = &[
    "ObjectCreated",
    "ObjectRemoved",
    "ObjectAccessed",
    "ObjectRestore",
    "Replication",
    "ObjectTransition",
    "Scanner",
    "ObjectManyVersions",
    "ObjectLargeVersions",
    "PrefixManyFolders",
    "ILMDelMarkerExpirationDelete",
];

/// Normalizes event patterns: `put`/`delete`/`get` (as `mc event add`
/// says them) become their wildcard, a missing `s3:` is added, and every
/// pattern must name a known family. An empty list means
/// `s3:ObjectCreated:*`.
pub fn normalize_event_patterns(patterns: &[String]) -> Result<Vec<String>, EventPatternError> {
    if patterns.iter().all(|p| p.trim().is_empty()) {
        return Ok(vec!["s3:ObjectCreated:*".to_string()]);
    }
    let mut out: Vec<String> = Vec::new();
    for pattern in patterns.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let normalized = match pattern {
            "put" => "s3:ObjectCreated:*".to_string(),
            "delete" => "s3:ObjectRemoved:*".to_string(),
            "get" => "s3:ObjectAccessed:*".to_string(),
            other => with_s3_prefix(other),
        };
        let mut parts = normalized.splitn(3, ':');
        let (_, family, kind) = (parts.next(), parts.next(), parts.next());
        let known = family.is_some_and(|f| FAMILIES.contains(&f));
        let kind_ok = kind.is_some_and(|k| {
            k == "*" || (!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric()))
        });
        if !known || !kind_ok {
            return Err(EventPatternError(pattern.to_string()));
        }
        if !out.contains(&normalized) {
            out.push(normalized);
        }
    }
    Ok(out)
}

/// What a bucket trigger lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// Bucket name.
    pub bucket: String,
    /// Normalized event patterns (see [`normalize_event_patterns`]).
    pub events: Vec<String>,
    /// Decoded-key prefix ("" = any).
    pub prefix: String,
    /// Decoded-key suffix ("" = any).
    pub suffix: String,
}

impl EventFilter {
    /// True when `event` passes this filter.
    pub fn matches(&self, event: &BucketEvent) -> bool {
        event.bucket == self.bucket
            && event.key.starts_with(self.prefix.as_bytes())
            && event.key.ends_with(self.suffix.as_bytes())
            && self
                .events
                .iter()
                .any(|p| pattern_matches(p, &event.event_name))
    }
}

fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(family) => name.starts_with(family),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests;
