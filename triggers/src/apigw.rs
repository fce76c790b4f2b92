//! API Gateway's Lambda proxy integration (docs/wire-formats.md §5d): route
//! templates (`/users/{id}`, `/files/{proxy+}`), the v1.0 and v2.0 request
//! events, and turning a function's result into an HTTP response — with
//! the 502 rules for malformed results.

use std::collections::BTreeMap;

use base64::Engine;

use crate::percent::decode_lossy;
use serde_json::{json, Map, Value};

/// A route template that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid HTTP path {path:?}: {reason}")]
pub struct RouteError {
    /// The template.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

/// A parsed route template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    template: String,
    segments: Vec<Segment>,
}

impl Route {
    /// Parses `/a/{b}/{c+}`: literals, `{name}` for one segment, a final
    /// `{name+}` for the rest.
    pub fn parse(template: &str) -> Result<Route, RouteError> {
        let fail = |reason: &str| RouteError {
            path: template.to_string(),
            reason: reason.to_string(),
        };
        if !template.starts_with('/') || template.len() > 512 {
            return Err(fail("must start with / and be at most 512 characters"));
        }
        let parts: Vec<&str> = template[1..].split('/').filter(|p| !p.is_empty()).collect();
        let mut segments = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(inner) => {
                    let (name, greedy) = match inner.strip_suffix('+') {
                        Some(name) => (name, true),
                        None => (inner, false),
                    };
                    if name.is_empty()
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(fail("parameter names are letters, digits and _"));
                    }
                    if greedy && i + 1 != parts.len() {
                        return Err(fail("a {name+} parameter must be the last segment"));
                    }
                    if greedy {
                        Segment::Greedy(name.to_string())
                    } else {
                        Segment::Param(name.to_string())
                    }
                }
                None => {
                    if part.contains(['{', '}']) || !part.chars().all(|c| c.is_ascii_graphic()) {
                        return Err(fail("literal segments are printable ASCII without braces"));
                    }
                    Segment::Literal(part.to_string())
                }
            };
            segments.push(segment);
        }
        Ok(Route {
            template: format!("/{}", parts.join("/")),
            segments,
        })
    }

    /// The template, normalized.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The path parameters when `path` matches, else None.
    pub fn matches(&self, path: &str) -> Option<BTreeMap<String, String>> {
        let parts: Vec<&str> = path
            .trim_start_matches('/')
            .split('/')
            .filter(|p| !p.is_empty())
            .collect();
        let mut params = BTreeMap::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(text) => {
                    if parts.get(i) != Some(&text.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    params.insert(name.clone(), parts.get(i)?.to_string());
                }
                Segment::Greedy(name) => {
                    let rest = parts.get(i..).filter(|r| !r.is_empty())?;
                    params.insert(name.clone(), rest.join("/"));
                    return Some(params);
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }
}

/// An HTTP request as the trigger saw it.
pub struct HttpRequest<'a> {
    /// `GET`, …
    pub method: &'a str,
    /// The path under the trigger prefix, percent-decoded.
    pub path: &'a str,
    /// The raw query string.
    pub raw_query: &'a str,
    /// Headers in arrival order (names lowercase).
    pub headers: &'a [(String, String)],
    /// Body bytes.
    pub body: &'a [u8],
    /// Client address.
    pub source_ip: &'a str,
    /// Request id.
    pub request_id: &'a str,
    /// Arrival time.
    pub time: chrono::DateTime<chrono::Utc>,
    /// Account id for `requestContext`.
    pub account_id: &'a str,
}

fn body_field(body: &[u8]) -> (Value, bool) {
    if body.is_empty() {
        return (Value::Null, false);
    }
    match std::str::from_utf8(body) {
        Ok(text) => (Value::String(text.to_string()), false),
        Err(_) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    }
}

fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_lossy(k, true), decode_lossy(v, true))
        })
        .collect()
}

/// Each name's values in arrival order, as a JSON array per name.
fn multi_values(pairs: impl IntoIterator<Item = (String, String)>) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in pairs {
        if let Some(list) = map.entry(name).or_insert_with(|| json!([])).as_array_mut() {
            list.push(Value::String(value));
        }
    }
    map
}

/// Each name's last value (v1.0's single-value maps).
fn last_values(multi: &Map<String, Value>) -> Map<String, Value> {
    multi
        .iter()
        .filter_map(|(name, values)| Some((name.clone(), values.as_array()?.last()?.clone())))
        .collect()
}

/// Each name's values joined with commas (v2.0's maps).
fn joined_values(multi: Map<String, Value>) -> Map<String, Value> {
    multi
        .into_iter()
        .map(|(name, values)| {
            let joined: Vec<&str> = values
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            (name, Value::String(joined.join(",")))
        })
        .collect()
}

