//! The subscription endpoints `/sns/<trigger>` (docs/wire-formats.md §10):
//! unless the profile turns it off (`sns_verify_signatures = false`), the
//! signature is checked first, with the certificate from `SigningCertURL`
//! ([`super::certs`]); then
//! a SubscriptionConfirmation is confirmed with ConfirmSubscription and
//! its Token (its `SubscribeURL` is never fetched, and must name the
//! profile's SNS host); a Notification passing the trigger's filter
//! policy becomes Lambda's SNS event, queued durably as an asynchronous
//! invocation before the 200 answer. A redelivery (same MessageId) is
//! queued once. Garbage, another topic's messages and unknown triggers
//! get 4xx with nothing queued; only a store failure gets 503.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use kumo_proto::model::MAX_ASYNC_PAYLOAD_BYTES;
use kumo_triggers::sns::{check_url, sns_host, Delivery, MessageType};
use kumo_triggers::sns_filter::FilterPolicy;
use serde_json::json;

use super::super::routes::Routes;
use super::super::webhook::Reply;
use crate::aws_profiles::{AwsProfiles, Service};
use crate::dispatch::invoke::{InvocationType, InvokeRequest, Invoked, Invoker, Source};
use crate::state::store::{EventCompanion, SnsSettings, TriggerRecord, TriggerSource};

/// Counters of the SNS endpoints since kumod started.
#[derive(Default)]
pub struct SnsCounters {
    /// Notifications queued.
    pub queued: AtomicU64,
    /// Redeliveries not queued again.
    pub duplicates: AtomicU64,
    /// Notifications the filter policy dropped.
    pub filtered: AtomicU64,
    /// Requests refused.
    pub refused: AtomicU64,
}

/// The SNS subscription endpoints.
#[derive(Clone)]
pub struct SnsEndpoint {
    routes: Routes,
    invoker: Invoker,
    profiles: AwsProfiles,
    counters: Arc<SnsCounters>,
    certs: super::certs::CertCache,
}

fn reply(status: u16, message: impl Into<String>) -> Reply {
    Reply {
        status,
        body: json!({ "message": message.into() }),
    }
}

impl SnsEndpoint {
    /// The endpoints of the SNS triggers in `routes`.
    pub fn new(routes: Routes, invoker: Invoker, profiles: AwsProfiles) -> Self {
        Self {
            routes,
            invoker,
            profiles,
            counters: Arc::default(),
            certs: super::certs::CertCache::default(),
        }
    }

    fn refuse(&self, status: u16, trigger: &str, message: String) -> Reply {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%trigger, %message, "SNS delivery refused");
        reply(status, message)
    }

    /// A POST to `/sns/<trigger>`.
    pub async fn post(&self, trigger: &str, body: &[u8]) -> Reply {
        let routes = self.routes.snapshot();
        let Some((record, settings)) = routes.iter().find_map(|r| match &r.source {
            TriggerSource::Sns(s) if r.name == trigger => Some((r, s)),
            _ => None,
        }) else {
            return self.refuse(404, trigger, format!("no enabled SNS trigger {trigger:?}"));
        };
        let delivery = match Delivery::parse(body) {
            Ok(delivery) => delivery,
            Err(err) => return self.refuse(400, trigger, err.to_string()),
        };
        if delivery.topic_arn != settings.topic_arn {
            return self.refuse(
                400,
                trigger,
                format!(
                    "delivery from topic {:?}, but trigger {trigger} subscribes {:?}",
                    delivery.topic_arn, settings.topic_arn
                ),
            );
        }
        let profile = match self.profiles.profile(&settings.profile) {
            Ok(profile) => profile,
            Err(err) => return self.refuse(503, trigger, err.to_string()),
        };
        if profile.sns_verify_signatures {
            let cert = match self.certs.get(profile, &delivery.signing_cert_url).await {
                Ok(cert) => cert,
                Err(err) => return self.refuse(403, trigger, err.to_string()),
            };
            if let Err(err) = kumo_triggers::sns_signature::verify(&delivery, &cert) {
                return self.refuse(403, trigger, err.to_string());
            }
        }
        match delivery.message_type {
            MessageType::SubscriptionConfirmation => {
                let host = sns_host(profile.endpoint_of(Service::Sns), &profile.region)
                    .unwrap_or_default();
                let url = delivery.subscribe_url.as_deref().unwrap_or_default();
                if let Err(err) = check_url("SubscribeURL", url, &host, false) {
                    return self.refuse(400, trigger, err.to_string());
                }
                self.confirm(trigger, settings, &delivery).await
            }
            MessageType::UnsubscribeConfirmation => reply(200, "noted"),
            MessageType::Notification => self.notification(record, settings, &delivery).await,
        }
    }

    async fn confirm(&self, trigger: &str, settings: &SnsSettings, delivery: &Delivery) -> Reply {
        let sns = match super::client(&self.profiles, &settings.profile) {
            Ok(sns) => sns,
            Err(err) => return self.refuse(503, trigger, err.to_string()),
        };
        let confirmed = sns
            .confirm_subscription()
            .topic_arn(&settings.topic_arn)
            .token(delivery.token.clone().unwrap_or_default())
            .send()
            .await;
        match confirmed {
            Ok(_) => {
                tracing::info!(%trigger, topic = %settings.topic_arn, "SNS subscription confirmed");
                reply(200, "confirmed")
            }
            Err(err) => self.refuse(
                502,
                trigger,
                format!(
                    "SNS ConfirmSubscription on {}: {}",
                    settings.topic_arn,
                    aws_sdk_sns::error::DisplayErrorContext(&err)
                ),
            ),
        }
    }

    async fn notification(
        &self,
        record: &TriggerRecord,
        settings: &SnsSettings,
        delivery: &Delivery,
    ) -> Reply {
        let trigger = &record.name;
        if let Some(policy) = &settings.filter_policy {
            let passes = FilterPolicy::parse(policy)
                .map(|p| p.matches(&delivery.attributes()))
                .unwrap_or(false);
            if !passes {
                self.counters.filtered.fetch_add(1, Ordering::Relaxed);
                return Reply {
                    status: 200,
                    body: json!({"queued": 0, "filtered": 1}),
                };
            }
        }
        let payload = Bytes::from(
            delivery
                .lambda_event(&settings.subscription_arn)
                .to_string(),
        );
        if payload.len() > MAX_ASYNC_PAYLOAD_BYTES {
            return self.refuse(
                413,
                trigger,
                format!(
                    "event of {} bytes is over the {MAX_ASYNC_PAYLOAD_BYTES}-byte limit",
                    payload.len()
                ),
            );
        }
        let invoke = InvokeRequest {
            qualifier: record.qualifier.clone(),
            invocation_type: InvocationType::Event,
            companion: EventCompanion::Delivery {
                key: format!("{trigger}\u{0}sns\u{0}{}", delivery.message_id),
                seen_ms: chrono::Utc::now().timestamp_millis(),
            },
            ..InvokeRequest::new(Source::Sns, record.function.clone(), payload)
        };
        match self.invoker.invoke(invoke).await {
            Ok(Invoked::Queued(_) | Invoked::Completed(_)) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                Reply {
                    status: 200,
                    body: json!({"queued": 1, "duplicates": 0}),
                }
            }
            Ok(Invoked::AlreadyQueued) => {
                self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                Reply {
                    status: 200,
                    body: json!({"queued": 0, "duplicates": 1}),
                }
            }
            Err(err) => {
                tracing::error!(%err, %trigger, "queueing an SNS notification failed");
                reply(503, "kumod could not queue the notification durably; retry")
            }
        }
    }
}
