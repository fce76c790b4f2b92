//! The dead-letter queue: where an event lands once it failed for good
//! (retries exhausted, too old, or its function disabled), with its payload,
//! request id, last error and attempt count; listing, replay and purge; and
//! the optional on-failure destination that receives Lambda's destination
//! record (docs/wire-formats.md §7).

use std::sync::Arc;

use kumo_proto::control::DeadLetter;
use kumo_proto::model::LATEST;
use serde_json::{json, Value};

use super::remote_targets::{Attribute, RemoteTarget};
use super::schedule::Queued;
use super::{blocking, now_ms, EventQueue, NewEvent, Shared};
use crate::state::functions::FunctionError;
use crate::state::store::{
    DeadLetterCondition, DeadLetterRecord, EventCompanion, EventRecord, StoreError,
};

/// A dead-letter operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// No such function.
    #[error(transparent)]
    Function(#[from] FunctionError),
    /// No such dead letter.
    #[error("dead letter {id} not found for function {function}; `kumo dlq list {function}` shows its ids")]
    NotFound {
        /// The function.
        function: String,
        /// The id asked for.
        id: String,
    },
    /// Neither ids nor all were given.
    #[error("say which dead letters to replay: one or more ids, or --all")]
    NothingSelected,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A replayed event could not be queued.
    #[error("replaying {id}: {message}")]
    Replay {
        /// The dead letter.
        id: String,
        /// What failed.
        message: String,
    },
}

/// Moves a due event to the dead-letter queue by id (loading it first).
pub(crate) async fn dead_letter_by_id(
    shared: Arc<Shared>,
    queued: Queued,
    condition: DeadLetterCondition,
) {
    let store = shared.store.clone();
    let id = queued.id.clone();
    match blocking(move || store.get_event(&id)).await {
        Ok(Some(event)) => dead_letter(shared, event, condition).await,
        Ok(None) => shared.schedule().finished(&queued.function),
        Err(err) => {
            tracing::error!(%err, event = %queued.id, "reading an event to dead-letter failed");
            let due = now_ms() + shared.policy.backoff(1).as_millis() as i64;
            shared.schedule().requeue(queued, due);
        }
    }
}

/// Moves an event whose attempt is over to the dead-letter queue, then
/// sends the destination record to the on-failure destination, if any.
pub(crate) async fn dead_letter(
    shared: Arc<Shared>,
    event: EventRecord,
    condition: DeadLetterCondition,
) {
    let letter = DeadLetterRecord {
        id: event.id.clone(),
        function: event.function.clone(),
        qualifier: event.qualifier.clone(),
        payload: event.payload.clone(),
        condition,
        error_type: event.last_error_type.clone(),
        error_message: event.last_error_message.clone(),
        attempts: event.attempts,
        accepted_ms: event.accepted_ms,
        failed_ms: now_ms(),
        response: event.last_response.clone(),
    };
    let store = shared.store.clone();
    let stored = letter.clone();
    // The dead letter is on disk before the event goes: a crash in between
    // leaves both, and the event is dead-lettered again under the same key.
    let moved = blocking(move || {
        store.put_dead_letter(&stored)?;
        store.delete_event(&stored.id)
    })
    .await;
    if let Err(err) = moved {
        tracing::error!(%err, event = %event.id, "dead-lettering failed; the event stays queued");
        let due = now_ms() + shared.policy.backoff(1).as_millis() as i64;
        shared.schedule().requeue(queued_of(&event), due);
        return;
    }
    shared.schedule().finished(&event.function);
    tracing::warn!(event = %event.id, function = %event.function, condition = condition.as_str(),
        attempts = event.attempts, error_type = %event.last_error_type, "event dead-lettered");
    send_to_dead_letter_target(&shared, &letter).await;
    send_to_destination(&shared, &letter).await;
}

