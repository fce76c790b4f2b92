//! Lambda's management REST API (docs/wire-formats.md §12) on kumod's HTTP
//! listener: each operation parses Lambda's request shape, then calls the
//! same `state::` functions as the gRPC control API (one model, one
//! validation, one store) and answers in Lambda's shape.

mod aliases;
mod functions;
mod layers;
mod settings;

use kumo_proto::model::FunctionRef;
use kumo_triggers::percent::decode_lossy;
use serde_json::Value;

use super::errors::ApiError;
use super::{ApiRequest, ApiResponse};
use crate::dispatch::agents::AgentRegistry;
use crate::state::functions::Functions;
use crate::state::layers::Layers;
use crate::state::versions::Versions;

/// Largest management request body: Lambda's CreateFunction limit
/// (a 50 MB ZIP in base64 plus the configuration).
pub const MAX_MANAGEMENT_BODY: usize = 70_167_211;

/// The management operations' state.
#[derive(Clone)]
pub struct Management {
    functions: Functions,
    versions: Versions,
    layers: Layers,
    agents: AgentRegistry,
    code_s3_profile: Option<String>,
}

/// What an operation answers: a status and a JSON body (none for 204).
type Answer = Result<(u16, Option<Value>), ApiError>;

impl Management {
    /// The API over these parts; `code_s3_profile` is the S3 profile that
    /// `Code.S3Bucket/S3Key` are fetched through.
    pub fn new(
        functions: Functions,
        versions: Versions,
        layers: Layers,
        agents: AgentRegistry,
        code_s3_profile: Option<String>,
    ) -> Self {
        Self {
            functions,
            versions,
            layers,
            agents,
            code_s3_profile,
        }
    }

    /// Adds `StateReason` to every function configuration in `value` whose
    /// runtime names a language version the agents do not run.
    fn annotate(&self, value: &mut Value) {
        match value {
            Value::Array(items) => items.iter_mut().for_each(|item| self.annotate(item)),
            Value::Object(object) => {
                if let (Some(runtime), true) = (
                    object.get("Runtime").and_then(Value::as_str),
                    object.contains_key("FunctionArn"),
                ) {
                    if let Some(warning) = self.agents.runtime_warning(runtime) {
                        object.insert("StateReason".into(), Value::String(warning));
                        object.insert(
                            "StateReasonCode".into(),
                            Value::String("KumoRuntimeVersion".into()),
                        );
                    }
                }
                for key in ["Configuration", "Functions", "Versions"] {
                    if let Some(inner) = object.get_mut(key) {
                        self.annotate(inner);
                    }
                }
            }
            _ => {}
        }
    }

    /// Answers one (authenticated) management request.
    pub async fn handle(&self, request: &ApiRequest) -> ApiResponse {
        let mut answer = self.route(request).await;
        if let Ok((_, Some(body))) = &mut answer {
            self.annotate(body);
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        match answer {
            Ok((status, body)) => ApiResponse {
                status,
                headers: vec![
                    ("x-amzn-RequestId".into(), request_id),
                    ("Content-Type".into(), "application/json".into()),
                ],
                body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
            },
            Err(err) => err.response(),
        }
    }

    async fn route(&self, request: &ApiRequest) -> Answer {
        let path = request.raw_path.trim_end_matches('/');
        let segments: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(|s| decode_lossy(s, false))
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let method = request.method.as_str();
        let body = &request.body[..];
        match (method, segments.as_slice()) {
            ("POST", ["2015-03-31", "functions"]) => self.create_function(body).await,
            ("GET", ["2015-03-31", "functions"]) => self.list_functions(request).await,
            ("GET", ["2015-03-31", "functions", name]) => self.get_function(name, request).await,
            ("DELETE", ["2015-03-31", "functions", name]) => {
                self.delete_function(name, request).await
            }
            ("GET", ["2015-03-31", "functions", name, "configuration"]) => {
                self.get_configuration(name, request).await
            }
            ("PUT", ["2015-03-31", "functions", name, "configuration"]) => {
                self.update_configuration(name, body).await
            }
            ("PUT", ["2015-03-31", "functions", name, "code"]) => {
                self.update_code(name, body).await
            }
            ("POST", ["2015-03-31", "functions", name, "versions"]) => {
                self.publish_version(name, body).await
            }
            ("GET", ["2015-03-31", "functions", name, "versions"]) => {
                self.list_versions(name, request).await
            }
            ("POST", ["2015-03-31", "functions", name, "aliases"]) => {
                self.create_alias(name, body).await
            }
            ("GET", ["2015-03-31", "functions", name, "aliases"]) => {
                self.list_aliases(name, request).await
            }
            ("GET", ["2015-03-31", "functions", name, "aliases", alias]) => {
                self.get_alias(name, alias).await
            }
            ("PUT", ["2015-03-31", "functions", name, "aliases", alias]) => {
                self.update_alias(name, alias, body).await
            }
            ("DELETE", ["2015-03-31", "functions", name, "aliases", alias]) => {
                self.delete_alias(name, alias).await
            }
            ("PUT", ["2017-10-31", "functions", name, "concurrency"]) => {
                self.put_concurrency(name, body).await
            }
            ("DELETE", ["2017-10-31", "functions", name, "concurrency"]) => {
                self.delete_concurrency(name).await
            }
            ("GET", ["2019-09-30", "functions", name, "concurrency"]) => {
                self.get_concurrency(name).await
            }
            ("PUT", ["2019-09-25", "functions", name, "event-invoke-config"]) => {
                self.put_event_invoke_config(name, body, true).await
            }
            ("POST", ["2019-09-25", "functions", name, "event-invoke-config"]) => {
                self.put_event_invoke_config(name, body, false).await
            }
            ("GET", ["2019-09-25", "functions", name, "event-invoke-config"]) => {
                self.get_event_invoke_config(name).await
            }
            ("DELETE", ["2019-09-25", "functions", name, "event-invoke-config"]) => {
                self.delete_event_invoke_config(name).await
            }
            ("GET", ["2016-08-19", "account-settings"]) => self.account_settings().await,
            ("GET", ["2018-10-31", "layers"]) => self.layers_query(request).await,
            ("POST", ["2018-10-31", "layers", name, "versions"]) => {
                self.publish_layer_version(name, body).await
            }
            ("GET", ["2018-10-31", "layers", name, "versions"]) => {
                self.list_layer_versions(name, request).await
            }
            ("GET", ["2018-10-31", "layers", name, "versions", version]) => {
                self.get_layer_version(name, version).await
            }
            ("DELETE", ["2018-10-31", "layers", name, "versions", version]) => {
                self.delete_layer_version(name, version).await
            }
            _ => Err(unimplemented(method, &segments, path)),
        }
    }

    /// The function name a path or body names: a plain name, or an ARN
    /// (full or partial) of this kumod's region and account.
    fn function_name(&self, given: &str) -> Result<String, ApiError> {
        let function =
            FunctionRef::parse(given, None).map_err(|e| ApiError::invalid(e.to_string()))?;
        self.functions.check_here(&function)?;
        if let Some(qualifier) = &function.qualifier {
            return Err(ApiError::invalid(format!(
                "{given:?} carries the qualifier {qualifier:?}; this operation takes an unqualified function name"
            )));
        }
        Ok(function.name)
    }
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::new(500, "ServiceException", format!("task failed: {e}")))?
        .map_err(Into::into)
}

