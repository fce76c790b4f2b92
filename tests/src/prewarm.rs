//! Pre-started sandboxes in end-to-end tests: logging each claim, counting
//! claims, waiting for a blank.

use std::time::Duration;

use crate::{wait_until, Kumo};

/// kumod settings under which each cold start that claims a pre-started
/// sandbox, and each pre-started sandbox made ready, is logged (see
/// [`Kumo::claims`], [`Kumo::wait_for_blanks`]).
pub const LOG_CLAIMS: &str =
    "[log]\nlevel = \"info,kumo_agent::executor=debug,kumo_agent::prewarm=debug\"\n";

impl Kumo {
    /// How many cold starts claimed a pre-started sandbox (kumod started
    /// with [`LOG_CLAIMS`]).
    pub fn claims(&self) -> usize {
        self.log()
            .matches("cold start from a pre-started sandbox")
            .count()
    }

    /// Waits until the embedded agent has a pre-started sandbox ready
    /// (kumod started with [`LOG_CLAIMS`]).
    pub fn wait_for_blank(&self) {
        self.wait_for_blanks(1);
    }

    /// Waits until the embedded agent has made `count` pre-started
    /// sandboxes ready (kumod started with [`LOG_CLAIMS`]): on a busy
    /// machine they take a while, and a call before them starts classically.
    pub fn wait_for_blanks(&self, count: usize) {
        wait_until("pre-started sandboxes", Duration::from_secs(60), || {
            self.log().matches("pre-started sandbox ready").count() >= count
        });
    }
}
