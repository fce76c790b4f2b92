//! Whether a function's runtime identifier asks for a language version the
//! agents' interpreter is not (e.g. `python3.12` on agents with Python
//! 3.11, `nodejs22.x` on agents with Node.js 20): the function still runs
//! on what the agents have; kumod says so.

use std::collections::BTreeSet;

use kumo_proto::agent::Register;
use kumo_proto::model::{requested_language_version, Runtime};

use super::AgentRegistry;

impl AgentRegistry {
    /// One line saying which agents' Python (or Node.js) differs from the
    /// version `runtime` names; None when it names none, or every agent
    /// that reported its version matches (or none has reported yet).
    pub fn runtime_warning(&self, runtime: &str) -> Option<String> {
        let (language, asked, reported_by, runs_on): (_, String, fn(&Register) -> &str, _) =
            match runtime.parse::<Runtime>().ok()? {
                Runtime::Nodejs(major) => (
                    "Node.js",
                    major.number().to_string(),
                    |r| &r.node_version,
                    "version",
                ),
                _ => (
                    "Python",
                    requested_language_version(runtime)?.to_string(),
                    |r| &r.python_version,
                    "interpreter",
                ),
            };
        let reported: BTreeSet<String> = self
            .snapshot()
            .iter()
            .map(|agent| reported_by(&agent.registration).to_string())
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
            "runtime {runtime} asks for {language} {asked}, but the agents run {language} {}: the function runs on that {runs_on}",
            other.join(", ")
        ))
    }
}
