//! How one invocation ended, classified: the outcome kumod gets, the
//! payload, the error type, the REPORT status and whether the instance may
//! be reused. Pure: plain values in, plain values out.

use std::time::Duration;

use bytes::Bytes;
use kumo_proto::agent::Outcome;

use crate::invocation_log::ReportStatus;
use crate::runtime_api::{self, RuntimeReply};
use crate::sandbox::RuntimeExit;

/// How waiting for one invocation's reply ended.
#[derive(Debug)]
pub enum Ending {
    /// The runtime replied.
    Reply(RuntimeReply),
    /// The reply channel closed without a reply (should not happen).
    ReplyLost,
    /// The runtime process ended.
    Exit(RuntimeExit),
    /// The invocation ran past the function's timeout.
    Timeout,
    /// Init ran past the init timeout.
    InitTimeout,
}

/// What else decides the classification.
#[derive(Debug, Clone, Copy)]
pub struct Circumstances<'a> {
    /// Lambda request id.
    pub request_id: &'a str,
    /// Whether the runtime had finished init (reached `/next`).
    pub initialized: bool,
    /// Whether the kernel OOM-killed a process of the instance.
    pub oom_killed: bool,
    /// The function's timeout.
    pub timeout: Duration,
    /// The init timeout.
    pub init_timeout: Duration,
}

/// The classified ending.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// The result's outcome.
    pub outcome: Outcome,
    /// Response body or error document.
    pub payload: Bytes,
    /// Error type (empty on success).
    pub error_type: String,
    /// Status of the REPORT line.
    pub status: ReportStatus,
    /// Whether the instance may serve another invocation.
    pub reusable: bool,
    /// Seconds after which the invocation timed out, if it did (the log
    /// gets a "Task timed out" line).
    pub timed_out_after: Option<f64>,
}

/// Classifies `ending`.
pub fn classify(ending: Ending, c: Circumstances<'_>) -> Classification {
    let request_id = c.request_id;
    let failed = |outcome, error_type: &str, message: String, status| Classification {
        outcome,
        payload: error_json(error_type, &message),
        error_type: error_type.to_owned(),
        status,
        reusable: false,
        timed_out_after: None,
    };
    match ending {
        Ending::Reply(RuntimeReply::Response(body)) => Classification {
            outcome: Outcome::Success,
            payload: body,
            error_type: String::new(),
            status: ReportStatus::Completed,
            reusable: true,
            timed_out_after: None,
        },
        Ending::Reply(RuntimeReply::Error { body, error_type }) => Classification {
            outcome: Outcome::FunctionError,
            error_type: error_type_of(&body, error_type, "Unhandled"),
            payload: body,
            status: ReportStatus::Completed,
            reusable: true,
            timed_out_after: None,
        },
        Ending::Reply(RuntimeReply::ResponseTooLarge) => Classification {
            outcome: Outcome::FunctionError,
            payload: Bytes::from_static(runtime_api::RESPONSE_TOO_LARGE_BODY.as_bytes()),
            error_type: runtime_api::RESPONSE_TOO_LARGE_TYPE.to_owned(),
            status: ReportStatus::Completed,
            reusable: true,
            timed_out_after: None,
        },
        Ending::Reply(RuntimeReply::InitError { body, error_type }) => {
            let error_type = error_type_of(&body, error_type, "Runtime.Unknown");
            Classification {
                outcome: Outcome::InitError,
                payload: with_request_id(body, request_id),
                error_type: error_type.clone(),
                status: ReportStatus::Error(error_type),
                reusable: false,
                timed_out_after: None,
            }
        }
        Ending::ReplyLost => failed(
            Outcome::PlatformError,
            "Runtime.Unknown",
            format!("RequestId: {request_id} Error: the runtime's reply was lost"),
            ReportStatus::Error("Runtime.Unknown".into()),
        ),
        Ending::Exit(exit) => {
            let report_type = if c.oom_killed {
                "Runtime.OutOfMemory"
            } else {
                "Runtime.ExitError"
            };
            let outcome = if c.initialized {
                Outcome::RuntimeExit
            } else {
                Outcome::InitError
            };
            failed(
                outcome,
                "Runtime.ExitError",
                format!("RequestId: {request_id} Error: Runtime exited with error: {exit}"),
                ReportStatus::Error(report_type.into()),
            )
        }
        Ending::Timeout => {
            let seconds = c.timeout.as_secs_f64();
            Classification {
                timed_out_after: Some(seconds),
                ..failed(
                    Outcome::Timeout,
                    "Sandbox.Timedout",
                    format!(
                        "RequestId: {request_id} Error: Task timed out after {seconds:.2} seconds"
                    ),
                    ReportStatus::Timeout,
                )
            }
        }
        Ending::InitTimeout => {
            let seconds = c.init_timeout.as_secs_f64();
            failed(
                Outcome::InitError,
                "Sandbox.Timedout",
                format!("RequestId: {request_id} Error: Init timed out after {seconds:.2} seconds"),
                ReportStatus::Timeout,
            )
        }
    }
}

