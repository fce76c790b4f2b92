//! The MinIO webhook endpoint (`/webhooks/minio`, docs/wire-formats.md §5b):
//! checks the `Authorization` header against the configured token, parses
//! the body, and queues one asynchronous event per matching bucket trigger,
//! in S3's shape (§5a) or, for `--event-format minio`, MinIO's verbatim.
//! Object keys that are not UTF-8 or hold NUL are delivered, every byte
//! %-escaped in the S3-encoded key.
//! A 2xx answer means every event is durably queued; a redelivery of the
//! same event (bucket, key, versionId, sequencer, eventName) is queued once.
//! Garbage gets 400 (MinIO drops it and moves on); only a store failure
//! gets 503, which MinIO retries. Without a configured token every request
//! is refused (401) unless `[webhooks] allow_unauthenticated = true`; a
//! request whose fan-out (records × matching triggers) is over
//! `[webhooks] max_events_per_request` is refused whole (413), before
//! anything is queued.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kumo_proto::model::MAX_ASYNC_PAYLOAD_BYTES;
use kumo_triggers::minio::{parse_body, BucketEvent, EventFilter};
use kumo_triggers::s3_event::EventFormat;
use serde_json::{json, Value};

use super::routes::Routes;
use crate::dispatch::invoke::{
    InvocationType, InvokeError, InvokeRequest, Invoked, Invoker, Source,
};
use crate::state::functions::FunctionError;
use crate::state::store::{EventCompanion, TriggerRecord, TriggerSource};

/// `[webhooks]`: abuse limits of the MinIO webhook.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Accept requests without a token when none is configured (by default
    /// the endpoint refuses everything until `[triggers] minio_auth_token`
    /// or `minio_auth_token_file` is set).
    pub allow_unauthenticated: bool,
    /// Most events one request may queue (records × matching triggers).
    pub max_events_per_request: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_unauthenticated: false,
            max_events_per_request: 1000,
        }
    }
}

/// Counters of the endpoint since kumod started.
#[derive(Default)]
pub struct WebhookCounters {
    received: AtomicU64,
    queued: AtomicU64,
    duplicates: AtomicU64,
    unmatched: AtomicU64,
    bad_requests: AtomicU64,
    unauthorized: AtomicU64,
    per_trigger: Mutex<HashMap<String, u64>>,
}

impl WebhookCounters {
    /// Events queued for one trigger.
    pub fn queued_for(&self, trigger: &str) -> u64 {
        self.per_trigger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(trigger)
            .copied()
            .unwrap_or(0)
    }

    /// Every counter by result name.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("received", get(&self.received)),
            ("queued", get(&self.queued)),
            ("duplicates", get(&self.duplicates)),
            ("unmatched", get(&self.unmatched)),
            ("bad_requests", get(&self.bad_requests)),
            ("unauthorized", get(&self.unauthorized)),
        ]
    }

    fn json(&self) -> Value {
        Value::Object(
            self.snapshot()
                .into_iter()
                .map(|(name, value)| (name.to_string(), json!(value)))
                .collect(),
        )
    }
}

/// An HTTP answer: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply { status, body }
}

/// The `Authorization` value MinIO sends for `token`: two words verbatim,
/// one word as `Bearer <token>`, none when empty.
pub fn expected_authorization(token: &str) -> Option<String> {
    let token = token.trim();
    match token.split_whitespace().count() {
        0 => None,
        1 => Some(format!("Bearer {token}")),
        _ => Some(token.to_string()),
    }
}

/// Compares without an early exit, so timing does not reveal the token.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// One record of a request, checked: the triggers it goes to (with the
/// event format each wants) and its payload in each of those formats.
struct Planned<'a> {
    event: &'a BucketEvent,
    matching: Vec<(&'a TriggerRecord, EventFormat)>,
    payloads: Vec<(EventFormat, Bytes)>,
}

