//! One attempt of an asynchronous event, and what follows it: success
//! removes the event; a function error (exception, timeout, crash, init
//! failure) is retried after the configured delay until the retries are
//! used up; a throttle or platform error is re-queued with backoff without
//! using a retry.

use std::sync::Arc;

use kumo_proto::agent::{InvocationResult, Outcome};

use super::schedule::Queued;
use super::{blocking, dead_letters, destinations, now_ms, Shared};
use crate::dispatch::agents::DispatchError;
use crate::dispatch::concurrency::Permit;
use crate::dispatch::invoke::Invoker;
use crate::state::qualifiers;
use crate::state::store::{DeadLetterCondition, EventRecord};

/// Longest error message kept with an event (Lambda's DLQ attribute limit).
pub const MAX_ERROR_MESSAGE_BYTES: usize = 1024;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The function returned normally.
    Succeeded,
    /// The function failed; counts against the retries.
    FunctionFailed {
        /// errorType.
        error_type: String,
        /// errorMessage (at most 1 KB).
        message: String,
        /// The error document.
        response: String,
    },
    /// The platform could not run it; re-queued with backoff.
    PlatformFailed {
        /// Error kind.
        error_type: String,
        /// What happened.
        message: String,
        /// The agent went away mid-attempt: the function may have run.
        may_have_run: bool,
    },
}

/// Classifies an agent result or dispatch failure.
pub fn verdict(outcome: Result<&InvocationResult, &DispatchError>) -> Verdict {
    let result = match outcome {
        Ok(result) => result,
        Err(err) => {
            return Verdict::PlatformFailed {
                error_type: "Kumo.DispatchFailed".into(),
                message: truncate(&err.to_string()),
                may_have_run: matches!(
                    err,
                    DispatchError::AgentLost { .. } | DispatchError::Timeout { .. }
                ),
            }
        }
    };
    let error_type = result.error_type.clone();
    let message = || truncate(&error_message(&result.payload));
    match Outcome::try_from(result.outcome) {
        Ok(Outcome::Success) => Verdict::Succeeded,
        Ok(Outcome::PlatformError) => Verdict::PlatformFailed {
            error_type,
            message: message(),
            may_have_run: false,
        },
        _ => Verdict::FunctionFailed {
            error_type,
            message: message(),
            response: String::from_utf8_lossy(&result.payload).into_owned(),
        },
    }
}

/// The `errorMessage` of an error document, or the document itself.
fn error_message(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(payload).into_owned())
}

