//! SNS subscription filter policies on message attributes
//! (docs/wire-formats.md §10): a JSON object naming attributes, each with
//! an array of matchers, in the same matcher language as SQS filter
//! patterns ([`crate::event_pattern`]). `String` attributes compare as
//! strings, `Number` ones as numbers, `String.Array` ones match when any
//! element does; `Binary` attributes are never matched.

use serde_json::{Map, Value};

use crate::event_pattern::{EventPattern, PatternError};
use crate::sns::Attribute;

/// A parsed filter policy.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPolicy {
    pattern: EventPattern,
}

impl FilterPolicy {
    /// Parses a policy's JSON text: an object of attribute names, each
    /// with a non-empty array of matchers (no nested objects: policies
    /// on message bodies are not supported).
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let pattern = EventPattern::parse(text)?;
        if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) {
            if let Some((key, _)) = fields.iter().find(|(_, v)| !v.is_array()) {
                return Err(PatternError {
                    pattern: text.chars().take(80).collect(),
                    message: format!(
                        "attribute {key:?} must hold an array of matchers (filter policies apply to message attributes only)"
                    ),
                });
            }
        }
        Ok(Self { pattern })
    }

    /// Whether a message with `attributes` passes.
    pub fn matches(&self, attributes: &[(String, Attribute)]) -> bool {
        self.pattern.matches(&attribute_values(attributes))
    }
}

/// The attributes as the JSON object a pattern is matched against.
fn attribute_values(attributes: &[(String, Attribute)]) -> Value {
    let mut object = Map::new();
    for (name, attribute) in attributes {
        let value = match attribute.data_type.split('.').next().unwrap_or("") {
            "String" if attribute.data_type == "String.Array" => {
                match serde_json::from_str::<Value>(&attribute.value) {
                    Ok(array @ Value::Array(_)) => array,
                    _ => Value::String(attribute.value.clone()),
                }
            }
            "String" => Value::String(attribute.value.clone()),
            "Number" => match attribute.value.trim().parse::<f64>() {
                Ok(n) => serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(attribute.value.clone())),
                Err(_) => Value::String(attribute.value.clone()),
            },
            _ => continue,
        };
        object.insert(name.clone(), value);
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&str, &str, &str)]) -> Vec<(String, Attribute)> {
        list.iter()
            .map(|(n, t, v)| {
                (
                    n.to_string(),
                    Attribute {
                        data_type: t.to_string(),
                        value: v.to_string(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn exact_prefix_numeric_and_arrays() {
        let policy = FilterPolicy::parse(
            r#"{"colour":["red",{"prefix":"bl"}],"size":[{"numeric":[">",10]}]}"#,
        )
        .unwrap();
        assert!(policy.matches(&attrs(&[
            ("colour", "String", "red"),
            ("size", "Number", "11")
        ])));
        assert!(policy.matches(&attrs(&[
            ("colour", "String", "blue"),
            ("size", "Number", "12.5")
        ])));
        assert!(!policy.matches(&attrs(&[
            ("colour", "String", "green"),
            ("size", "Number", "11")
        ])));
        assert!(!policy.matches(&attrs(&[
            ("colour", "String", "red"),
            ("size", "Number", "10")
        ])));
        assert!(!policy.matches(&attrs(&[("colour", "String", "red")])));
        let tags = FilterPolicy::parse(r#"{"tags":["b"]}"#).unwrap();
        assert!(tags.matches(&attrs(&[("tags", "String.Array", r#"["a","b"]"#)])));
        assert!(!tags.matches(&attrs(&[("tags", "String.Array", r#"["a","c"]"#)])));
        assert!(!tags.matches(&attrs(&[("tags", "Binary", "Yg==")])));
    }

    #[test]
    fn exists_and_anything_but() {
        let policy =
            FilterPolicy::parse(r#"{"a":[{"exists":false}],"b":[{"anything-but":"x"}]}"#).unwrap();
        assert!(policy.matches(&attrs(&[("b", "String", "y")])));
        assert!(!policy.matches(&attrs(&[("a", "String", "1"), ("b", "String", "y")])));
        assert!(!policy.matches(&attrs(&[("b", "String", "x")])));
    }

    #[test]
    fn bad_policies_are_refused() {
        for text in [
            "",
            "[]",
            "{}",
            r#"{"a":"x"}"#,
            r#"{"a":{"b":["c"]}}"#,
            r#"{"a":[{"bogus":1}]}"#,
        ] {
            assert!(FilterPolicy::parse(text).is_err(), "{text}");
        }
    }
}