/// The webhook endpoint.
#[derive(Clone)]
pub struct Webhook {
    routes: Routes,
    invoker: Invoker,
    expected: Option<String>,
    limits: WebhooksConfig,
    counters: Arc<WebhookCounters>,
    region: String,
}

impl Webhook {
    /// The endpoint for the bucket triggers in `routes`, counting into
    /// `counters` and requiring `auth_token` (refusing everything when it
    /// is empty, unless `limits.allow_unauthenticated`); events in S3's
    /// shape name `region` (kumod's, as its ARNs do).
    pub fn new(
        routes: Routes,
        counters: Arc<WebhookCounters>,
        invoker: Invoker,
        auth_token: &str,
        limits: WebhooksConfig,
        region: String,
    ) -> Self {
        let expected = expected_authorization(auth_token);
        if expected.is_none() && !limits.allow_unauthenticated {
            tracing::warn!("the MinIO webhook has no token configured and refuses every request; set [triggers] minio_auth_token_file");
        }
        Self {
            routes,
            invoker,
            expected,
            limits,
            counters,
            region,
        }
    }

    fn authorized(&self, authorization: Option<&str>) -> bool {
        match (&self.expected, authorization) {
            (None, _) => self.limits.allow_unauthenticated,
            (Some(expected), Some(given)) => same_secret(expected, given.trim()),
            (Some(_), None) => false,
        }
    }

    fn unauthorized(&self) -> Reply {
        self.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
        let message = if self.expected.is_none() {
            "the MinIO webhook has no token configured: set [triggers] minio_auth_token_file (or [webhooks] allow_unauthenticated = true)"
        } else {
            "missing or wrong Authorization header for the MinIO webhook"
        };
        reply(401, json!({ "message": message }))
    }

