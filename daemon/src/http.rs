//! kumod's HTTP listener: `GET /healthz`, `GET /metrics` (Prometheus
//! text), and the MinIO webhook at
//! `/webhooks/minio` (`HEAD` for MinIO's start-up check, `POST` for
//! events, `GET` for its counters).

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kumo_triggers::minio::MAX_BODY_BYTES;
use tokio::net::TcpListener;

use crate::scrape::Scraper;
use crate::triggers::webhook::{Reply, Webhook};

/// Path of the MinIO webhook endpoint.
pub const MINIO_WEBHOOK_PATH: &str = "/webhooks/minio";

/// What the HTTP routes use.
pub struct HttpState {
    /// The MinIO webhook endpoint.
    pub webhook: Webhook,
    /// `/metrics`.
    pub scraper: Scraper,
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

async fn route(
    state: Arc<HttpState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().trim_end_matches('/').to_string();
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let response = match (request.method().clone(), path.as_str()) {
        (Method::GET | Method::HEAD, "/healthz") => {
            respond(StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n"))
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
            match Limited::new(request.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
            {
                Ok(body) => json(
                    state
                        .webhook
                        .post(authorization.as_deref(), &body.to_bytes())
                        .await,
                ),
                Err(_) => json(state.webhook.too_large(MAX_BODY_BYTES)),
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

/// Serves HTTP on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<HttpState>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(%err, "accepting an HTTP connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| route(state.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