fn map_or_null(map: Map<String, Value>) -> Value {
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

fn path_parameters(params: &BTreeMap<String, String>) -> Map<String, Value> {
    params.iter().map(|(k, v)| (k.clone(), json!(v))).collect()
}

/// The first value of a (lowercase) header.
fn header<'a>(request: &HttpRequest<'a>, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The arrival time as API Gateway writes it: `14/Nov/2023:22:13:20 +0000`.
fn request_time(request: &HttpRequest<'_>) -> String {
    request.time.format("%d/%b/%Y:%H:%M:%S +0000").to_string()
}

/// The `requestContext` fields both payload formats carry, plus `fields`.
fn request_context(request: &HttpRequest<'_>, fields: Value) -> Value {
    let mut context = json!({
        "accountId": request.account_id,
        "apiId": "kumo",
        "requestId": request.request_id,
        "stage": "$default",
    });
    if let (Some(context), Value::Object(fields)) = (context.as_object_mut(), fields) {
        context.extend(fields);
    }
    context
}

const PROTOCOL: &str = "HTTP/1.1";

/// The v1.0 proxy event.
pub fn event_v1(
    request: &HttpRequest<'_>,
    route: &Route,
    params: &BTreeMap<String, String>,
) -> Value {
    let multi_headers = multi_values(request.headers.iter().cloned());
    let multi_query = multi_values(query_pairs(request.raw_query));
    let (body, is_base64) = body_field(request.body);
    let context = request_context(
        request,
        json!({
            "resourceId": "kumo",
            "resourcePath": route.template(),
            "httpMethod": request.method,
            "path": request.path,
            "protocol": PROTOCOL,
            "requestTime": request_time(request),
            "requestTimeEpoch": request.time.timestamp_millis(),
            "identity": {"sourceIp": request.source_ip, "userAgent": header(request, "user-agent")},
        }),
    );
    json!({
        "resource": route.template(),
        "path": request.path,
        "httpMethod": request.method,
        "headers": map_or_null(last_values(&multi_headers)),
        "multiValueHeaders": map_or_null(multi_headers),
        "queryStringParameters": map_or_null(last_values(&multi_query)),
        "multiValueQueryStringParameters": map_or_null(multi_query),
        "pathParameters": map_or_null(path_parameters(params)),
        "stageVariables": null,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// The v2.0 proxy event.
pub fn event_v2(
    request: &HttpRequest<'_>,
    route_key: &str,
    params: &BTreeMap<String, String>,
) -> Value {
    let (cookie_headers, other_headers): (Vec<_>, Vec<_>) = request
        .headers
        .iter()
        .cloned()
        .partition(|(name, _)| name == "cookie");
    let cookies: Vec<String> = cookie_headers
        .iter()
        .flat_map(|(_, value)| value.split(';'))
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    let query = joined_values(multi_values(query_pairs(request.raw_query)));
    let path_params = path_parameters(params);
    let (body, is_base64) = body_field(request.body);
    let context = request_context(
        request,
        json!({
            "domainName": "kumo",
            "domainPrefix": "kumo",
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": PROTOCOL,
                "sourceIp": request.source_ip,
                "userAgent": header(request, "user-agent").unwrap_or_default(),
            },
            "routeKey": route_key,
            "time": request_time(request),
            "timeEpoch": request.time.timestamp_millis(),
        }),
    );
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.raw_query,
        "headers": joined_values(multi_values(other_headers)),
        "requestContext": context,
        "isBase64Encoded": is_base64,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !path_params.is_empty() {
        event["pathParameters"] = Value::Object(path_params);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

/// What goes back to the HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers (repeated names allowed, e.g. `set-cookie`).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// API Gateway's answer to a malformed result or a function error.
pub fn bad_gateway() -> HttpResponse {
    HttpResponse {
        status: 502,
        headers: vec![("content-type".into(), "application/json".into())],
        body: br#"{"message": "Internal server error"}"#.to_vec(),
    }
}

fn header_ok(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        && !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

const V1_KEYS: &[&str] = &[
    "statusCode",
    "headers",
    "multiValueHeaders",
    "body",
    "isBase64Encoded",
];

/// Maps a function's JSON result to the HTTP response (`format` "1.0" or
/// "2.0"); `None` for a function error.
pub fn response(format: &str, result: Option<&[u8]>) -> HttpResponse {
    let Some(result) = result else {
        return bad_gateway();
    };
    let Ok(value) = serde_json::from_slice::<Value>(result) else {
        return bad_gateway();
    };
    let v2 = format == "2.0";
    let object = match &value {
        Value::Object(map) if map.contains_key("statusCode") => map,
        _ if v2 => {
            // v2: anything without statusCode is a 200 with the JSON as body.
            let body = match &value {
                Value::String(text) => text.clone().into_bytes(),
                _ => result.to_vec(),
            };
            return HttpResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body,
            };
        }
        _ => return bad_gateway(),
    };
    if !v2 && object.keys().any(|k| !V1_KEYS.contains(&k.as_str())) {
        return bad_gateway();
    }
    let Some(status) = object["statusCode"]
        .as_u64()
        .filter(|s| (100..=599).contains(s))
    else {
        return bad_gateway();
    };
    let mut headers = Vec::new();
    if let Some(map) = object.get("headers").and_then(Value::as_object) {
        for (name, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            headers.push((name.clone(), text));
        }
    }
    if let Some(map) = object.get("multiValueHeaders").and_then(Value::as_object) {
        for (name, values) in map {
            for value in values.as_array().into_iter().flatten() {
                headers.push((
                    name.clone(),
                    value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_string),
                ));
            }
        }
    }
    if v2 {
        for cookie in object
            .get("cookies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(cookie) = cookie.as_str() {
                headers.push(("set-cookie".into(), cookie.to_string()));
            }
        }
    }
    if headers.iter().any(|(n, v)| !header_ok(n, v)) {
        return bad_gateway();
    }
    let body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => {
            if object
                .get("isBase64Encoded")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                match base64::engine::general_purpose::STANDARD.decode(text) {
                    Ok(bytes) => bytes,
                    Err(_) => return bad_gateway(),
                }
            } else {
                text.clone().into_bytes()
            }
        }
        Some(other) if v2 => other.to_string().into_bytes(),
        Some(_) => return bad_gateway(),
    };
    HttpResponse {
        status: status as u16,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests;
