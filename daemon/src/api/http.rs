//! kumod's HTTP listener: `GET /healthz`, `GET /metrics` (Prometheus
//! text), Lambda's Invoke API under `/2015-03-31/functions/`, and the MinIO
//! webhook at
//! `/webhooks/minio` (`HEAD` for MinIO's start-up check, `POST` for
//! events, `GET` for its counters), and the web console under `/console/`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use kumo_triggers::minio::MAX_BODY_BYTES;

use crate::api::lambda::management::MAX_MANAGEMENT_BODY;
use crate::api::lambda::{aws_error, ApiRequest, ApiResponse, InvokeApi};
use crate::api::scrape::Scraper;
use crate::sources::webhook::{Reply, Webhook};

/// Path of the MinIO webhook endpoint.
pub const MINIO_WEBHOOK_PATH: &str = "/webhooks/minio";

/// What the HTTP routes use.
pub struct HttpState {
    /// The MinIO webhook endpoint.
    pub webhook: Webhook,
    /// The SNS subscription endpoints.
    pub sns: crate::sources::sns::endpoint::SnsEndpoint,
    /// `/metrics`.
    pub scraper: Scraper,
    /// Lambda's Invoke API.
    pub invoke_api: InvokeApi,
    /// HTTP triggers' routes.
    pub routes: crate::sources::routes::Routes,
    /// The invoke front door HTTP triggers call.
    pub invoker: crate::dispatch::invoke::Invoker,
    /// Account id used in events.
    pub account_id: String,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// Who may read `/metrics`.
    pub metrics_auth: crate::api::metrics_auth::MetricsAuth,
    /// The web console.
    pub console: crate::api::console::Console,
}

/// Largest body of an Invoke API or HTTP-trigger request: Lambda's
/// synchronous payload limit.
const MAX_INVOKE_BODY: usize = kumo_proto::model::MAX_SYNC_PAYLOAD_BYTES;

/// Why a request body was not read.
enum BodyRefused {
    /// Over the limit.
    TooLarge,
    /// Not sent within the body-read timeout.
    TimedOut,
}

/// Splits a request and reads its body within `timeout`, refusing one over
/// `limit` bytes — from its Content-Length before reading, when given.
async fn read_body(
    request: Request<Incoming>,
    timeout: Duration,
    limit: usize,
) -> (Parts, Result<Bytes, BodyRefused>) {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return (parts, Err(BodyRefused::TooLarge));
    }
    let body = match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(body)) => Ok(body.to_bytes()),
        Ok(Err(_)) => Err(BodyRefused::TooLarge),
        Err(_) => Err(BodyRefused::TimedOut),
    };
    (parts, body)
}

/// 408 for a body that did not arrive in time.
fn body_timed_out() -> Response<Full<Bytes>> {
    respond(
        StatusCode::REQUEST_TIMEOUT,
        "application/json",
        Bytes::from_static(b"{\"message\":\"the request body was not sent in time\"}\n"),
    )
}

/// Whether the percent-decoded `path` holds a NUL byte (never a valid
/// function name, trigger path or key).
fn has_nul(path: &str) -> bool {
    path.contains('\0') || kumo_triggers::percent::decode(path, false).0.contains(&0)
}

/// A response with these headers and body.
fn build(
    status: u16,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<Response<Full<Bytes>>, hyper::http::Error> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Full::new(Bytes::from(body)))
}

/// Runs an HTTP trigger for a request under `/http`.
async fn http_trigger(
    state: &HttpState,
    request: Request<Incoming>,
    peer: std::net::SocketAddr,
    local_port: u16,
) -> Response<Full<Bytes>> {
    let (parts, body) = read_body(request, state.body_timeout, MAX_INVOKE_BODY).await;
    let body = match body {
        Ok(body) => body,
        Err(BodyRefused::TimedOut) => return body_timed_out(),
        Err(BodyRefused::TooLarge) => {
            return respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                "application/json",
                Bytes::from_static(b"{\"message\":\"Request Entity Too Large\"}"),
            )
        }
    };
    let sub_path = parts
        .uri
        .path()
        .strip_prefix(crate::sources::http_trigger::PREFIX)
        .unwrap_or_default();
    // Paths are not form-encoded: `+` stays; malformed escapes leave the path raw.
    let path = match kumo_triggers::percent::decode(sub_path, false) {
        (bytes, None) => String::from_utf8(bytes).unwrap_or_else(|_| sub_path.to_string()),
        (_, Some(_)) => sub_path.to_string(),
    };
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path
    };
    let headers = crate::api::header_case::headers_in_order(&parts);
    let request_id = uuid::Uuid::new_v4().to_string();
    let source_ip = peer.ip().to_string();
    let mut answer = crate::sources::http_trigger::handle(
        &state.routes,
        &state.invoker,
        kumo_triggers::apigw::HttpRequest {
            method: parts.method.as_str(),
            path: &path,
            raw_query: parts.uri.query().unwrap_or_default(),
            headers: &headers,
            body: &body,
            source_ip: &source_ip,
            port: local_port,
            request_id: &request_id,
            time: chrono::Utc::now(),
            account_id: &state.account_id,
        },
    )
    .await;
    answer.headers.push(("apigw-requestid".into(), request_id));
    build(answer.status, &answer.headers, answer.body).unwrap_or_else(|_| {
        respond(
            StatusCode::BAD_GATEWAY,
            "application/json",
            Bytes::from_static(b"{\"message\": \"Internal server error\"}"),
        )
    })
}

fn api_response(answer: ApiResponse) -> Response<Full<Bytes>> {
    build(answer.status, &answer.headers, answer.body).unwrap_or_default()
}

