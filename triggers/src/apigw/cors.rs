//! CORS for an HTTP trigger, as API Gateway's CORS configuration does it:
//! a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
//! is answered without invoking the function, and responses to allowed
//! origins carry `Access-Control-Allow-Origin`. The defaults are those of
//! the API Gateway console's "Enable CORS": the route's methods and
//! `Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token`.

use serde::{Deserialize, Serialize};

use super::{HttpResponse, METHODS};

/// Request headers a preflight allows when none are configured.
pub const DEFAULT_ALLOW_HEADERS: &[&str] = &[
    "Content-Type",
    "X-Amz-Date",
    "Authorization",
    "X-Api-Key",
    "X-Amz-Security-Token",
];

/// Largest `Access-Control-Max-Age` (a day, as API Gateway).
pub const MAX_AGE_SECONDS: u32 = 86_400;

/// A CORS setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CORS setting: {0}")]
pub struct CorsError(pub String);

/// The CORS settings of one HTTP trigger (normalized by
/// [`Cors::validated`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cors {
    /// Allowed origins (`https://app.example.com`), or `*`.
    pub allow_origins: Vec<String>,
    /// Methods a preflight allows.
    pub allow_methods: Vec<String>,
    /// Request headers a preflight allows.
    pub allow_headers: Vec<String>,
    /// `Access-Control-Max-Age` (0 = not sent).
    pub max_age_seconds: u32,
}

fn origin_ok(origin: &str) -> bool {
    if origin == "*" {
        return true;
    }
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.split_once(':') {
        Some((host, port)) if !port.is_empty() && port.len() <= 5 => (host, port),
        Some(_) => return false,
        None => (rest, ""),
    };
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && port.bytes().all(|b| b.is_ascii_digit())
}

fn token_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn cleaned(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in list.into_iter().map(|s| s.trim().to_string()) {
        if !item.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(&item)) {
            out.push(item);
        }
    }
    out
}

impl Cors {
    /// Checks the settings and fills the defaults: methods from
    /// `route_methods` (the trigger's; empty = any) plus `OPTIONS`,
    /// headers from [`DEFAULT_ALLOW_HEADERS`].
    pub fn validated(self, route_methods: &[String]) -> Result<Cors, CorsError> {
        let fail = |reason: String| Err(CorsError(reason));
        let allow_origins = cleaned(self.allow_origins);
        if allow_origins.is_empty() {
            return fail(
                "at least one origin is needed (--cors-origin https://app.example.com, or *)"
                    .into(),
            );
        }
        if let Some(bad) = allow_origins.iter().find(|o| !origin_ok(o)) {
            return fail(format!(
                "origin {bad:?} is not * or scheme://host[:port] (http or https, no path)"
            ));
        }
        let mut allow_methods: Vec<String> = cleaned(self.allow_methods)
            .into_iter()
            .map(|m| m.to_ascii_uppercase())
            .collect();
        if let Some(bad) = allow_methods
            .iter()
            .find(|m| *m != "*" && !METHODS.contains(&m.as_str()))
        {
            return fail(format!("method {bad:?} is not one of {METHODS:?} or *"));
        }
        if allow_methods.is_empty() {
            allow_methods = if route_methods.is_empty() {
                METHODS.iter().map(|m| m.to_string()).collect()
            } else {
                route_methods.to_vec()
            };
            if !allow_methods.iter().any(|m| m == "OPTIONS") {
                allow_methods.push("OPTIONS".into());
            }
        }
        let mut allow_headers = cleaned(self.allow_headers);
        if let Some(bad) = allow_headers.iter().find(|h| !token_ok(h)) {
            return fail(format!(
                "header name {bad:?} is not a valid HTTP header name"
            ));
        }
        if allow_headers.is_empty() {
            allow_headers = DEFAULT_ALLOW_HEADERS
                .iter()
                .map(|h| h.to_string())
                .collect();
        }
        if self.max_age_seconds > MAX_AGE_SECONDS {
            return fail(format!(
                "max age {} s is over {MAX_AGE_SECONDS} s",
                self.max_age_seconds
            ));
        }
        Ok(Cors {
            allow_origins,
            allow_methods,
            allow_headers,
            max_age_seconds: self.max_age_seconds,
        })
    }

    /// The `Access-Control-Allow-Origin` value for `origin`: `*` when any
    /// origin is allowed, the origin itself when listed, else None.
    fn allow_origin(&self, origin: &str) -> Option<String> {
        if self.allow_origins.iter().any(|o| o == "*") {
            Some("*".into())
        } else {
            self.allow_origins
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin))
                .then(|| origin.to_string())
        }
    }

    /// The answer to a preflight from `origin`: 204, with the allow headers
    /// when the origin is allowed (without them the browser refuses).
    pub fn preflight(&self, origin: &str) -> HttpResponse {
        let mut response = HttpResponse {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        };
        if let Some(allowed) = self.allow_origin(origin) {
            let vary = allowed != "*";
            let headers = &mut response.headers;
            headers.push(("access-control-allow-origin".into(), allowed));
            headers.push((
                "access-control-allow-methods".into(),
                self.allow_methods.join(","),
            ));
            headers.push((
                "access-control-allow-headers".into(),
                self.allow_headers.join(","),
            ));
            if self.max_age_seconds > 0 {
                headers.push((
                    "access-control-max-age".into(),
                    self.max_age_seconds.to_string(),
                ));
            }
            if vary {
                headers.push(("vary".into(), "Origin".into()));
            }
        }
        response
    }

    /// Adds `Access-Control-Allow-Origin` to a response for a request from
    /// `origin` when the origin is allowed and the function set none.
    pub fn decorate(&self, origin: Option<&str>, response: &mut HttpResponse) {
        let Some(allowed) = origin.and_then(|o| self.allow_origin(o)) else {
            return;
        };
        if response.has_header("access-control-allow-origin") {
            return;
        }
        if allowed != "*" {
            response.headers.push(("vary".into(), "Origin".into()));
        }
        response
            .headers
            .push(("access-control-allow-origin".into(), allowed));
    }
}

/// A CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`. Returns the origin and the method the
/// browser asks about (uppercase).
pub fn preflight_of(method: &str, headers: &[(String, String)]) -> Option<(String, String)> {
    if method != "OPTIONS" {
        return None;
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let origin = get("origin")?;
    let requested = get("access-control-request-method")?;
    Some((origin.to_string(), requested.to_ascii_uppercase()))
}
