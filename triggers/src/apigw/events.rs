//! The v1.0 and v2.0 proxy events (docs/wire-formats.md §5d). v1.0 is
//! built as REST APIs build it: header names in the client's spelling,
//! `X-Forwarded-For/Port/Proto`, the full `requestContext.identity` key
//! set, and `requestContext.path` under `/<stage>`. v2.0 is built as HTTP
//! APIs build it: lowercase header names, duplicates comma-joined.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use serde_json::{json, Map, Value};

use super::{Api, Route};
use crate::percent::decode_lossy;

/// An HTTP request as the trigger saw it.
pub struct HttpRequest<'a> {
    /// `GET`, …
    pub method: &'a str,
    /// The path under the trigger prefix, percent-decoded.
    pub path: &'a str,
    /// The raw query string.
    pub raw_query: &'a str,
    /// Headers in arrival order, names as the client spelled them.
    pub headers: &'a [(String, String)],
    /// Body bytes.
    pub body: &'a [u8],
    /// Client address.
    pub source_ip: &'a str,
    /// The port the client connected to (`X-Forwarded-Port`).
    pub port: u16,
    /// Request id.
    pub request_id: &'a str,
    /// Arrival time.
    pub time: chrono::DateTime<chrono::Utc>,
    /// Account id for `requestContext`.
    pub account_id: &'a str,
}

impl HttpRequest<'_> {
    /// The first value of a header, its name matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
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

/// Each name's values in arrival order, as a JSON array per name. With
/// `fold_case`, names differing only in case share the first spelling's
/// entry (header names are case-insensitive; query names are not).
fn multi_values(
    pairs: impl IntoIterator<Item = (String, String)>,
    fold_case: bool,
) -> Map<String, Value> {
    let mut map = Map::new();
    let mut spelling: HashMap<String, String> = HashMap::new();
    for (name, value) in pairs {
        let key = if fold_case {
            spelling
                .entry(name.to_ascii_lowercase())
                .or_insert(name)
                .clone()
        } else {
            name
        };
        if let Some(list) = map.entry(key).or_insert_with(|| json!([])).as_array_mut() {
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

/// The client's headers as API Gateway forwards them: its own
/// `X-Forwarded-Port` and `X-Forwarded-Proto` replace the client's, and
/// the client's address is appended to `X-Forwarded-For`.
fn forwarded_headers(request: &HttpRequest<'_>) -> Vec<(String, String)> {
    let is = |name: &str, wanted: &str| name.eq_ignore_ascii_case(wanted);
    let mut chain: Vec<&str> = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::with_capacity(request.headers.len() + 3);
    for (name, value) in request.headers {
        if is(name, "x-forwarded-for") {
            chain.push(value.trim());
        } else if !is(name, "x-forwarded-port") && !is(name, "x-forwarded-proto") {
            headers.push((name.clone(), value.clone()));
        }
    }
    chain.retain(|hop| !hop.is_empty());
    chain.push(request.source_ip);
    headers.push(("X-Forwarded-For".into(), chain.join(", ")));
    headers.push(("X-Forwarded-Port".into(), request.port.to_string()));
    headers.push(("X-Forwarded-Proto".into(), "http".into()));
    headers
}

/// The arrival time as API Gateway writes it: `14/Nov/2023:22:13:20 +0000`.
fn request_time(request: &HttpRequest<'_>) -> String {
    request.time.format("%d/%b/%Y:%H:%M:%S +0000").to_string()
}

/// The host the client called (`requestContext.domainName`) and its first
/// label (`domainPrefix`); the API id when the request named no host.
fn domain<'a>(request: &'a HttpRequest<'_>, api: &'a Api<'_>) -> (&'a str, &'a str) {
    let host = request
        .header("host")
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or(api.id);
    let prefix = host.split(['.', ':']).next().unwrap_or(host);
    (host, prefix)
}

/// The `requestContext` fields both payload formats carry, plus `fields`.
fn request_context(request: &HttpRequest<'_>, api: &Api<'_>, fields: Value) -> Value {
    let (domain_name, domain_prefix) = domain(request, api);
    let mut context = json!({
        "accountId": request.account_id,
        "apiId": api.id,
        "domainName": domain_name,
        "domainPrefix": domain_prefix,
        "requestId": request.request_id,
        "stage": api.stage,
    });
    if let (Some(context), Value::Object(fields)) = (context.as_object_mut(), fields) {
        context.extend(fields);
    }
    context
}

const PROTOCOL: &str = "HTTP/1.1";

/// `requestContext.identity` of a REST API: every key, null when unknown.
fn identity(request: &HttpRequest<'_>) -> Value {
    json!({
        "cognitoIdentityPoolId": null,
        "accountId": null,
        "cognitoIdentityId": null,
        "caller": null,
        "sourceIp": request.source_ip,
        "principalOrgId": null,
        "accessKey": null,
        "cognitoAuthenticationType": null,
        "cognitoAuthenticationProvider": null,
        "userArn": null,
        "userAgent": request.header("user-agent"),
        "user": null,
    })
}

/// The v1.0 proxy event.
pub fn event_v1(
    request: &HttpRequest<'_>,
    api: &Api<'_>,
    route: &Route,
    params: &BTreeMap<String, String>,
) -> Value {
    let multi_headers = multi_values(forwarded_headers(request), true);
    let multi_query = multi_values(query_pairs(request.raw_query), false);
    let (body, is_base64) = body_field(request.body);
    let context = request_context(
        request,
        api,
        json!({
            "resourceId": api.id,
            "resourcePath": route.template(),
            "httpMethod": request.method,
            "extendedRequestId": request.request_id,
            "path": api.staged(request.path),
            "protocol": PROTOCOL,
            "requestTime": request_time(request),
            "requestTimeEpoch": request.time.timestamp_millis(),
            "identity": identity(request),
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
    api: &Api<'_>,
    route_key: &str,
    params: &BTreeMap<String, String>,
) -> Value {
    let (cookie_headers, other_headers): (Vec<_>, Vec<_>) = forwarded_headers(request)
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .partition(|(name, _)| name == "cookie");
    let cookies: Vec<String> = cookie_headers
        .iter()
        .flat_map(|(_, value)| value.split(';'))
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    let query = joined_values(multi_values(query_pairs(request.raw_query), false));
    let path_params = path_parameters(params);
    let (body, is_base64) = body_field(request.body);
    let path = api.staged(request.path);
    let context = request_context(
        request,
        api,
        json!({
            "http": {
                "method": request.method,
                "path": path,
                "protocol": PROTOCOL,
                "sourceIp": request.source_ip,
                "userAgent": request.header("user-agent").unwrap_or_default(),
            },
            "routeKey": route_key,
            "time": request_time(request),
            "timeEpoch": request.time.timestamp_millis(),
        }),
    );
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": request.raw_query,
        "headers": joined_values(multi_values(other_headers, false)),
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
