//! API Gateway's Lambda proxy integration (docs/wire-formats.md §5d): route
//! templates (`/users/{id}`, `/files/{proxy+}`), the v1.0 and v2.0 request
//! events ([`events`]), turning a function's result into an HTTP response
//! with the 502 rules for malformed results ([`response`]), and CORS
//! ([`cors`]).

use std::collections::BTreeMap;

pub mod cors;
mod events;
mod response;

pub use events::{event_v1, event_v2, HttpRequest};
pub use response::{bad_gateway, response, HttpResponse, Malformed};

/// The methods a route may name (or `ANY`).
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// The stage used when a trigger names none (HTTP APIs' default stage).
pub const DEFAULT_STAGE: &str = "$default";

/// The API id used when a trigger names none.
pub const DEFAULT_API_ID: &str = "kumo";

/// The API a trigger's route belongs to, as events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api<'a> {
    /// `requestContext.apiId`.
    pub id: &'a str,
    /// `requestContext.stage`.
    pub stage: &'a str,
}

impl Api<'_> {
    /// `path` as the stage's URL has it: under `/<stage>`, except on the
    /// `$default` stage (REST APIs' `requestContext.path`, HTTP APIs'
    /// `rawPath`).
    pub fn staged(&self, path: &str) -> String {
        if self.stage == DEFAULT_STAGE {
            path.to_string()
        } else {
            format!("/{}{path}", self.stage)
        }
    }
}

/// Checks a stage name: `$default`, or 1-128 letters, digits, `-`, `_`.
pub fn validate_stage(stage: &str) -> Result<(), String> {
    let ok = stage == DEFAULT_STAGE
        || ((1..=128).contains(&stage.len())
            && stage
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "stage {stage:?} is not $default or 1-128 letters, digits, '-', '_'"
        ))
    }
}

/// Checks an API id: 1-64 lowercase letters and digits.
pub fn validate_api_id(id: &str) -> Result<(), String> {
    if (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(format!(
            "API id {id:?} is not 1-64 lowercase letters and digits"
        ))
    }
}

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

#[cfg(test)]
mod tests;
