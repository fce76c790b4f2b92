//! HTTP triggers: API-Gateway-style routes under `/http` on kumod's HTTP
//! listener (docs/wire-formats.md §5d). A request that matches a route invokes its
//! function synchronously with the v1.0 or v2.0 proxy event, and the
//! result becomes the HTTP response (502 for malformed results, with the
//! reason appended to the invocation's log, and for function errors; 429
//! when throttled; 500 when the platform fails). A trigger with CORS
//! answers preflights itself, without invoking the function.

use bytes::Bytes;
use kumo_proto::control::{HttpCors, HttpSource};
use kumo_triggers::apigw::cors::{self, Cors};
use kumo_triggers::apigw::{
    self, Api, HttpRequest, HttpResponse, Route, DEFAULT_API_ID, DEFAULT_STAGE, METHODS,
};
use serde_json::json;

use super::routes::Routes;
use crate::dispatch::agents::DispatchError;
use crate::dispatch::invoke::{InvokeError, InvokeRequest, Invoked, Invoker, Source};
use crate::state::store::{TriggerRecord, TriggerSource};

/// Where HTTP triggers live on kumod's HTTP listener.
pub const PREFIX: &str = "/http";

fn methods_of(http: &HttpSource) -> Result<Vec<String>, String> {
    let mut methods: Vec<String> = Vec::new();
    for method in &http.methods {
        let method = method.trim().to_ascii_uppercase();
        if method == "ANY" {
            return Ok(Vec::new());
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
    Ok(methods)
}

/// `value`, or `default` when empty, checked by `validate`.
fn or_default(
    value: &str,
    default: &str,
    validate: fn(&str) -> Result<(), String>,
) -> Result<String, String> {
    let value = match value.trim() {
        "" => default,
        given => given,
    };
    validate(value).map(|()| value.to_string())
}

/// Checks an HTTP source: a valid route template not already taken for
/// the same methods, known methods, a known payload format, a valid stage,
/// API id and CORS setting. The error says which rule was broken.
pub fn source(existing: &[TriggerRecord], http: HttpSource) -> Result<TriggerSource, String> {
    let route = Route::parse(&http.path).map_err(|e| e.to_string())?;
    let methods = methods_of(&http)?;
    let payload_format = match http.payload_format.trim() {
        "" | "2.0" => "2.0",
        "1.0" => "1.0",
        other => return Err(format!("payload format {other:?} is not 1.0 or 2.0")),
    };
    let stage = or_default(&http.stage, DEFAULT_STAGE, apigw::validate_stage)?;
    let api_id = or_default(&http.api_id, DEFAULT_API_ID, apigw::validate_api_id)?;
    let cors = http
        .cors
        .map(|c| {
            Cors {
                allow_origins: c.allow_origins,
                allow_methods: c.allow_methods,
                allow_headers: c.allow_headers,
                max_age_seconds: c.max_age_seconds,
            }
            .validated(&methods)
        })
        .transpose()
        .map_err(|e| e.to_string())?;
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
        stage,
        api_id,
        cors,
    })
}

/// The protocol view of an HTTP trigger's source (defaults filled in for
/// records stored before a setting existed).
pub fn http_source(source: &TriggerSource) -> HttpSource {
    let TriggerSource::Http {
        path,
        methods,
        payload_format,
        stage,
        api_id,
        cors,
    } = source
    else {
        return HttpSource::default();
    };
    let (api_id, stage) = api_of(api_id, stage);
    HttpSource {
        path: path.clone(),
        methods: methods.clone(),
        payload_format: payload_format.clone(),
        stage: stage.to_string(),
        api_id: api_id.to_string(),
        cors: cors.as_ref().map(|c| HttpCors {
            allow_origins: c.allow_origins.clone(),
            allow_methods: c.allow_methods.clone(),
            allow_headers: c.allow_headers.clone(),
            max_age_seconds: c.max_age_seconds,
        }),
    }
}

/// A stored API id and stage, "" read as the defaults.
fn api_of<'a>(api_id: &'a str, stage: &'a str) -> (&'a str, &'a str) {
    let pick = |value: &'a str, default: &'static str| {
        if value.is_empty() {
            default
        } else {
            value
        }
    };
    (pick(api_id, DEFAULT_API_ID), pick(stage, DEFAULT_STAGE))
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
    methods: &'a [String],
    format: &'a str,
    api: Api<'a>,
    cors: Option<&'a Cors>,
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
            stage,
            api_id,
            cors,
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
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            let (id, stage) = api_of(api_id, stage);
            best = Some((
                score,
                Matched {
                    record,
                    route,
                    params,
                    methods,
                    format: payload_format,
                    api: Api { id, stage },
                    cors: cors.as_ref(),
                },
            ));
        }
    }
    best.map(|(_, m)| m)
}

/// Answers a request under [`PREFIX`]; `request.path` is the part after it.
pub async fn handle(routes: &Routes, invoker: &Invoker, request: HttpRequest<'_>) -> HttpResponse {
    let routes = routes.snapshot();
    if let Some((origin, requested)) = cors::preflight_of(request.method, request.headers) {
        // The route that would serve the method the browser asks about.
        let cors = find(&routes, &requested, request.path).and_then(|m| m.cors);
        if let Some(cors) = cors {
            return cors.preflight(&origin);
        }
    }
    let Some(matched) = find(&routes, request.method, request.path) else {
        return plain(404, "Not Found");
    };
    let mut response = invoke(invoker, &request, &matched).await;
    if let Some(cors) = matched.cors {
        cors.decorate(request.header("origin"), &mut response);
    }
    response
}

/// Invokes the matched route's function and maps its answer.
async fn invoke(
    invoker: &Invoker,
    request: &HttpRequest<'_>,
    matched: &Matched<'_>,
) -> HttpResponse {
    let record = matched.record;
    let event = if matched.format == "1.0" {
        apigw::event_v1(request, &matched.api, &matched.route, &matched.params)
    } else {
        let method = match matched.methods {
            [one] => one.as_str(),
            _ => "ANY",
        };
        let route_key = format!("{method} {}", matched.route.template());
        apigw::event_v2(request, &matched.api, &route_key, &matched.params)
    };
    let invoke = InvokeRequest {
        qualifier: record.qualifier.clone(),
        ..InvokeRequest::new(
            Source::HttpTrigger,
            record.function.clone(),
            Bytes::from(event.to_string()),
        )
    };
    match invoker.invoke(invoke).await.map(Invoked::into_response) {
        Ok(answer) if answer.function_error.is_empty() => {
            apigw::response(matched.format, &answer.payload).unwrap_or_else(|malformed| {
                invoker.log_platform_line(
                    &record.function,
                    &answer.request_id,
                    &answer.executed_version,
                    &format!("HTTP trigger {}: 502 {malformed}", record.name),
                );
                apigw::bad_gateway()
            })
        }
        Ok(_) => apigw::bad_gateway(),
        Err(
            InvokeError::Throttled(_) | InvokeError::Dispatch(DispatchError::NoCapacity { .. }),
        ) => plain(429, "Too Many Requests"),
        Err(InvokeError::TooLarge { .. }) => plain(413, "Request Entity Too Large"),
        Err(err) => {
            tracing::warn!(%err, trigger = %record.name, "HTTP trigger invocation failed");
            plain(500, "Internal Server Error")
        }
    }
}
