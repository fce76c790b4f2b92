//! HTTP triggers: API-Gateway-style routes under `/http` on kumod's HTTP
//! listener. A request that matches a route invokes its function
//! synchronously with the v1.0 or v2.0 proxy event, and the result becomes
//! the HTTP response (502 for malformed results and function errors, 429
//! when throttled, 500 when the platform fails).

use bytes::Bytes;
use kumo_proto::control::HttpSource;
use kumo_triggers::apigw::{self, HttpRequest, HttpResponse, Route};
use serde_json::json;

use super::routes::Routes;
use crate::dispatch::agents::DispatchError;
use crate::dispatch::invoke::{InvokeError, InvokeRequest, Invoked, Invoker, Source};
use crate::state::store::{TriggerRecord, TriggerSource};

/// Where HTTP triggers live on kumod's HTTP listener.
pub const PREFIX: &str = "/http";

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Checks an HTTP source: a valid route template not already taken for
/// the same methods, known methods, a known payload format. The error
/// says which rule was broken.
pub fn source(existing: &[TriggerRecord], http: HttpSource) -> Result<TriggerSource, String> {
    let route = Route::parse(&http.path).map_err(|e| e.to_string())?;
    let mut methods: Vec<String> = Vec::new();
    for method in &http.methods {
        let method = method.trim().to_ascii_uppercase();
        if method == "ANY" {
            methods.clear();
            break;
        }
        if !METHODS.contains(&method.as_str()) {
            return Err(format!(
                "method {method:?} is not one of {METHODS:?} or ANY"
            ));
        }
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    let payload_format = match http.payload_format.trim() {
        "" | "2.0" => "2.0",
        "1.0" => "1.0",
        other => return Err(format!("payload format {other:?} is not 1.0 or 2.0")),
    };
    for record in existing {
        if let TriggerSource::Http {
            path,
            methods: taken,
            ..
        } = &record.source
        {
            let overlap =
                taken.is_empty() || methods.is_empty() || taken.iter().any(|m| methods.contains(m));
            if path == route.template() && overlap {
                return Err(format!(
                    "HTTP path {} is already routed to trigger {} for these methods",
                    route.template(),
                    record.name
                ));
            }
        }
    }
    Ok(TriggerSource::Http {
        path: route.template().to_string(),
        methods,
        payload_format: payload_format.to_string(),
    })
}

fn plain(status: u16, message: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({ "message": message }).to_string().into_bytes(),
    }
}

/// One matched route.
struct Matched<'a> {
    record: &'a TriggerRecord,
    route: Route,
    params: std::collections::BTreeMap<String, String>,
    format: String,
}

/// Finds the route for a request: literal matches beat parameters, and
/// parameters beat a greedy rest.
fn find<'a>(records: &'a [TriggerRecord], method: &str, path: &str) -> Option<Matched<'a>> {
    let mut best: Option<(usize, Matched<'a>)> = None;
    for record in records.iter().filter(|r| r.enabled) {
        let TriggerSource::Http {
            path: template,
            methods,
            payload_format,
        } = &record.source
        else {
            continue;
        };
        if !methods.is_empty() && !methods.iter().any(|m| m == method) {
            continue;
        }
        let Ok(route) = Route::parse(template) else {
            continue;
        };
        let Some(params) = route.matches(path) else {
            continue;
        };
        let score = template.matches('{').count() * 2 + usize::from(template.contains("+}"));
        let format = payload_format.clone();
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((
                score,
                Matched {
                    record,
                    route,
                    params,
                    format,
                },
            ));
        }
    }
    best.map(|(_, m)| m)
}

/// Answers a request under [`PREFIX`]; `request.path` is the part after it.
pub async fn handle(routes: &Routes, invoker: &Invoker, request: HttpRequest<'_>) -> HttpResponse {
    let routes = routes.snapshot();
    let Some(matched) = find(&routes, request.method, request.path) else {
        return plain(404, "Not Found");
    };
    let event = if matched.format == "1.0" {
        apigw::event_v1(&request, &matched.route, &matched.params)
    } else {
        let methods = match &matched.record.source {
            TriggerSource::Http { methods, .. } if methods.len() == 1 => methods[0].clone(),
            _ => "ANY".to_string(),
        };
        apigw::event_v2(
            &request,
            &format!("{methods} {}", matched.route.template()),
            &matched.params,
        )
    };
    let invoke = InvokeRequest {
        qualifier: matched.record.qualifier.clone(),
        ..InvokeRequest::new(
            Source::HttpTrigger,
            matched.record.function.clone(),
            Bytes::from(event.to_string()),
        )
    };
    match invoker.invoke(invoke).await.map(Invoked::into_response) {
        Ok(answer) if answer.function_error.is_empty() => {
            apigw::response(&matched.format, Some(&answer.payload))
        }
        Ok(_) => apigw::bad_gateway(),
        Err(
            InvokeError::Throttled(_) | InvokeError::Dispatch(DispatchError::NoCapacity { .. }),
        ) => plain(429, "Too Many Requests"),
        Err(InvokeError::TooLarge { .. }) => plain(413, "Request Entity Too Large"),
        Err(err) => {
            tracing::warn!(%err, trigger = %matched.record.name, "HTTP trigger invocation failed");
            plain(500, "Internal Server Error")
        }
    }
}
