//! The HTTP side of the Runtime API: routes, request checks, bodies.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kumo_proto::model::MAX_SYNC_PAYLOAD_BYTES;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::{PendingInvocation, RuntimeReply, Shared, State};

/// Path prefix of every Runtime API route.
const PREFIX: &str = "/2018-06-01/runtime/";
/// Content type of every JSON body; exactly this, without a charset
/// (awslambdaric only JSON-decodes events labelled exactly so).
const JSON: HeaderValue = HeaderValue::from_static("application/json");
/// Content type meaning "strip `errorCause` from this error body".
const ERROR_CAUSE_JSON: &str = "application/vnd.aws.lambda.error.cause+json";
/// Header carrying the error type of `/error` and `/init/error` posts.
const FUNCTION_ERROR_TYPE: &str = "lambda-runtime-function-error-type";
/// Body of every 202 answer.
const STATUS_OK: &[u8] = br#"{"status":"OK"}"#;

/// Serves connections on `listener`; with `peer_uid`, only those whose
/// socket that uid owns (others are closed unanswered).
pub(super) async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    peer_uid: Option<u32>,
) {
    let mut connections = JoinSet::new();
    let local = listener.local_addr().ok();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    connections.spawn(async move {
                        if let Some(uid) = peer_uid {
                            let owner = local.and_then(|local| super::peer::socket_owner(peer, local));
                            if owner != Some(uid) {
                                tracing::warn!(%peer, ?owner, expected = uid, "runtime API connection from another user refused");
                                return;
                            }
                        }
                        let service = service_fn(move |req| handle(shared.clone(), req));
                        let conn = http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service);
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "runtime API connection ended");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "runtime API accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

type HttpResponse = Response<Full<Bytes>>;

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let path = req.uri().path();
    let Some(route) = path.strip_prefix(PREFIX) else {
        return Ok(not_found(path));
    };
    let response = if route == "invocation/next" {
        if req.method() != Method::GET {
            return Ok(method_not_allowed(req.method()));
        }
        next(&shared).await
    } else if route == "init/error" {
        if req.method() != Method::POST {
            return Ok(method_not_allowed(req.method()));
        }
        init_error(&shared, req).await
    } else if let Some((id, action)) = route
        .strip_prefix("invocation/")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(id, action)| !id.is_empty() && (*action == "response" || *action == "error"))
    {
        if req.method() != Method::POST {
            return Ok(method_not_allowed(req.method()));
        }
        let id = id.to_owned();
        if action == "response" {
            post_response(&shared, &id, req).await
        } else {
            post_error(&shared, &id, req).await
        }
    } else {
        not_found(path)
    };
    Ok(response)
}

/// `GET /next`: hand out the queued invocation or wait for one.
async fn next(shared: &Shared) -> HttpResponse {
    shared
        .ready
        .send_if_modified(|ready| !std::mem::replace(ready, true));
    let waiting = {
        let mut state = shared.lock();
        match state.queued.take() {
            Some(invocation) => Ok(invocation),
            None if state.parked_next.as_ref().is_some_and(|p| !p.is_closed()) => {
                return error_response(
                    StatusCode::FORBIDDEN,
                    "InvalidStateTransition",
                    "another /next request is already waiting for an invocation",
                );
            }
            None => {
                let (tx, rx) = oneshot::channel();
                state.parked_next = Some(tx);
                Err(rx)
            }
        }
    };
    // The state lock is released here: `hand_over` takes it again.
    let invocation = match waiting {
        Ok(invocation) => invocation,
        Err(parked) => match parked.await {
            Ok(invocation) => invocation,
            Err(_) => {
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ServiceException",
                    "the instance stopped waiting for this /next request",
                )
            }
        },
    };
    hand_over(shared, invocation)
}

fn hand_over(shared: &Shared, invocation: PendingInvocation) -> HttpResponse {
    if let Some(hook) = shared.handover_hook.get() {
        hook();
    }
    shared.lock().handed_over_at = Some(std::time::Instant::now());
    invocation_response(invocation)
}

