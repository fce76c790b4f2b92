//! Pre-started sandboxes in end-to-end tests: logging each claim, counting
//! claims, waiting for a blank.

use std::time::Duration;

use crate::{wait_until, Kumo};

/// kumod settings under which each cold start that claims a pre-started
/// sandbox is logged (see [`Kumo::claims`]).
pub const LOG_CLAIMS: &str = "[log]\nlevel = \"info,kumo_agent::executor=debug\"\n";

impl Kumo {
    /// How many cold starts claimed a pre-started sandbox (kumod started
    /// with [`LOG_CLAIMS`]).
    pub fn claims(&self) -> usize {
        self.log()
            .matches("cold start from a pre-started sandbox")
            .count()
    }

    /// Waits until the embedded agent has started a pre-started sandbox.
    pub fn wait_for_blank(&self) {
        let sandboxes = self.data_dir().join("agent").join("sandboxes");
        wait_until("a pre-started sandbox", Duration::from_secs(30), || {
            std::fs::read_dir(&sandboxes).is_ok_and(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with("-blank"))
            })
        });
    }
}