/// An init error document as the caller sees it: runtimes post it before
/// any invocation exists, with `"requestId": ""`; the invocation that met
/// it fills in its own id, as Lambda's answer does. Other bytes are kept.
fn with_request_id(body: Bytes, request_id: &str) -> Bytes {
    for empty in [&b"\"requestId\": \"\""[..], &b"\"requestId\":\"\""[..]] {
        if let Some(at) = body.windows(empty.len()).position(|w| w == empty) {
            let mut filled = Vec::with_capacity(body.len() + request_id.len());
            filled.extend_from_slice(&body[..at + empty.len() - 1]);
            filled.extend_from_slice(request_id.as_bytes());
            filled.extend_from_slice(&body[at + empty.len() - 1..]);
            return Bytes::from(filled);
        }
    }
    body
}

/// `{"errorType":…,"errorMessage":…}` in that order.
pub fn error_json(error_type: &str, message: &str) -> Bytes {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    Bytes::from(format!(
        "{{\"errorType\":{},\"errorMessage\":{}}}",
        quote(error_type),
        quote(message)
    ))
}

/// The error type of an error document: its `errorType`, else the header's,
/// else `fallback`.
fn error_type_of(body: &[u8], header: Option<String>, fallback: &str) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorDoc {
        #[serde(rename = "errorType")]
        error_type: Option<String>,
    }
    serde_json::from_slice::<ErrorDoc>(body)
        .ok()
        .and_then(|d| d.error_type)
        .filter(|t| !t.is_empty())
        .or(header.filter(|t| !t.is_empty()))
        .unwrap_or_else(|| fallback.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "req-1";

    fn circumstances() -> Circumstances<'static> {
        Circumstances {
            request_id: ID,
            initialized: true,
            oom_killed: false,
            timeout: Duration::from_secs(3),
            init_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn error_documents_put_the_type_first() {
        assert_eq!(
            &error_json("Sandbox.Timedout", "a \"b\"")[..],
            br#"{"errorType":"Sandbox.Timedout","errorMessage":"a \"b\""}"#
        );
        assert_eq!(
            error_type_of(br#"{"errorType":"ValueError"}"#, Some("H".into()), "F"),
            "ValueError"
        );
        assert_eq!(error_type_of(b"garbage", Some("H".into()), "F"), "H");
        assert_eq!(error_type_of(b"{}", None, "F"), "F");
    }

    #[test]
    fn a_response_is_a_reusable_success() {
        let c = classify(
            Ending::Reply(RuntimeReply::Response(Bytes::from_static(b"42"))),
            circumstances(),
        );
        assert_eq!(c.outcome, Outcome::Success);
        assert_eq!(&c.payload[..], b"42");
        assert_eq!(c.error_type, "");
        assert_eq!(c.status, ReportStatus::Completed);
        assert!(c.reusable);
        assert_eq!(c.timed_out_after, None);
    }

    #[test]
    fn a_function_error_keeps_the_instance_and_takes_the_documents_type() {
        let c = classify(
            Ending::Reply(RuntimeReply::Error {
                body: Bytes::from_static(br#"{"errorType":"KeyError"}"#),
                error_type: Some("Header".into()),
            }),
            circumstances(),
        );
        assert_eq!(c.outcome, Outcome::FunctionError);
        assert_eq!(c.error_type, "KeyError");
        assert_eq!(c.status, ReportStatus::Completed);
        assert!(c.reusable);
        let too_large = classify(
            Ending::Reply(RuntimeReply::ResponseTooLarge),
            circumstances(),
        );
        assert_eq!(too_large.outcome, Outcome::FunctionError);
        assert_eq!(too_large.error_type, runtime_api::RESPONSE_TOO_LARGE_TYPE);
        assert!(too_large.reusable);
    }

    #[test]
    fn an_init_error_document_gets_the_request_id() {
        let id = "8f5a4c7e-0000-4000-8000-000000000001";
        let posted = br#"{"errorMessage": "Unable to import module 'm'", "errorType": "Runtime.ImportModuleError", "requestId": "", "stackTrace": []}"#;
        let filled = with_request_id(Bytes::from_static(posted), id);
        let value: serde_json::Value = serde_json::from_slice(&filled).unwrap();
        assert_eq!(value["requestId"], id);
        assert_eq!(value["errorType"], "Runtime.ImportModuleError");
        let compact = with_request_id(Bytes::from_static(br#"{"requestId":""}"#), id);
        assert_eq!(
            &compact[..],
            format!(r#"{{"requestId":"{id}"}}"#).as_bytes()
        );
        // A document that names an id, or none, is left as it is.
        let named = Bytes::from_static(br#"{"requestId": "x"}"#);
        assert_eq!(with_request_id(named.clone(), id), named);
    }

    #[test]
    fn an_init_error_discards_the_instance() {
        let c = classify(
            Ending::Reply(RuntimeReply::InitError {
                body: Bytes::from_static(b"{}"),
                error_type: None,
            }),
            circumstances(),
        );
        assert_eq!(c.outcome, Outcome::InitError);
        assert_eq!(c.status, ReportStatus::Error("Runtime.Unknown".into()));
        assert!(!c.reusable);
    }

    #[test]
    fn an_exit_is_a_runtime_exit_after_init_and_an_init_error_before() {
        let after = classify(Ending::Exit(RuntimeExit::Exited(1)), circumstances());
        assert_eq!(after.outcome, Outcome::RuntimeExit);
        assert_eq!(after.error_type, "Runtime.ExitError");
        assert_eq!(
            after.status,
            ReportStatus::Error("Runtime.ExitError".into())
        );
        assert_eq!(
            &after.payload[..],
            br#"{"errorType":"Runtime.ExitError","errorMessage":"RequestId: req-1 Error: Runtime exited with error: exit status 1"}"#
        );
        assert!(!after.reusable);
        let before = classify(
            Ending::Exit(RuntimeExit::Signaled(9)),
            Circumstances {
                initialized: false,
                oom_killed: true,
                ..circumstances()
            },
        );
        assert_eq!(before.outcome, Outcome::InitError);
        // The REPORT line names the OOM kill; the result keeps ExitError.
        assert_eq!(
            before.status,
            ReportStatus::Error("Runtime.OutOfMemory".into())
        );
        assert_eq!(before.error_type, "Runtime.ExitError");
    }

    #[test]
    fn timeouts_name_their_limit() {
        let c = classify(Ending::Timeout, circumstances());
        assert_eq!(c.outcome, Outcome::Timeout);
        assert_eq!(c.status, ReportStatus::Timeout);
        assert_eq!(c.timed_out_after, Some(3.0));
        assert!(String::from_utf8_lossy(&c.payload).contains("Task timed out after 3.00 seconds"));
        assert!(!c.reusable);
        let init = classify(Ending::InitTimeout, circumstances());
        assert_eq!(init.outcome, Outcome::InitError);
        assert_eq!(init.error_type, "Sandbox.Timedout");
        assert_eq!(init.timed_out_after, None);
        assert!(
            String::from_utf8_lossy(&init.payload).contains("Init timed out after 10.00 seconds")
        );
        let lost = classify(Ending::ReplyLost, circumstances());
        assert_eq!(lost.outcome, Outcome::PlatformError);
        assert!(!lost.reusable);
    }
}