fn invocation_response(invocation: PendingInvocation) -> HttpResponse {
    let deadline_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(invocation.timeout)
        .as_millis();
    let mut response = Response::new(Full::new(invocation.payload));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, JSON);
    let mut put = |name: &'static str, value: String| {
        if let Some(value) = header_value(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    put("lambda-runtime-aws-request-id", invocation.request_id);
    put("lambda-runtime-deadline-ms", deadline_ms.to_string());
    put(
        "lambda-runtime-invoked-function-arn",
        invocation.invoked_function_arn,
    );
    put("lambda-runtime-trace-id", invocation.trace_id);
    if let Some(context) = invocation.client_context {
        put("lambda-runtime-client-context", context);
    }
    if let Some(identity) = invocation.cognito_identity {
        put("lambda-runtime-cognito-identity", identity);
    }
    response
}

/// A header value from `value`; JSON with raw newlines is compacted first.
/// `None` if it cannot be a header value at all.
fn header_value(value: String) -> Option<HeaderValue> {
    if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
        return Some(v);
    }
    let compact = serde_json::from_str::<serde_json::Value>(&value)
        .ok()?
        .to_string();
    HeaderValue::from_bytes(compact.as_bytes()).ok()
}

/// Outcome of checking a request id against the in-flight invocation.
enum IdCheck {
    Current,
    AlreadyAnswered,
    Unknown,
}

fn check_id(state: &State, id: &str) -> IdCheck {
    match &state.in_flight {
        Some(f) if f.request_id == id && f.reply.is_some() && state.queued.is_none() => {
            IdCheck::Current
        }
        Some(f) if f.request_id == id && f.reply.is_none() => IdCheck::AlreadyAnswered,
        _ if state.previous_id.as_deref() == Some(id) => IdCheck::AlreadyAnswered,
        _ => IdCheck::Unknown,
    }
}

fn id_error(check: IdCheck, id: &str) -> Option<HttpResponse> {
    match check {
        IdCheck::Current => None,
        IdCheck::AlreadyAnswered => Some(error_response(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            &format!("invocation {id} has already been answered"),
        )),
        IdCheck::Unknown => Some(error_response(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            &format!("invalid request id {id}: no such invocation in progress"),
        )),
    }
}

/// Sends `reply` for invocation `id` if it is still the current one.
fn complete(shared: &Shared, id: &str, reply: RuntimeReply) -> Option<HttpResponse> {
    let mut state = shared.lock();
    if let Some(error) = id_error(check_id(&state, id), id) {
        return Some(error);
    }
    if let Some(sender) = state.in_flight.as_mut().and_then(|f| f.reply.take()) {
        let _ = sender.send(reply);
    }
    None
}

/// Largest oversize body that is still read (and discarded) so that the
/// runtime gets its 413 on an intact keep-alive connection; beyond it the
/// connection is dropped.
const MAX_DISCARDED_BYTES: u64 = 64 * 1024 * 1024;

/// Why a body was not returned.
#[derive(Debug, PartialEq, Eq)]
enum BodyError {
    /// Larger than [`MAX_SYNC_PAYLOAD_BYTES`].
    TooLarge,
    /// The connection failed while reading.
    Unreadable,
}

/// Reads a request body of at most [`MAX_SYNC_PAYLOAD_BYTES`] bytes,
/// buffering no more than that.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_DISCARDED_BYTES) {
        return Err(BodyError::TooLarge);
    }
    let capacity = declared.map_or(0, |len| len.min(MAX_SYNC_PAYLOAD_BYTES as u64) as usize);
    let mut body = req.into_body();
    let mut kept = bytes::BytesMut::with_capacity(capacity);
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Unreadable)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if total > MAX_DISCARDED_BYTES {
            return Err(BodyError::TooLarge);
        }
        if total <= MAX_SYNC_PAYLOAD_BYTES as u64 {
            kept.extend_from_slice(&data);
        }
    }
    if total > MAX_SYNC_PAYLOAD_BYTES as u64 {
        return Err(BodyError::TooLarge);
    }
    Ok(kept.freeze())
}

