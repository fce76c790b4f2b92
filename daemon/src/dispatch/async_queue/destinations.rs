//! Delivering destination records (docs/wire-formats.md §7, §11): to a
//! function as a new asynchronous event, or to an SQS queue / SNS topic
//! through the sending function's credentials profile. Delivery is best
//! effort: a failure is logged (a failed event also stays in Kumo's own
//! dead-letter queue).

use std::sync::Arc;

use serde_json::{json, Value};

use super::remote_targets::{self, RemoteTarget};
use super::{NewEvent, Shared};
use crate::state::store::EventCompanion;

/// Sends `record` about event `event_id` of a function whose credentials
/// profile is `profile` to `destination`.
pub(crate) async fn deliver(
    shared: &Arc<Shared>,
    event_id: &str,
    destination: &str,
    profile: &str,
    record: &Value,
) {
    let functions = &shared.functions;
    if let Some(target) = RemoteTarget::parse(destination) {
        let body = record.to_string();
        let sent =
            remote_targets::send(functions.s3(), profile, destination, &target, body, &[]).await;
        match sent {
            Ok(()) => tracing::info!(event = %event_id, %destination, "destination record sent"),
            Err(err) => {
                tracing::error!(%err, event = %event_id, "sending the destination record failed")
            }
        }
        return;
    }
    let Ok(kumo_proto::model::FunctionRef {
        name, qualifier, ..
    }) = kumo_proto::model::FunctionRef::parse(destination, None)
    else {
        tracing::error!(event = %event_id, %destination, "the destination is not a function name; no record sent");
        return;
    };
    if functions.get_record(&name).is_err() {
        tracing::error!(event = %event_id, %destination, "the destination function does not exist; no record sent");
        return;
    }
    let new = NewEvent {
        function: name,
        qualifier,
        payload: record.to_string(),
        replay_of: String::new(),
    };
    if let Err(err) = super::enqueue(shared, new, EventCompanion::None).await {
        tracing::error!(%err, %destination, event = %event_id, "sending the destination record failed");
    }
}

/// What a succeeded event's record says.
pub struct Success<'a> {
    /// The event id (`requestId`).
    pub id: &'a str,
    /// The invoked function's ARN.
    pub function_arn: &'a str,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// The event's payload.
    pub payload: &'a str,
    /// The version that ran.
    pub version: &'a str,
    /// The function's answer.
    pub response: &'a [u8],
}

/// Lambda's on-success destination record (`condition` `Success`).
pub fn success_record(success: &Success<'_>) -> Value {
    let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap_or(Value::Null);
    json!({
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "requestContext": {
            "requestId": success.id,
            "functionArn": success.function_arn,
            "condition": "Success",
            "approximateInvokeCount": success.attempts,
        },
        "requestPayload": parse(success.payload.as_bytes()),
        "responseContext": {
            "statusCode": 200,
            "executedVersion": success.version,
        },
        "responsePayload": parse(success.response),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_records_have_lambdas_shape() {
        let record = success_record(&Success {
            id: "e1",
            function_arn: "arn:aws:lambda:r:1:function:f",
            attempts: 2,
            payload: r#"{"a":1}"#,
            version: "$LATEST",
            response: br#"{"ok":true}"#,
        });
        assert_eq!(record["requestContext"]["condition"], "Success");
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 2);
        assert_eq!(record["requestPayload"]["a"], 1);
        assert_eq!(record["responsePayload"]["ok"], true);
        assert_eq!(record["responseContext"]["executedVersion"], "$LATEST");
        assert!(record["responseContext"].get("functionError").is_none());
    }
}
