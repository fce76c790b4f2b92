//! Lambda's Invoke API and management API ([`management`]) on kumod's HTTP
//! listener, so AWS SDKs and the AWS CLI deploy and invoke Kumo functions
//! unchanged. Invoke is
//! `POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=Q]`
//! with `X-Amz-Invocation-Type`, `X-Amz-Log-Type`, `X-Amz-Client-Context`,
//! authenticated with AWS Signature Version 4 against access keys in
//! kumod's configuration. Errors carry AWS's shape (`X-Amzn-ErrorType` and
//! a JSON body) so SDKs raise the usual exceptions.

pub mod errors;
pub mod management;
pub mod shapes;
pub mod sigv4;

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use bytes::Bytes;
use kumo_triggers::percent::decode_lossy;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::dispatch::agents::DispatchError;
use crate::dispatch::invoke::{InvocationType, InvokeError, InvokeRequest, Invoker, Source};
use crate::state::functions::FunctionError;

/// Path prefix of the Invoke operation.
pub const PREFIX: &str = "/2015-03-31/functions/";

pub use errors::aws_error;

/// Whether `path` belongs to Lambda's REST API: it starts with an API
/// version date, `/YYYY-MM-DD/` (docs/wire-formats.md §12).
pub fn is_lambda_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.len() >= 12
        && bytes[0] == b'/'
        && bytes[11] == b'/'
        && bytes[1..11].iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
}

/// `[invoke_api]` in kumod.toml.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InvokeApiConfig {
    /// Access keys whose SigV4 signatures are accepted.
    pub access_keys: Vec<AccessKey>,
    /// Accept unsigned requests too (only for trusted networks).
    pub allow_unsigned: bool,
    /// S3 profile through which the management API fetches
    /// `Code.S3Bucket/S3Key` packages (unset: only `ZipFile` is accepted).
    pub code_s3_profile: Option<String>,
}

/// One access key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    /// The key id (what clients put in `aws_access_key_id`).
    pub access_key_id: String,
    /// File holding the secret (trailing whitespace ignored).
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    /// The secret itself (prefer the file).
    #[serde(default)]
    pub secret_access_key: Option<String>,
}

/// An access key whose secret cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("invoke_api access key {access_key_id}: {message}")]
pub struct AccessKeyError {
    /// The key.
    pub access_key_id: String,
    /// What failed.
    pub message: String,
}

