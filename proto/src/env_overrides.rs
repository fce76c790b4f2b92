//! Selecting the environment variables that override configuration.
//!
//! kumod reads `KUMO_*` and the agent `KUMO_AGENT_*`, but the same
//! environment carries other Kumo variables (the CLI's `KUMO_ENDPOINT`, the
//! agent's variables in kumod's environment, ...). Only variables that name
//! one of the configuration's own top-level keys are overrides; the rest
//! belong to someone else and are ignored rather than refused.

use std::collections::HashMap;

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
