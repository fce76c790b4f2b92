//! Layered configuration shared by kumod and the agent: defaults → a TOML
//! file → environment variables (`PREFIX_<KEY>`, nested keys joined by
//! `__`).
//!
//! kumod reads `KUMO_*` and the agent `KUMO_AGENT_*`, but the same
//! environment carries other Kumo variables (the CLI's `KUMO_ENDPOINT`, the
//! agent's variables in kumod's environment, ...). Only variables that name
//! one of the configuration's own top-level keys are overrides; the rest
//! belong to someone else and are ignored rather than refused.

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("loading configuration from {path}: {message}")]
pub struct LoadError {
    /// The file, or `<defaults>`.
    pub path: String,
    /// What is wrong (unknown key, bad value, unreadable file, ...).
    pub message: String,
}

/// Loads `T` from its defaults, then `file` (TOML) if given, then the
/// environment variables of `prefix` that name one of `T`'s keys.
pub fn load<T: Serialize + DeserializeOwned + Default>(
    file: Option<&Path>,
    prefix: &str,
) -> Result<T, LoadError> {
    let path = file
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<defaults>".into());
    let known_keys: Vec<String> = match serde_json::to_value(T::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let mut builder = config::Config::builder();
    if let Some(file) = file {
        builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
    }
    builder = builder.add_source(
        config::Environment::with_prefix(prefix)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(overrides(std::env::vars(), prefix, &known_keys))),
    );
    builder
        .build()
        .and_then(|c| c.try_deserialize::<T>())
        .map_err(|e| LoadError {
            path,
            message: e.to_string(),
        })
}

/// The variables `PREFIX_<KEY>[__<NESTED>]` whose `<KEY>` (lower-cased) is
/// in `known_keys`, from `vars`.
pub fn overrides(
    vars: impl IntoIterator<Item = (String, String)>,
    prefix: &str,
    known_keys: &[String],
) -> HashMap<String, String> {
    let head = format!("{prefix}_");
    vars.into_iter()
        .filter(|(name, _)| {
            name.strip_prefix(&head).is_some_and(|rest| {
                let key = rest
                    .split("__")
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                known_keys.contains(&key)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_keys_are_kept() {
        let vars = [
            ("KUMO_ENDPOINT", "http://x"),
            ("KUMO_DATA_DIR", "/d"),
            ("KUMO_AGENT__IDLE_TIMEOUT_SECONDS", "5"),
            ("KUMO_AGENT_SERVER", "http://y"),
            ("PATH", "/bin"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let known = ["data_dir".to_string(), "agent".to_string()];
        let kept = overrides(vars, "KUMO", &known);
        let mut names: Vec<&String> = kept.keys().collect();
        names.sort();
        assert_eq!(names, ["KUMO_AGENT__IDLE_TIMEOUT_SECONDS", "KUMO_DATA_DIR"]);
    }
}
