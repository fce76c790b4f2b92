//! A function's result as an HTTP response (docs/wire-formats.md §5d), and
//! why a result is malformed (API Gateway's 502).

use base64::Engine;
use serde_json::{Map, Value};

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

impl HttpResponse {
    /// Whether a header is set (name matched case-insensitively).
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// API Gateway's answer to a malformed result or a function error.
pub fn bad_gateway() -> HttpResponse {
    HttpResponse {
        status: 502,
        headers: vec![("content-type".into(), "application/json".into())],
        body: br#"{"message": "Internal server error"}"#.to_vec(),
    }
}

/// Why a function's result is not a proxy response API Gateway accepts
/// (the client gets [`bad_gateway`]; the reason goes to the function's log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Malformed Lambda proxy response: {0}")]
pub struct Malformed(pub String);

fn malformed<T>(reason: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed(reason.into()))
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

/// `statusCode` as API Gateway reads it: a JSON integer or a string of
/// digits (`"200"`; REST APIs accept it, as AWS's own
/// `microservice-http-endpoint` blueprint returns it), 100–599.
fn status_code(value: &Value) -> Option<u16> {
    let code = match value {
        Value::Number(n) => n.as_u64()?,
        Value::String(s)
            if !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().ok()?
        }
        _ => return None,
    };
    u16::try_from(code).ok().filter(|c| (100..=599).contains(c))
}

fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn response_headers(
    object: &Map<String, Value>,
    v2: bool,
) -> Result<Vec<(String, String)>, Malformed> {
    let mut headers = Vec::new();
    if let Some(map) = object.get("headers").and_then(Value::as_object) {
        for (name, value) in map {
            if let Some(text) = header_text(value) {
                headers.push((name.clone(), text));
            }
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
    match headers.iter().find(|(n, v)| !header_ok(n, v)) {
        Some((name, _)) => malformed(format!(
            "header {name:?} has an invalid name or a value with CR, LF or NUL"
        )),
        None => Ok(headers),
    }
}

fn response_body(object: &Map<String, Value>, v2: bool) -> Result<Vec<u8>, Malformed> {
    match object.get("body") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => {
            if object
                .get("isBase64Encoded")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .or_else(|_| malformed("isBase64Encoded is true but body is not base64"))
            } else {
                Ok(text.clone().into_bytes())
            }
        }
        Some(other) if v2 => Ok(other.to_string().into_bytes()),
        Some(_) => malformed("body must be a string"),
    }
}

/// Maps a function's JSON result to the HTTP response (`format` "1.0" or
/// "2.0"), or says why API Gateway would answer 502.
pub fn response(format: &str, result: &[u8]) -> Result<HttpResponse, Malformed> {
    let Ok(value) = serde_json::from_slice::<Value>(result) else {
        return malformed("the result is not JSON");
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
            return Ok(HttpResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body,
            });
        }
        Value::Object(_) => return malformed("no statusCode"),
        _ => return malformed("the result is not a JSON object"),
    };
    if !v2 {
        if let Some(key) = object.keys().find(|k| !V1_KEYS.contains(&k.as_str())) {
            return malformed(format!(
                "unknown key {key:?} (allowed: {})",
                V1_KEYS.join(", ")
            ));
        }
    }
    let Some(status) = status_code(&object["statusCode"]) else {
        return malformed(format!(
            "statusCode {} is not an integer from 100 to 599",
            object["statusCode"]
        ));
    };
    Ok(HttpResponse {
        status,
        headers: response_headers(object, v2)?,
        body: response_body(object, v2)?,
    })
}