/// Reads an Invoke API request, refusing an oversized body before reading it.
async fn invoke_api(state: &HttpState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let invoke = request.uri().path().ends_with("/invocations");
    let (limit, operation) = if invoke {
        (MAX_INVOKE_BODY, "the Invoke operation")
    } else {
        (MAX_MANAGEMENT_BODY, "management operations")
    };
    let (parts, body) = read_body(request, state.body_timeout, limit).await;
    let body = match body {
        Ok(body) => body,
        Err(BodyRefused::TimedOut) => return body_timed_out(),
        Err(BodyRefused::TooLarge) => {
            return api_response(aws_error(
                413,
                "RequestTooLargeException",
                &format!("Request must be smaller than {limit} bytes for {operation}"),
            ))
        }
    };
    let mut headers: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    api_response(
        state
            .invoke_api
            .handle(ApiRequest {
                method: parts.method.to_string(),
                raw_path: parts.uri.path().to_string(),
                raw_query: parts.uri.query().unwrap_or_default().to_string(),
                headers,
                body,
            })
            .await,
    )
}

fn respond(status: StatusCode, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .body(Full::new(body))
        .unwrap_or_default()
}

fn json(reply: Reply) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(
        status,
        "application/json",
        Bytes::from(format!("{}\n", reply.body)),
    )
}

/// A request to an SNS subscription endpoint: POSTs only.
async fn sns_post(
    state: &HttpState,
    request: Request<Incoming>,
    trigger: String,
) -> Response<Full<Bytes>> {
    if request.method() != Method::POST {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "application/json",
            Bytes::from_static(b"{\"message\":\"SNS endpoints take POST\"}\n"),
        );
    }
    let limit = kumo_triggers::sns::MAX_BODY_BYTES;
    let (_, body) = read_body(request, state.body_timeout, limit).await;
    match body {
        Ok(body) => json(state.sns.post(&trigger, &body).await),
        Err(BodyRefused::TimedOut) => body_timed_out(),
        Err(BodyRefused::TooLarge) => respond(
            StatusCode::PAYLOAD_TOO_LARGE,
            "application/json",
            Bytes::from_static(b"{\"message\":\"SNS delivery body too large\"}\n"),
        ),
    }
}

/// Answers one request from `peer`, received on `local_port`: the console
/// (whose live tail streams), or one of the whole-body routes.
pub(crate) async fn route(
    state: Arc<HttpState>,
    request: Request<Incoming>,
    peer: std::net::SocketAddr,
    local_port: u16,
) -> Result<Response<crate::api::console::Body>, Infallible> {
    if crate::api::console::is_console_path(request.uri().path()) && !has_nul(request.uri().path())
    {
        return Ok(crate::api::console::handle(&state.console, request).await);
    }
    let response = route_whole(state, request, peer, local_port).await?;
    Ok(response.map(|body| body.boxed_unsync()))
}

/// Answers a request outside the console.
async fn route_whole(
    state: Arc<HttpState>,
    request: Request<Incoming>,
    peer: std::net::SocketAddr,
    local_port: u16,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().trim_end_matches('/').to_string();
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if has_nul(&path) {
        return Ok(respond(
            StatusCode::BAD_REQUEST,
            "application/json",
            Bytes::from_static(b"{\"message\":\"the request path contains a NUL byte\"}\n"),
        ));
    }
    if crate::api::lambda::is_lambda_path(request.uri().path()) {
        return Ok(invoke_api(&state, request).await);
    }
    let http_prefix = crate::sources::http_trigger::PREFIX;
    if path == http_prefix || path.starts_with(&format!("{http_prefix}/")) {
        return Ok(http_trigger(&state, request, peer, local_port).await);
    }
    if let Some(trigger) = path.strip_prefix(crate::sources::sns::PATH_PREFIX) {
        return Ok(sns_post(&state, request, trigger.to_string()).await);
    }
    let response = match (request.method().clone(), path.as_str()) {
        (Method::GET | Method::HEAD, "/healthz") => {
            respond(StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n"))
        }
        (Method::GET, "/metrics") if !state.metrics_auth.allows(authorization.as_deref()) => {
            respond(
                StatusCode::UNAUTHORIZED,
                "application/json",
                Bytes::from_static(
                    b"{\"message\":\"/metrics needs Authorization: Bearer <metrics token>\"}\n",
                ),
            )
        }
        (Method::GET, "/metrics") => {
            let scraper = state.scraper.clone();
            let text = tokio::task::spawn_blocking(move || scraper.render())
                .await
                .unwrap_or_default();
            respond(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                Bytes::from(text),
            )
        }
        (Method::HEAD, MINIO_WEBHOOK_PATH) => respond(StatusCode::OK, "text/plain", Bytes::new()),
        (Method::GET, MINIO_WEBHOOK_PATH) => json(state.webhook.stats(authorization.as_deref())),
        (Method::POST, MINIO_WEBHOOK_PATH) => {
            let body = Limited::new(request.into_body(), MAX_BODY_BYTES).collect();
            match tokio::time::timeout(state.body_timeout, body).await {
                Ok(Ok(body)) => json(
                    state
                        .webhook
                        .post(authorization.as_deref(), &body.to_bytes())
                        .await,
                ),
                Ok(Err(_)) => json(state.webhook.too_large(MAX_BODY_BYTES)),
                Err(_) => body_timed_out(),
            }
        }
        (_, MINIO_WEBHOOK_PATH) => respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "application/json",
            Bytes::from_static(b"{\"message\":\"use POST (events), HEAD or GET\"}\n"),
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "application/json",
            Bytes::from_static(b"{\"message\":\"Not Found\"}\n"),
        ),
    };
    Ok(response)
}