/// An HTTP request as the API sees it.
pub struct ApiRequest {
    /// Method.
    pub method: String,
    /// Path, still percent-encoded.
    pub raw_path: String,
    /// Query without `?`.
    pub raw_query: String,
    /// Headers, lowercase names.
    pub headers: BTreeMap<String, String>,
    /// Body.
    pub body: Bytes,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct ApiResponse {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// The Invoke and management APIs.
#[derive(Clone)]
pub struct InvokeApi {
    invoker: Invoker,
    management: management::Management,
    keys: BTreeMap<String, String>,
    allow_unsigned: bool,
}

impl InvokeApi {
    /// The API over these parts, with the configured keys read now.
    pub fn new(
        invoker: Invoker,
        management: management::Management,
        config: &InvokeApiConfig,
    ) -> Result<Self, AccessKeyError> {
        let mut keys = BTreeMap::new();
        for key in &config.access_keys {
            let fail = |message: String| AccessKeyError {
                access_key_id: key.access_key_id.clone(),
                message,
            };
            let secret = match (&key.secret_access_key_file, &key.secret_access_key) {
                (Some(path), _) => std::fs::read_to_string(path)
                    .map(|s| s.trim_end().to_string())
                    .map_err(|e| fail(format!("reading {}: {e}", path.display())))?,
                (None, Some(secret)) => secret.clone(),
                (None, None) => {
                    return Err(fail(
                        "set secret_access_key_file (or secret_access_key)".into(),
                    ))
                }
            };
            keys.insert(key.access_key_id.clone(), secret);
        }
        Ok(Self {
            invoker,
            management,
            keys,
            allow_unsigned: config.allow_unsigned,
        })
    }

    fn authenticate(&self, request: &ApiRequest) -> Result<(), ApiResponse> {
        if self.allow_unsigned && !request.headers.contains_key("authorization") {
            return Ok(());
        }
        let signed = sigv4::SignedRequest {
            method: &request.method,
            raw_path: &request.raw_path,
            raw_query: &request.raw_query,
            headers: &request.headers,
            body: &request.body,
        };
        sigv4::verify(&signed, chrono::Utc::now(), |key| {
            self.keys.get(key).cloned()
        })
        .map(|_| ())
        .map_err(|e| aws_error(403, e.code, &e.message))
    }

    /// Answers one request of Lambda's REST API ([`is_lambda_path`]).
    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let invoke_name = request
            .raw_path
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_suffix("/invocations"))
            .filter(|name| !name.contains('/'));
        if invoke_name.is_some() && request.method != "POST" {
            return aws_error(405, "UnknownOperationException", "Invoke is POST");
        }
        if let Err(refused) = self.authenticate(&request) {
            return refused;
        }
        let Some(encoded_name) = invoke_name else {
            return self.management.handle(&request).await;
        };
        let given = decode_lossy(encoded_name, false);
        let query_qualifier = request
            .raw_query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == "Qualifier")
            .map(|(_, v)| decode_lossy(v, false));
        let invocation_type = match request
            .headers
            .get("x-amz-invocation-type")
            .map(String::as_str)
        {
            None | Some("RequestResponse") => InvocationType::RequestResponse,
            Some("Event") => InvocationType::Event,
            Some("DryRun") => InvocationType::DryRun,
            Some(other) => {
                return aws_error(
                    400,
                    "InvalidParameterValueException",
                    &format!(
                        "X-Amz-Invocation-Type {other:?} is not RequestResponse, Event or DryRun"
                    ),
                )
            }
        };
        let client_context = match request.headers.get("x-amz-client-context") {
            Some(encoded) => match base64::engine::general_purpose::STANDARD.decode(encoded.trim())
            {
                Ok(bytes) if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok() => {
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                _ => {
                    return aws_error(
                        400,
                        "InvalidRequestContentException",
                        "X-Amz-Client-Context must be base64 of a JSON object",
                    )
                }
            },
            None => String::new(),
        };
        let log_tail = request
            .headers
            .get("x-amz-log-type")
            .is_some_and(|t| t == "Tail");
        let invoke = InvokeRequest {
            qualifier: query_qualifier,
            invocation_type,
            log_tail,
            client_context,
            ..InvokeRequest::new(Source::InvokeApi, given, request.body)
        };
        let outcome = self
            .invoker
            .invoke(invoke)
            .await
            .map(crate::dispatch::invoke::Invoked::into_response);
        match outcome {
            Ok(answer) => {
                let mut headers = vec![
                    ("x-amzn-RequestId".to_string(), answer.request_id.clone()),
                    ("Content-Type".to_string(), "application/json".to_string()),
                ];
                if answer.status_code == 200 {
                    headers.push((
                        "X-Amz-Executed-Version".into(),
                        answer.executed_version.clone(),
                    ));
                    if !answer.function_error.is_empty() {
                        headers
                            .push(("X-Amz-Function-Error".into(), answer.function_error.clone()));
                    }
                    if log_tail {
                        let encoded = base64::engine::general_purpose::STANDARD
                            .encode(answer.log_tail.as_bytes());
                        headers.push(("X-Amz-Log-Result".into(), encoded));
                    }
                }
                ApiResponse {
                    status: answer.status_code as u16,
                    headers,
                    body: if answer.status_code == 200 {
                        answer.payload
                    } else {
                        Vec::new()
                    },
                }
            }
            Err(err) => error_response(&err),
        }
    }
}

/// AWS's status and error name for an invoke failure.
fn error_response(err: &InvokeError) -> ApiResponse {
    let message = err.to_string();
    let (status, code) = match err {
        InvokeError::BadReference(_) => (400, "InvalidParameterValueException"),
        InvokeError::Function(FunctionError::NotFound { .. }) => (404, "ResourceNotFoundException"),
        InvokeError::Function(_) => (500, "ServiceException"),
        InvokeError::InvalidJson(_) => (400, "InvalidRequestContentException"),
        InvokeError::TooLarge { .. } => (413, "RequestTooLargeException"),
        InvokeError::Throttled(_) | InvokeError::Dispatch(DispatchError::NoCapacity { .. }) => {
            (429, "TooManyRequestsException")
        }
        InvokeError::Dispatch(_) | InvokeError::Queue(_) => (500, "ServiceException"),
    };
    let mut response = aws_error(status, code, &message);
    if let InvokeError::Throttled(throttle) = err {
        response.body = json!({"Type": "User", "message": message, "Message": message, "__type": code, "Reason": throttle.reason()})
            .to_string()
            .into_bytes();
    }
    response
}
