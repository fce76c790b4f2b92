//! Processes a test starts and must not leave behind.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::bin_dir;

/// A child process killed (and reaped) when the test ends, also when it
/// fails half-way.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kumod --all-in-one --config CONFIG`, its stderr going to `log`.
pub fn spawn_all_in_one(config: &Path, log: &Path) -> KillOnDrop {
    let log = std::fs::File::create(log).expect("kumod log file");
    KillOnDrop(
        Command::new(bin_dir().join("kumod"))
            .arg("--all-in-one")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting kumod"),
    )
}
