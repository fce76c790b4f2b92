//! `deploy/kumod.toml` and `deploy/agent.toml` are the operator's reference:
//! every configuration key kumod and the agent accept must appear in them
//! (set or commented out) so nobody has to read the source to find one.

use std::collections::BTreeSet;
use std::path::Path;

/// Dotted keys of a default configuration serialized to JSON (`a.b.c`);
/// maps of named entries (e.g. S3 profiles) contribute only their own name.
fn config_keys(value: &serde_json::Value, prefix: &str, keys: &mut BTreeSet<String>) {
    if let serde_json::Value::Object(map) = value {
        for (key, inner) in map {
            let dotted = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            keys.insert(dotted.clone());
            config_keys(inner, &dotted, keys);
        }
    }
}

/// Keys an example TOML file mentions, commented out or not: `[section]`
/// / `[[section]]` headers set the prefix of the `key = …` lines after them.
fn example_keys(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut keys = BTreeSet::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim_start_matches(['#', ' ']).trim();
        if let Some(header) = line.strip_prefix('[') {
            section = header.trim_matches(['[', ']']).to_string();
            let mut dotted = String::new();
            for part in section.split('.') {
                if !dotted.is_empty() {
                    dotted.push('.');
                }
                dotted.push_str(part);
                keys.insert(dotted.clone());
            }
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        keys.insert(if section.is_empty() {
            key.to_string()
        } else {
            format!("{section}.{key}")
        });
    }
    keys
}

fn assert_documented(example: &str, defaults: serde_json::Value, skip: &[&str]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(example);
    let mentioned = example_keys(&path);
    let mut keys = BTreeSet::new();
    config_keys(&defaults, "", &mut keys);
    let missing: Vec<_> = keys
        .iter()
        .filter(|key| !skip.iter().any(|s| key.starts_with(s)))
        .filter(|key| !mentioned.contains(*key))
        .collect();
    assert!(
        missing.is_empty(),
        "{example} does not mention these configuration keys: {missing:?}"
    );
}

#[test]
fn kumod_example_mentions_every_key() {
    let defaults = serde_json::to_value(kumo_daemon::config::DaemonConfig::default()).unwrap();
    // `agent` is the embedded agent's table: its keys are agent.toml's.
    assert_documented("deploy/kumod.toml", defaults, &["agent"]);
}

#[test]
fn agent_example_mentions_every_key() {
    let defaults = serde_json::to_value(kumo_agent::config::AgentConfig::default()).unwrap();
    assert_documented("deploy/agent.toml", defaults, &[]);
}

#[test]
fn a_missing_key_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("partial.toml");
    std::fs::write(&file, "listen = \"x\"\n[auth]\n# token_files = []\n").unwrap();
    let mentioned = example_keys(&file);
    assert!(mentioned.contains("listen") && mentioned.contains("auth.token_files"));
    let mut keys = BTreeSet::new();
    config_keys(
        &serde_json::json!({"listen": 1, "auth": {"token_files": [], "insecure_local": false}}),
        "",
        &mut keys,
    );
    assert!(!mentioned.contains("auth.insecure_local") && keys.contains("auth.insecure_local"));
}