/// The attributes of a message to a dead-letter target (docs/wire-formats.md
/// §11): `ErrorCode` 200 when the function ran and failed, 429 when it never
/// ran; `ErrorMessage` at most 1 KB (the condition when there is none).
pub fn dead_letter_attributes(letter: &DeadLetterRecord) -> Vec<Attribute> {
    let message = if letter.error_message.is_empty() {
        letter.condition.as_str().to_string()
    } else {
        super::attempt::truncate(&letter.error_message)
    };
    vec![
        Attribute {
            name: "RequestID",
            value: letter.id.clone(),
            data_type: "String",
        },
        Attribute {
            name: "ErrorCode",
            value: if letter.attempts > 0 { "200" } else { "429" }.into(),
            data_type: "Number",
        },
        Attribute {
            name: "ErrorMessage",
            value: message,
            data_type: "String",
        },
    ]
}

/// Sends the original event to the function's dead-letter target, if any
/// (a failure is logged; the letter stays in Kumo's own queue either way).
async fn send_to_dead_letter_target(shared: &Arc<Shared>, letter: &DeadLetterRecord) {
    let functions = &shared.functions;
    let Ok(record) = functions.get_record(&letter.function) else {
        return;
    };
    let target_arn = &record.config.dead_letter_target;
    let Some(target) = RemoteTarget::parse(target_arn) else {
        return;
    };
    let sent = super::remote_targets::send(
        functions.s3(),
        &record.config.credentials_profile,
        target_arn,
        &target,
        letter.payload.clone(),
        &dead_letter_attributes(letter),
    )
    .await;
    match sent {
        Ok(()) => {
            tracing::info!(event = %letter.id, target = %target_arn, "event sent to the dead-letter target")
        }
        Err(err) => tracing::error!(%err, event = %letter.id,
            "sending to the dead-letter target failed; the letter stays in Kumo's dead-letter queue"),
    }
}

fn queued_of(event: &EventRecord) -> Queued {
    Queued {
        id: event.id.clone(),
        function: event.function.clone(),
        accepted_ms: event.accepted_ms,
    }
}

async fn send_to_destination(shared: &Arc<Shared>, letter: &DeadLetterRecord) {
    let functions = &shared.functions;
    let Ok(record) = functions.get_record(&letter.function) else {
        return;
    };
    let destination = &record.config.on_failure_destination;
    if destination.is_empty() {
        return;
    }
    let arn = functions.arn(&letter.function, letter.qualifier.as_deref());
    let body = destination_record(letter, &arn);
    super::destinations::deliver(
        shared,
        &letter.id,
        destination,
        &record.config.credentials_profile,
        &body,
    )
    .await;
}

/// Milliseconds since the epoch as RFC 3339 with milliseconds, UTC.
fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Lambda's on-failure destination record for a dead letter.
pub fn destination_record(letter: &DeadLetterRecord, function_arn: &str) -> Value {
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let timestamp = rfc3339_ms(letter.failed_ms);
    let mut record = json!({
        "version": "1.0",
        "timestamp": timestamp,
        "requestContext": {
            "requestId": letter.id,
            "functionArn": function_arn,
            "condition": letter.condition.as_str(),
            "approximateInvokeCount": letter.attempts,
        },
        "requestPayload": parse(&letter.payload),
    });
    if letter.attempts > 0 {
        record["responseContext"] = json!({
            "statusCode": 200,
            "executedVersion": letter.qualifier.clone().unwrap_or_else(|| LATEST.to_string()),
            "functionError": "Unhandled",
        });
        record["responsePayload"] = parse(&letter.response);
    }
    record
}

/// The protocol view of a dead letter.
pub fn to_proto(letter: &DeadLetterRecord) -> DeadLetter {
    DeadLetter {
        id: letter.id.clone(),
        function_name: letter.function.clone(),
        qualifier: letter.qualifier.clone().unwrap_or_default(),
        payload: letter.payload.clone().into_bytes(),
        condition: letter.condition.as_str().to_string(),
        error_type: letter.error_type.clone(),
        error_message: letter.error_message.clone(),
        attempts: letter.attempts,
        accepted_at: rfc3339_ms(letter.accepted_ms),
        failed_at: rfc3339_ms(letter.failed_ms),
        response_payload: letter.response.clone().into_bytes(),
    }
}

impl EventQueue {
    fn existing(&self, function: &str) -> Result<(), DeadLetterError> {
        self.shared.functions.get_record(function)?;
        Ok(())
    }

