//! EventBridge-style event patterns, as SQS event sources use them to
//! filter messages (docs/wire-formats.md §9): a pattern is a JSON object
//! whose leaves are arrays of matchers; an event matches when every field
//! of the pattern matches. Matchers: exact values (string, number, bool,
//! null), `{"prefix": s}`, `{"suffix": s}`, `{"equals-ignore-case": s}`,
//! `{"anything-but": v | [v…] | {"prefix": s} | {"suffix": s}}`,
//! `{"numeric": [op, n (, op, n)]}` with `=`, `<`, `<=`, `>`, `>=`, and
//! `{"exists": bool}`. An array value in the event matches when any of
//! its elements does.

use serde_json::{Map, Value};

/// Most patterns one trigger may have (Lambda's limit).
pub const MAX_PATTERNS: usize = 5;
/// Longest pattern text.
pub const MAX_PATTERN_BYTES: usize = 4096;

/// A pattern is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter pattern {pattern}: {message}")]
pub struct PatternError {
    /// The pattern as given (shortened).
    pub pattern: String,
    /// What is wrong.
    pub message: String,
}

/// One leaf test.
#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Exact(Value),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut(Vec<Value>),
    AnythingButPrefix(String),
    AnythingButSuffix(String),
    Numeric(Vec<(Op, f64)>),
    Exists(bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A pattern node: leaves are matcher lists, inner nodes are fields.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Leaf(Vec<Matcher>),
    Fields(Vec<(String, Node)>),
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPattern {
    root: Vec<(String, Node)>,
}

fn short(text: &str) -> String {
    let mut s: String = text.chars().take(80).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

impl EventPattern {
    /// Parses a pattern's JSON text.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let fail = |message: String| PatternError {
            pattern: short(text),
            message,
        };
        if text.len() > MAX_PATTERN_BYTES {
            return Err(fail(format!(
                "{} bytes, over {MAX_PATTERN_BYTES}",
                text.len()
            )));
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| fail(format!("not JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(fail("must be a JSON object".into()));
        };
        if fields.is_empty() {
            return Err(fail("must name at least one field".into()));
        }
        let root = parse_fields(&fields, 0).map_err(fail)?;
        Ok(Self { root })
    }

    /// Whether `event` matches.
    pub fn matches(&self, event: &Value) -> bool {
        fields_match(&self.root, event)
    }
}

fn parse_fields(fields: &Map<String, Value>, depth: usize) -> Result<Vec<(String, Node)>, String> {
    if depth > 32 {
        return Err("nested too deeply".into());
    }
    fields
        .iter()
        .map(|(key, value)| {
            let node = match value {
                Value::Object(inner) if !inner.is_empty() => {
                    Node::Fields(parse_fields(inner, depth + 1)?)
                }
                Value::Array(items) if !items.is_empty() => Node::Leaf(
                    items
                        .iter()
                        .map(|item| parse_matcher(key, item))
                        .collect::<Result<_, _>>()?,
                ),
                _ => {
                    return Err(format!(
                        "field {key:?} must hold an object or a non-empty array of matchers"
                    ))
                }
            };
            Ok((key.clone(), node))
        })
        .collect()
}

fn string_operand(key: &str, name: &str, value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("field {key:?}: {name} needs a string"))
}

fn parse_matcher(key: &str, item: &Value) -> Result<Matcher, String> {
    let Value::Object(rule) = item else {
        return match item {
            Value::Array(_) => Err(format!("field {key:?}: nested arrays are not matchers")),
            exact => Ok(Matcher::Exact(exact.clone())),
        };
    };
    let mut entries = rule.iter();
    let (Some((name, operand)), None) = (entries.next(), entries.next()) else {
        return Err(format!(
            "field {key:?}: a matcher object has exactly one key"
        ));
    };
    match name.as_str() {
        "prefix" => Ok(Matcher::Prefix(string_operand(key, name, operand)?)),
        "suffix" => Ok(Matcher::Suffix(string_operand(key, name, operand)?)),
        "equals-ignore-case" => Ok(Matcher::EqualsIgnoreCase(string_operand(
            key, name, operand,
        )?)),
        "exists" => operand
            .as_bool()
            .map(Matcher::Exists)
            .ok_or_else(|| format!("field {key:?}: exists needs true or false")),
        "numeric" => parse_numeric(key, operand),
        "anything-but" => match operand {
            Value::Object(inner) => match inner.iter().next() {
                Some((k, v)) if inner.len() == 1 && k == "prefix" => {
                    Ok(Matcher::AnythingButPrefix(string_operand(key, k, v)?))
                }
                Some((k, v)) if inner.len() == 1 && k == "suffix" => {
                    Ok(Matcher::AnythingButSuffix(string_operand(key, k, v)?))
                }
                _ => Err(format!(
                    "field {key:?}: anything-but takes a value, a list, or {{\"prefix\"|\"suffix\": s}}"
                )),
            },
            Value::Array(values) if values.iter().all(|v| !v.is_object() && !v.is_array()) => {
                Ok(Matcher::AnythingBut(values.clone()))
            }
            Value::Array(_) => Err(format!(
                "field {key:?}: anything-but lists hold plain values"
            )),
            value => Ok(Matcher::AnythingBut(vec![value.clone()])),
        },
        other => Err(format!("field {key:?}: unknown matcher {other:?}")),
    }
}

fn parse_numeric(key: &str, operand: &Value) -> Result<Matcher, String> {
    let bad = || {
        format!("field {key:?}: numeric needs [op, number] or [op, number, op, number] (op: = < <= > >=)")
    };
    let Value::Array(items) = operand else {
        return Err(bad());
    };
    if items.len() != 2 && items.len() != 4 {
        return Err(bad());
    }
    items
        .chunks(2)
        .map(|pair| {
            let op = match pair[0].as_str() {
                Some("=") => Op::Eq,
                Some("<") => Op::Lt,
                Some("<=") => Op::Le,
                Some(">") => Op::Gt,
                Some(">=") => Op::Ge,
                _ => return Err(bad()),
            };
            let n = pair[1].as_f64().ok_or_else(bad)?;
            Ok((op, n))
        })
        .collect::<Result<_, _>>()
        .map(Matcher::Numeric)
}

fn fields_match(fields: &[(String, Node)], event: &Value) -> bool {
    fields.iter().all(|(key, node)| {
        let value = event.as_object().and_then(|o| o.get(key));
        match node {
            Node::Fields(inner) => value.is_some_and(|v| match v {
                Value::Array(items) => items.iter().any(|item| fields_match(inner, item)),
                other => fields_match(inner, other),
            }),
            Node::Leaf(matchers) => matchers.iter().any(|m| leaf_matches(m, value)),
        }
    })
}

/// One matcher against a field's value (`None`: the field is absent).
fn leaf_matches(matcher: &Matcher, value: Option<&Value>) -> bool {
    match (matcher, value) {
        (Matcher::Exists(wanted), value) => {
            let present = value.is_some_and(|v| !v.is_object());
            present == *wanted
        }
        (_, None) => false,
        (_, Some(Value::Array(items))) => {
            if let Matcher::AnythingBut(_)
            | Matcher::AnythingButPrefix(_)
            | Matcher::AnythingButSuffix(_) = matcher
            {
                // None of the elements may be excluded.
                !items.is_empty() && items.iter().all(|i| scalar_matches(matcher, i))
            } else {
                items.iter().any(|i| scalar_matches(matcher, i))
            }
        }
        (_, Some(value)) => scalar_matches(matcher, value),
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn scalar_matches(matcher: &Matcher, value: &Value) -> bool {
    match matcher {
        Matcher::Exact(expected) => same_value(expected, value),
        Matcher::Prefix(p) => value.as_str().is_some_and(|s| s.starts_with(p.as_str())),
        Matcher::Suffix(p) => value.as_str().is_some_and(|s| s.ends_with(p.as_str())),
        Matcher::EqualsIgnoreCase(p) => value
            .as_str()
            .is_some_and(|s| s.to_lowercase() == p.to_lowercase()),
        Matcher::AnythingBut(excluded) => {
            !value.is_object() && !excluded.iter().any(|e| same_value(e, value))
        }
        Matcher::AnythingButPrefix(p) => value.as_str().is_some_and(|s| !s.starts_with(p.as_str())),
        Matcher::AnythingButSuffix(p) => value.as_str().is_some_and(|s| !s.ends_with(p.as_str())),
        Matcher::Numeric(conditions) => value.as_f64().is_some_and(|n| {
            conditions.iter().all(|(op, bound)| match op {
                Op::Eq => n == *bound,
                Op::Lt => n < *bound,
                Op::Le => n <= *bound,
                Op::Gt => n > *bound,
                Op::Ge => n >= *bound,
            })
        }),
        Matcher::Exists(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(pattern: &str, event: Value) -> bool {
        EventPattern::parse(pattern)
            .unwrap_or_else(|e| panic!("{e}"))
            .matches(&event)
    }

    #[test]
    fn exact_values_and_nesting() {
        let p = r#"{"body":{"kind":["order"],"n":[5]}}"#;
        assert!(matches(p, json!({"body":{"kind":"order","n":5.0}})));
        assert!(!matches(p, json!({"body":{"kind":"order","n":6}})));
        assert!(!matches(p, json!({"body":{"kind":"refund","n":5}})));
        assert!(!matches(p, json!({"body":"order"})));
        assert!(matches(
            r#"{"body":{"tags":["b"]}}"#,
            json!({"body":{"tags":["a","b"]}})
        ));
        assert!(matches(
            r#"{"body":{"x":[null]}}"#,
            json!({"body":{"x":null}})
        ));
        assert!(!matches(r#"{"body":{"x":[null]}}"#, json!({"body":{}})));
        assert!(matches(
            r#"{"body":["plain text"]}"#,
            json!({"body":"plain text"})
        ));
    }

    #[test]
    fn string_matchers() {
        let p = r#"{"body":{"key":[{"prefix":"img/"},{"suffix":".png"}]}}"#;
        assert!(matches(p, json!({"body":{"key":"img/a.jpg"}})));
        assert!(matches(p, json!({"body":{"key":"doc/a.png"}})));
        assert!(!matches(p, json!({"body":{"key":"doc/a.jpg"}})));
        assert!(!matches(p, json!({"body":{"key":7}})));
        let p = r#"{"body":{"k":[{"equals-ignore-case":"Yes"}]}}"#;
        assert!(matches(p, json!({"body":{"k":"yES"}})));
    }

    #[test]
    fn anything_but() {
        let p = r#"{"body":{"state":[{"anything-but":["test","dev"]}]}}"#;
        assert!(matches(p, json!({"body":{"state":"prod"}})));
        assert!(!matches(p, json!({"body":{"state":"dev"}})));
        assert!(!matches(p, json!({"body":{}})));
        assert!(!matches(p, json!({"body":{"state":["prod","dev"]}})));
        let p = r#"{"body":{"n":[{"anything-but":0}]}}"#;
        assert!(matches(p, json!({"body":{"n":1}})));
        assert!(!matches(p, json!({"body":{"n":0.0}})));
        let p = r#"{"body":{"k":[{"anything-but":{"prefix":"tmp/"}}]}}"#;
        assert!(matches(p, json!({"body":{"k":"img/x"}})));
        assert!(!matches(p, json!({"body":{"k":"tmp/x"}})));
    }

    #[test]
    fn numeric_ranges() {
        let p = r#"{"body":{"price":[{"numeric":[">",10,"<=",20]}]}}"#;
        assert!(matches(p, json!({"body":{"price":15}})));
        assert!(matches(p, json!({"body":{"price":20}})));
        assert!(!matches(p, json!({"body":{"price":10}})));
        assert!(!matches(p, json!({"body":{"price":"15"}})));
        assert!(matches(
            r#"{"body":{"n":[{"numeric":["=",3]}]}}"#,
            json!({"body":{"n":3.0}})
        ));
    }

    #[test]
    fn exists() {
        let yes = r#"{"messageAttributes":{"trace":[{"exists":true}]}}"#;
        let no = r#"{"messageAttributes":{"trace":[{"exists":false}]}}"#;
        let with = json!({"messageAttributes":{"trace":{"stringValue":"x"}}});
        let with_scalar = json!({"messageAttributes":{"trace":"x"}});
        let without = json!({"messageAttributes":{}});
        assert!(matches(yes, with_scalar.clone()));
        assert!(!matches(no, with_scalar));
        assert!(matches(no, without.clone()));
        assert!(!matches(yes, without));
        let nested = r#"{"messageAttributes":{"trace":{"stringValue":[{"exists":true}]}}}"#;
        assert!(matches(nested, with));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        for (text, reason) in [
            ("[]", "JSON object"),
            ("{}", "at least one field"),
            ("not json", "not JSON"),
            (r#"{"body":"x"}"#, "non-empty array"),
            (r#"{"body":[]}"#, "non-empty array"),
            (r#"{"body":[{"regex":"x"}]}"#, "unknown matcher"),
            (r#"{"body":[{"prefix":1}]}"#, "needs a string"),
            (r#"{"body":[{"numeric":[">"]}]}"#, "numeric needs"),
            (r#"{"body":[{"numeric":["!=",1]}]}"#, "numeric needs"),
            (r#"{"body":[{"exists":"yes"}]}"#, "exists needs"),
            (
                r#"{"body":[{"prefix":"a","suffix":"b"}]}"#,
                "exactly one key",
            ),
            (r#"{"body":[[1]]}"#, "nested arrays"),
        ] {
            let err = EventPattern::parse(text).unwrap_err().to_string();
            assert!(err.contains(reason), "{text}: {err}");
        }
        let deep = format!("{}[1]{}", r#"{"a":"#.repeat(40), "}".repeat(40));
        assert!(EventPattern::parse(&deep).is_err());
        let long = format!(r#"{{"body":["{}"]}}"#, "x".repeat(MAX_PATTERN_BYTES));
        assert!(EventPattern::parse(&long)
            .unwrap_err()
            .to_string()
            .contains("bytes"));
    }
}