fn unreadable_body() -> HttpResponse {
    error_response(
        StatusCode::BAD_REQUEST,
        "InvalidRequest",
        "could not read the request body",
    )
}

async fn post_response(shared: &Shared, id: &str, req: Request<Incoming>) -> HttpResponse {
    if let Some(error) = id_error(check_id(&shared.lock(), id), id) {
        return error;
    }
    match read_body(req).await {
        Ok(body) => complete(shared, id, RuntimeReply::Response(body)).unwrap_or_else(accepted),
        Err(BodyError::TooLarge) => {
            if let Some(error) = complete(shared, id, RuntimeReply::ResponseTooLarge) {
                return error;
            }
            error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
            )
        }
        Err(BodyError::Unreadable) => unreadable_body(),
    }
}

/// Error type header and body of an `/error` or `/init/error` post.
async fn read_error(req: Request<Incoming>) -> Result<(Bytes, Option<String>), HttpResponse> {
    let error_type = req
        .headers()
        .get(FUNCTION_ERROR_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let strip_cause = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case(ERROR_CAUSE_JSON));
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return Err(error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "error payload exceeds 6291556 bytes",
            ))
        }
        Err(BodyError::Unreadable) => return Err(unreadable_body()),
    };
    let body = if strip_cause {
        strip_error_cause(body)
    } else {
        body
    };
    Ok((body, error_type))
}

/// Removes the `errorCause` member of a JSON error document.
fn strip_error_cause(body: Bytes) -> Bytes {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut map)) if map.contains_key("errorCause") => {
            map.remove("errorCause");
            serde_json::to_vec(&map).map(Bytes::from).unwrap_or(body)
        }
        _ => body,
    }
}

async fn post_error(shared: &Shared, id: &str, req: Request<Incoming>) -> HttpResponse {
    if let Some(error) = id_error(check_id(&shared.lock(), id), id) {
        return error;
    }
    match read_error(req).await {
        Ok((body, error_type)) => {
            complete(shared, id, RuntimeReply::Error { body, error_type }).unwrap_or_else(accepted)
        }
        Err(response) => response,
    }
}

async fn init_error(shared: &Shared, req: Request<Incoming>) -> HttpResponse {
    if *shared.ready.borrow() {
        return error_response(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "init errors can only be reported before the first /next",
        );
    }
    let (body, error_type) = match read_error(req).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let reply = RuntimeReply::InitError { body, error_type };
    let mut state = shared.lock();
    match state.in_flight.as_mut().and_then(|f| f.reply.take()) {
        Some(sender) => {
            let _ = sender.send(reply);
        }
        None => state.init_error = Some(reply),
    }
    accepted()
}

fn accepted() -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from_static(STATUS_OK)));
    *response.status_mut() = StatusCode::ACCEPTED;
    response.headers_mut().insert(CONTENT_TYPE, JSON);
    response
}

fn error_response(status: StatusCode, error_type: &str, message: &str) -> HttpResponse {
    let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, JSON);
    response
}

fn not_found(path: &str) -> HttpResponse {
    error_response(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("no Runtime API route {path}"),
    )
}

fn method_not_allowed(method: &Method) -> HttpResponse {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        &format!("method {method} is not allowed on this route"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_cause_is_stripped_only_when_present() {
        let body = Bytes::from_static(br#"{"errorType":"E","errorCause":{"x":1}}"#);
        assert_eq!(&strip_error_cause(body)[..], br#"{"errorType":"E"}"#);
        let plain = Bytes::from_static(b"not json");
        assert_eq!(&strip_error_cause(plain)[..], b"not json");
    }

    #[test]
    fn header_values_with_newlines_are_compacted_or_dropped() {
        assert!(header_value("{\n \"a\": 1\n}".into()).is_some());
        assert!(header_value("plain".into()).is_some());
        assert!(header_value("not\njson".into()).is_none());
    }
}