    fn bad_request(&self, status: u16, message: String) -> Reply {
        self.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%message, "MinIO webhook request refused");
        reply(status, json!({ "message": message }))
    }

    /// `GET`: the endpoint's counters.
    pub fn stats(&self, authorization: Option<&str>) -> Reply {
        if !self.authorized(authorization) {
            return self.unauthorized();
        }
        reply(200, self.counters.json())
    }

    /// A body over the size limit.
    pub fn too_large(&self, limit: usize) -> Reply {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        self.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        reply(
            413,
            json!({"message": format!("body over the {limit}-byte limit")}),
        )
    }

    /// `POST`: queue the body's events for every matching trigger.
    pub async fn post(&self, authorization: Option<&str>, body: &[u8]) -> Reply {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        if !self.authorized(authorization) {
            return self.unauthorized();
        }
        let events = match parse_body(body) {
            Ok(events) => events,
            Err(err) => {
                self.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%err, "MinIO webhook body refused");
                return reply(400, json!({"message": err.to_string()}));
            }
        };
        let routes = self.routes.snapshot();
        let filters: Vec<(&TriggerRecord, EventFilter, EventFormat)> = routes
            .iter()
            .filter_map(|r| match &r.source {
                TriggerSource::Bucket {
                    bucket,
                    events,
                    prefix,
                    suffix,
                    event_format,
                    ..
                } => Some((
                    r,
                    EventFilter {
                        bucket: bucket.clone(),
                        events: events.clone(),
                        prefix: prefix.clone(),
                        suffix: suffix.clone(),
                    },
                    EventFormat::parse(event_format).unwrap_or_default(),
                )),
                TriggerSource::Schedule { .. }
                | TriggerSource::Http { .. }
                | TriggerSource::Sqs(_)
                | TriggerSource::Sns(_) => None,
            })
            .collect();
        // Check the whole request before queueing anything.
        let mut plan: Vec<Planned<'_>> = Vec::with_capacity(events.len());
        let mut fan_out: usize = 0;
        for event in &events {
            let matching: Vec<(&TriggerRecord, EventFormat)> = filters
                .iter()
                .filter(|(_, f, _)| f.matches(event))
                .map(|(r, _, format)| (*r, *format))
                .collect();
            fan_out = fan_out.saturating_add(matching.len());
            if fan_out > self.limits.max_events_per_request {
                return self.bad_request(
                    413,
                    format!(
                        "the request's {} records would queue more than {} events (records × matching triggers; [webhooks] max_events_per_request); nothing was queued",
                        events.len(),
                        self.limits.max_events_per_request
                    ),
                );
            }
            // One payload per format the matching triggers want.
            let mut payloads: Vec<(EventFormat, Bytes)> = Vec::new();
            for (_, format) in &matching {
                if payloads.iter().any(|(f, _)| f == format) {
                    continue;
                }
                let payload = Bytes::from(event.payload(*format, &self.region).to_string());
                if payload.len() > MAX_ASYNC_PAYLOAD_BYTES {
                    return self.bad_request(
                        400,
                        format!(
                            "record of {} bytes is over the {MAX_ASYNC_PAYLOAD_BYTES}-byte event limit",
                            payload.len()
                        ),
                    );
                }
                payloads.push((*format, payload));
            }
            plan.push(Planned {
                event,
                matching,
                payloads,
            });
        }
        let (mut queued, mut duplicates, mut unmatched) = (0u64, 0u64, 0u64);
        for Planned {
            event,
            matching,
            payloads,
        } in plan
        {
            if matching.is_empty() {
                unmatched += 1;
                tracing::debug!(bucket = %event.bucket, key = %event.s3_key(), event = %event.event_name,
                    "bucket event matches no trigger; ignored");
                continue;
            }
            for (trigger, format) in matching {
                let Some((_, payload)) = payloads.iter().find(|(f, _)| *f == format) else {
                    continue;
                };
                let name = &trigger.name;
                let invoke = InvokeRequest {
                    qualifier: trigger.qualifier.clone(),
                    invocation_type: InvocationType::Event,
                    companion: EventCompanion::Delivery {
                        key: format!("{name}\u{0}{}", event.identity()),
                        seen_ms: chrono::Utc::now().timestamp_millis(),
                    },
                    ..InvokeRequest::new(Source::Webhook, trigger.function.clone(), payload.clone())
                };
                match self.invoker.invoke(invoke).await {
                    Ok(Invoked::Queued(_) | Invoked::Completed(_)) => {
                        queued += 1;
                        *self
                            .counters
                            .per_trigger
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(name.clone())
                            .or_default() += 1;
                    }
                    Ok(Invoked::AlreadyQueued) => duplicates += 1,
                    Err(err @ InvokeError::Function(FunctionError::NotFound { .. })) => {
                        tracing::warn!(%err, trigger = %name,
                            "bucket event skipped: the trigger's function or qualifier does not exist");
                    }
                    Err(err) => {
                        tracing::error!(%err, trigger = %name, "queueing a bucket event failed");
                        return reply(
                            503,
                            json!({"message": "kumod could not queue the event durably; retry"}),
                        );
                    }
                }
            }
        }
        self.counters.queued.fetch_add(queued, Ordering::Relaxed);
        self.counters
            .duplicates
            .fetch_add(duplicates, Ordering::Relaxed);
        self.counters
            .unmatched
            .fetch_add(unmatched, Ordering::Relaxed);
        reply(
            200,
            json!({"queued": queued, "duplicates": duplicates, "unmatched": unmatched}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_follows_minio() {
        assert_eq!(expected_authorization(""), None);
        assert_eq!(expected_authorization("  "), None);
        assert_eq!(
            expected_authorization("s3cret").as_deref(),
            Some("Bearer s3cret")
        );
        assert_eq!(
            expected_authorization("Token abc").as_deref(),
            Some("Token abc")
        );
        assert!(same_secret("Bearer a", "Bearer a"));
        assert!(!same_secret("Bearer a", "Bearer b"));
        assert!(!same_secret("Bearer a", "Bearer ab"));
        assert!(!same_secret("", "x"));
    }
}
