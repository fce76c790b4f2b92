//! A function's logs: recent records filtered by request id, version and
//! text, and a live tail streamed as Server-Sent Events from the same
//! follow stream as the control API's `GetLogs`.

use std::time::Duration;

use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Response, StatusCode};
use kumo_proto::control::control_server::Control;
use kumo_proto::control::{GetLogsRequest, LogEvent};

use super::html::{self, esc, url, Body};
use super::{status_message, Call};

/// Most history records shown.
const HISTORY_LINES: usize = 1000;
/// How often an idle tail sends a keep-alive comment (which also notices
/// a browser that went away).
const HEARTBEAT: Duration = Duration::from_secs(15);

fn time_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

/// `GET /console/fn/{name}/logs?request_id=&version=&q=`.
pub(super) async fn page(call: &Call<'_>, name: &str) -> Response<Body> {
    let (request_id, version, text) = (call.arg("request_id"), call.arg("version"), call.arg("q"));
    let history = call
        .control()
        .get_logs(tonic::Request::new(GetLogsRequest {
            function_name: name.to_string(),
            request_id: request_id.trim().to_string(),
            version: version.trim().to_string(),
            ..GetLogsRequest::default()
        }))
        .await;
    let lines = match history {
        Ok(stream) => {
            let events: Vec<LogEvent> = stream
                .into_inner()
                .filter_map(|e| async move { e.ok() })
                .collect()
                .await;
            let wanted: Vec<&LogEvent> = events.iter().filter(|e| e.text.contains(text)).collect();
            let skip = wanted.len().saturating_sub(HISTORY_LINES);
            wanted[skip..]
                .iter()
                .map(|e| {
                    format!(
                        "<div class=\"line\"><span class=\"meta\">{} {} {}</span> {}</div>",
                        esc(&time_of(e.timestamp_unix_ms)),
                        esc(&e.version),
                        esc(&e.request_id),
                        esc(e.text.trim_end())
                    )
                })
                .collect::<String>()
        }
        Err(status) if status.code() == tonic::Code::NotFound && !request_id.is_empty() => {
            format!("<p class=\"notice\">{}</p>", esc(&status_message(&status)))
        }
        Err(status) => {
            return html::error_page(
                StatusCode::NOT_FOUND,
                Some(call.csrf()),
                &status_message(&status),
            )
        }
    };
    let base = format!("/console/fn/{}", url(name));
    let body = format!(
        "<p class=\"actions\"><a href=\"{base}\">Back to {n}</a> <a href=\"{base}/test\">Test</a></p>\
         <form method=\"get\" action=\"{base}/logs\" class=\"inline-form\">\
         <input name=\"request_id\" placeholder=\"Request id\" value=\"{r}\">\
         <input name=\"version\" placeholder=\"Version\" value=\"{v}\">\
         <input name=\"q\" id=\"log-filter\" placeholder=\"Text\" value=\"{t}\">\
         <button type=\"submit\">Filter</button></form>\
         <h2>Recent</h2><div id=\"log-lines\" class=\"log\">{lines}</div>\
         <h2>Live tail <span id=\"tail-state\">connecting…</span></h2>\
         <div id=\"tail\" class=\"log\" data-src=\"{base}/tail\"></div>",
        n = esc(name),
        r = esc(request_id),
        v = esc(version),
        t = esc(text),
    );
    html::html(html::page(
        &format!("Logs of {name}"),
        Some(call.csrf()),
        None,
        &body,
    ))
}

/// One Server-Sent Event carrying `event` as JSON, with its time as the
/// event id (a reconnecting browser sends it back as `Last-Event-ID`).
fn sse(event: &LogEvent) -> Bytes {
    let json = serde_json::json!({
        "time": time_of(event.timestamp_unix_ms),
        "request_id": event.request_id,
        "version": event.version,
        "text": event.text,
    });
    Bytes::from(format!("id: {}\ndata: {json}\n\n", event.timestamp_unix_ms))
}

/// `GET /console/fn/{name}/tail`: `text/event-stream` of new log records;
/// a browser reconnecting with `Last-Event-ID` first gets the records
/// stored after that one.
pub(super) async fn tail(
    call: &Call<'_>,
    name: &str,
    last_event_id: Option<&str>,
) -> Response<Body> {
    let resume_after = last_event_id.and_then(|id| id.trim().parse::<i64>().ok());
    let followed = call
        .control()
        .get_logs(tonic::Request::new(GetLogsRequest {
            function_name: name.to_string(),
            follow: true,
            skip_history: resume_after.is_none(),
            since_unix_ms: resume_after.map(|ms| ms + 1).unwrap_or_default(),
            ..GetLogsRequest::default()
        }))
        .await;
    let records = match followed {
        Ok(stream) => stream.into_inner(),
        Err(status) => {
            return html::respond(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                status_message(&status),
            )
        }
    };
    let records = records.map(|record| match record {
        Ok(event) => sse(&event),
        Err(status) => Bytes::from(format!(
            "event: failed\ndata: {}\n\n",
            status.message().replace('\n', " ")
        )),
    });
    let heartbeat = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(HEARTBEAT))
        .map(|_| Bytes::from_static(b": keep-alive\n\n"));
    let stream = futures::stream::select(records, heartbeat)
        .map(|bytes| Ok::<_, std::convert::Infallible>(Frame::data(bytes)));
    Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, "text/event-stream")
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .body(StreamBody::new(stream).boxed_unsync())
        .unwrap_or_default()
}