    /// A function's dead letters, oldest failure first.
    pub fn dead_letters(&self, function: &str) -> Result<Vec<DeadLetterRecord>, DeadLetterError> {
        self.existing(function)?;
        Ok(self.shared.store.list_dead_letters(function)?)
    }

    /// One dead letter.
    pub fn dead_letter(
        &self,
        function: &str,
        id: &str,
    ) -> Result<DeadLetterRecord, DeadLetterError> {
        self.existing(function)?;
        self.shared
            .store
            .get_dead_letter(function, id)?
            .ok_or_else(|| DeadLetterError::NotFound {
                function: function.to_string(),
                id: id.to_string(),
            })
    }

    /// Queues dead letters again as new events (new ids) and removes them;
    /// returns the new event ids.
    pub async fn replay(
        &self,
        function: &str,
        ids: &[String],
        all: bool,
    ) -> Result<Vec<String>, DeadLetterError> {
        let letters = if all {
            self.dead_letters(function)?
        } else if ids.is_empty() {
            return Err(DeadLetterError::NothingSelected);
        } else {
            ids.iter()
                .map(|id| self.dead_letter(function, id))
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut replayed = Vec::with_capacity(letters.len());
        for letter in letters {
            let new = NewEvent {
                function: letter.function.clone(),
                qualifier: letter.qualifier.clone(),
                payload: letter.payload.clone(),
                replay_of: letter.id.clone(),
            };
            let new_id = self
                .submit(new, EventCompanion::None)
                .await
                .map_err(|e| DeadLetterError::Replay {
                    id: letter.id.clone(),
                    message: e.to_string(),
                })?
                .unwrap_or_default();
            let store = self.shared.store.clone();
            let (f, id) = (letter.function.clone(), letter.id.clone());
            blocking(move || store.delete_dead_letter(&f, &id)).await?;
            replayed.push(new_id);
        }
        Ok(replayed)
    }

    /// Removes every dead letter of a function; returns how many.
    pub async fn purge(&self, function: &str) -> Result<u64, DeadLetterError> {
        let letters = self.dead_letters(function)?;
        let store = self.shared.store.clone();
        let function = function.to_string();
        let count = letters.len() as u64;
        blocking(move || {
            for letter in &letters {
                store.delete_dead_letter(&function, &letter.id)?;
            }
            Ok(())
        })
        .await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(attempts: u32) -> DeadLetterRecord {
        DeadLetterRecord {
            id: "4f6c0d8e-0000-4000-8000-000000000001".into(),
            function: "f".into(),
            qualifier: None,
            payload: r#"{"n":1}"#.into(),
            condition: DeadLetterCondition::RetriesExhausted,
            error_type: "ValueError".into(),
            error_message: "boom".into(),
            attempts,
            accepted_ms: 0,
            failed_ms: 1_700_000_000_000,
            response: r#"{"errorMessage":"boom","errorType":"ValueError"}"#.into(),
        }
    }

    #[test]
    fn destination_record_has_lambdas_shape() {
        let record = destination_record(
            &letter(3),
            "arn:aws:lambda:us-east-1:000000000000:function:f",
        );
        assert_eq!(record["version"], "1.0");
        assert_eq!(record["timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(
            record["requestContext"]["requestId"],
            "4f6c0d8e-0000-4000-8000-000000000001"
        );
        assert_eq!(record["requestPayload"]["n"], 1);
        assert_eq!(record["responseContext"]["statusCode"], 200);
        assert_eq!(record["responseContext"]["executedVersion"], "$LATEST");
        assert_eq!(record["responseContext"]["functionError"], "Unhandled");
        assert_eq!(record["responsePayload"]["errorType"], "ValueError");
    }

    #[test]
    fn a_never_run_event_has_no_response_context() {
        let mut l = letter(0);
        l.condition = DeadLetterCondition::ZeroReservedConcurrency;
        let record = destination_record(&l, "arn");
        assert_eq!(
            record["requestContext"]["condition"],
            "ZeroReservedConcurrency"
        );
        assert!(record.get("responseContext").is_none());
    }
}