/// At most [`MAX_ERROR_MESSAGE_BYTES`], cut on a character boundary.
pub fn truncate(message: &str) -> String {
    let mut end = message.len().min(MAX_ERROR_MESSAGE_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_string()
}

/// Runs one attempt of a due event holding `permit`.
pub(crate) async fn run(shared: Arc<Shared>, invoker: Invoker, queued: Queued, permit: Permit) {
    let store = shared.store.clone();
    let id = queued.id.clone();
    let event = match blocking(move || store.get_event(&id)).await {
        Ok(Some(event)) => event,
        Ok(None) => {
            shared.schedule().finished(&queued.function);
            return;
        }
        Err(err) => {
            tracing::error!(%err, event = %queued.id, "reading a queued event failed; retrying later");
            let due = now_ms() + shared.policy.backoff(1).as_millis() as i64;
            shared.schedule().requeue(queued, due);
            return;
        }
    };
    let functions = &shared.functions;
    let mut event = event;
    let target = match qualifiers::resolve(functions, &event.function, event.qualifier.as_deref()) {
        Ok(target) => target,
        Err(_) if functions.get_record(&event.function).is_err() => {
            // The function itself was deleted: its events go with it.
            shared.schedule().finished(&queued.function);
            discard_event(&shared, &event.id).await;
            return;
        }
        Err(err) => {
            // The version or alias it was sent to is gone.
            event.last_error_type = "ResourceNotFoundException".into();
            event.last_error_message = truncate(&err.to_string());
            dead_letters::dead_letter(shared.clone(), event, DeadLetterCondition::RetriesExhausted)
                .await;
            return;
        }
    };
    event.dispatched = true;
    persist(&shared, &event, false).await;
    let executed = invoker
        .execute(
            &target,
            event.payload.clone().into_bytes(),
            &event.id,
            String::new(),
            "Event",
            false,
        )
        .await;
    drop(permit);
    let verdict = verdict(executed.as_ref().map(|e| &e.result));
    event.dispatched = false;
    match verdict {
        Verdict::Succeeded => {
            let store = shared.store.clone();
            let id = event.id.clone();
            if let Err(err) = blocking(move || store.delete_event(&id)).await {
                tracing::error!(%err, event = %event.id, "removing a finished event failed; it may run again");
            }
            shared.schedule().finished(&event.function);
            if let Ok(executed) = &executed {
                send_success(&shared, &event, &executed.version, &executed.result.payload).await;
            }
        }
        Verdict::FunctionFailed {
            error_type,
            message,
            response,
        } => {
            event.attempts += 1;
            event.backoffs = 0;
            event.last_error_type = error_type;
            event.last_error_message = message;
            event.last_response = response;
            let delay = shared.policy.retry_delay(event.attempts).as_millis() as i64;
            let max_age_ms = i64::from(target.config.max_event_age_seconds) * 1000;
            if event.attempts > target.config.max_retry_attempts {
                dead_letters::dead_letter(
                    shared.clone(),
                    event,
                    DeadLetterCondition::RetriesExhausted,
                )
                .await;
            } else if now_ms() + delay - event.accepted_ms > max_age_ms {
                // The retry would come after the event's maximum age.
                dead_letters::dead_letter(
                    shared.clone(),
                    event,
                    DeadLetterCondition::EventAgeExceeded,
                )
                .await;
            } else {
                retry_later(&shared, event, delay).await;
            }
        }
        Verdict::PlatformFailed {
            error_type,
            message,
            may_have_run,
        } => {
            tracing::warn!(event = %event.id, function = %event.function, %error_type, %message,
                "asynchronous attempt could not run; re-queued with backoff");
            if may_have_run {
                shared.schedule().redelivered(&event.function);
            }
            event.backoffs += 1;
            if event.attempts == 0 {
                event.last_error_type = error_type;
                event.last_error_message = message;
            }
            let delay = shared.policy.backoff(event.backoffs);
            retry_later(&shared, event, delay.as_millis() as i64).await;
        }
    }
}

/// Sends the on-success destination record, if the function has one.
async fn send_success(shared: &Arc<Shared>, event: &EventRecord, version: &str, response: &[u8]) {
    let functions = &shared.functions;
    let Ok(record) = functions.get_record(&event.function) else {
        return;
    };
    let destination = &record.config.on_success_destination;
    if destination.is_empty() {
        return;
    }
    let function_arn = functions.arn(&event.function, event.qualifier.as_deref());
    let body = destinations::success_record(&destinations::Success {
        id: &event.id,
        function_arn: &function_arn,
        attempts: event.attempts + 1,
        payload: &event.payload,
        version,
        response,
    });
    destinations::deliver(
        shared,
        &event.id,
        destination,
        &record.config.credentials_profile,
        &body,
    )
    .await;
}

async fn retry_later(shared: &Arc<Shared>, mut event: EventRecord, delay_ms: i64) {
    event.not_before_ms = now_ms() + delay_ms;
    persist(shared, &event, false).await;
    let due = event.not_before_ms;
    shared.schedule().requeue(
        Queued {
            id: event.id.clone(),
            function: event.function.clone(),
            accepted_ms: event.accepted_ms,
        },
        due,
    );
    shared.wake.notify_one();
}

async fn persist(shared: &Arc<Shared>, event: &EventRecord, durable: bool) {
    let store = shared.store.clone();
    let copy = event.clone();
    if let Err(err) = blocking(move || store.put_event(&copy, durable)).await {
        tracing::error!(%err, event = %event.id, "updating a queued event failed");
    }
}

async fn discard_event(shared: &Arc<Shared>, id: &str) {
    let store = shared.store.clone();
    let key = id.to_string();
    if let Err(err) = blocking(move || store.delete_event(&key)).await {
        tracing::error!(%err, event = %id, "removing an event of a deleted function failed");
    }
}

/// Drops a due event whose function was deleted.
pub(crate) async fn discard(shared: Arc<Shared>, queued: Queued) {
    tracing::warn!(event = %queued.id, function = %queued.function,
        "dropping an asynchronous event: its function was deleted");
    discard_event(&shared, &queued.id).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: Outcome, error_type: &str, payload: &[u8]) -> InvocationResult {
        InvocationResult {
            outcome: outcome as i32,
            error_type: error_type.into(),
            payload: payload.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn outcomes_are_classified() {
        assert_eq!(
            verdict(Ok(&result(Outcome::Success, "", b"{}"))),
            Verdict::Succeeded
        );
        let failed = verdict(Ok(&result(
            Outcome::FunctionError,
            "ValueError",
            br#"{"errorMessage":"boom","errorType":"ValueError"}"#,
        )));
        assert!(matches!(&failed, Verdict::FunctionFailed { message, .. } if message == "boom"));
        let timeout = verdict(Ok(&result(Outcome::Timeout, "Sandbox.Timedout", b"")));
        assert!(matches!(timeout, Verdict::FunctionFailed { .. }));
        let platform = verdict(Ok(&result(
            Outcome::PlatformError,
            "Kumo.SandboxError",
            b"",
        )));
        assert!(matches!(
            platform,
            Verdict::PlatformFailed {
                may_have_run: false,
                ..
            }
        ));
        let lost = DispatchError::AgentLost {
            agent: "a".into(),
            request_id: "r".into(),
            reason: "no heartbeat for 15000 ms".into(),
        };
        assert!(matches!(
            verdict(Err(&lost)),
            Verdict::PlatformFailed {
                may_have_run: true,
                ..
            }
        ));
    }

    #[test]
    fn messages_are_cut_to_one_kilobyte_on_a_char_boundary() {
        let long = "é".repeat(1000);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_ERROR_MESSAGE_BYTES);
        assert!(cut.len() >= MAX_ERROR_MESSAGE_BYTES - 1);
    }
}
