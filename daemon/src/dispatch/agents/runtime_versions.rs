//! Whether a function's runtime identifier asks for a language version the
//! agents' interpreter is not (e.g. `python3.12` on agents with Python
//! 3.11): the function still runs on what the agents have; kumod says so.

use std::collections::BTreeSet;

use kumo_proto::model::requested_language_version;

use super::AgentRegistry;

impl AgentRegistry {
    /// One line saying which agents' Python differs from the version
    /// `runtime` names; None when it names none, or every agent that
    /// reported its version matches (or none has reported yet).
    pub fn runtime_warning(&self, runtime: &str) -> Option<String> {
        let asked = requested_language_version(runtime)?;
        let reported: BTreeSet<String> = self
            .snapshot()
            .into_iter()
            .map(|agent| agent.registration.python_version)
            .filter(|version| !version.is_empty())
            .collect();
        let other: Vec<&str> = reported
            .iter()
            .map(String::as_str)
            .filter(|v| *v != asked)
            .collect();
        if other.is_empty() {
            return None;
        }
        Some(format!(
            "runtime {runtime} asks for Python {asked}, but the agents run Python {}: the function runs on that interpreter",
            other.join(", ")
        ))
    }
}