/// A query parameter, percent-decoded.
fn query_param(request: &ApiRequest, name: &str) -> Option<String> {
    request
        .raw_query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| decode_lossy(v, true))
        .filter(|v| !v.is_empty())
}

/// A list answer `{field: [...], NextMarker}`: one page of `items` after
/// `Marker` (an item's key), at most `MaxItems` (1-10000, default 50),
/// each item in Lambda's `shape`.
fn listing<T>(
    request: &ApiRequest,
    field: &str,
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    shape: impl Fn(&T) -> Value,
) -> Answer {
    let max_items = match query_param(request, "MaxItems") {
        None => 50,
        Some(text) => match text.parse::<usize>() {
            Ok(n @ 1..=10_000) => n,
            _ => {
                return Err(ApiError::invalid(format!(
                    "MaxItems {text:?} is not a number from 1 to 10000"
                )))
            }
        },
    };
    let start = match query_param(request, "Marker") {
        None => 0,
        Some(marker) => items
            .iter()
            .position(|item| key(item) == marker)
            .map(|i| i + 1)
            .ok_or_else(|| ApiError::invalid(format!("Marker {marker:?} is not from this list")))?,
    };
    let rest = items.get(start..).unwrap_or_default();
    let page = &rest[..rest.len().min(max_items)];
    let mut body = serde_json::json!({ field: page.iter().map(shape).collect::<Vec<_>>() });
    if rest.len() > max_items {
        body["NextMarker"] = Value::String(key(&page[max_items - 1]));
    }
    Ok((200, Some(body)))
}

/// Lambda's operation name for a call Kumo does not implement, when known.
fn operation_name(method: &str, segments: &[&str]) -> Option<&'static str> {
    let resource = segments.get(1..).unwrap_or_default();
    Some(match (method, resource) {
        ("POST", ["functions", _, "policy"]) => "AddPermission",
        ("GET", ["functions", _, "policy"]) => "GetPolicy",
        ("DELETE", ["functions", _, "policy", ..]) => "RemovePermission",
        ("POST", ["tags", ..]) => "TagResource",
        ("GET", ["tags", ..]) => "ListTags",
        ("DELETE", ["tags", ..]) => "UntagResource",
        (_, ["functions", _, "url"]) => "FunctionUrlConfig operations",
        (_, ["layers", _, "versions", _, "policy", ..]) => "layer permission operations",
        (_, ["event-source-mappings", ..]) => "event source mapping operations",
        (_, ["code-signing-configs", ..]) => "code signing operations",
        (_, ["functions", _, "provisioned-concurrency"]) => "provisioned concurrency operations",
        (_, ["functions", _, "invoke-async"]) => "InvokeAsync",
        (_, ["functions", _, "response-streaming-invocations"]) => "InvokeWithResponseStream",
        _ => return None,
    })
}

/// The clear 4xx for a call Kumo does not implement.
fn unimplemented(method: &str, segments: &[&str], path: &str) -> ApiError {
    let what = match operation_name(method, segments) {
        Some(name) => {
            format!("Kumo does not implement the Lambda operation {name} ({method} {path})")
        }
        None => {
            format!("Kumo does not implement {method} {path} (not a Lambda operation Kumo serves)")
        }
    };
    ApiError::new(400, "UnsupportedOperationException", what)
}
