//! Everything a sandbox leaves on the host, and the one way to remove it,
//! used by every clean-up path (a failed start, `destroy`, and a sandbox or
//! half-started sandbox dropped without either): kill its processes, remove
//! its cgroup (retrying while the kernel reports it busy) and its scratch
//! directory (detaching a mount left on it if need be). Every failure is
//! logged and reported, none is dropped.

use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::cgroup::InstanceCgroup;
use super::SandboxError;

/// What is left of one sandbox on the host.
#[derive(Debug, Default)]
pub struct Teardown {
    /// The instance id, for messages.
    pub instance: String,
    /// Host pids to SIGKILL (the init and the sandbox's PID 1).
    pub pids: Vec<i32>,
    /// The instance's cgroup.
    pub cgroup: Option<InstanceCgroup>,
    /// The scratch directory (the root's mount point).
    pub root_dir: Option<PathBuf>,
}

/// One clean-up step that failed.
#[derive(Debug, thiserror::Error)]
pub enum TeardownFailure {
    /// Killing a process failed (other than it being gone already).
    #[error("kill -9 {pid}: {source}")]
    Kill {
        /// Host pid.
        pid: i32,
        /// The error.
        #[source]
        source: Errno,
    },
    /// The cgroup could not be removed.
    #[error(transparent)]
    Cgroup(SandboxError),
    /// The scratch directory could not be removed.
    #[error("removing {}: {source}", path.display())]
    RemoveDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A mount left on the scratch directory could not be detached.
    #[error("unmounting {}: {source}", path.display())]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// The error.
        #[source]
        source: Errno,
    },
}

impl Teardown {
    /// SIGKILLs the recorded processes. A process already gone is fine;
    /// any other failure is logged and returned.
    pub fn kill(&self) -> Vec<TeardownFailure> {
        let mut failures = Vec::new();
        for &pid in self.pids.iter().filter(|&&pid| pid > 0) {
            match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(source) => failures.push(TeardownFailure::Kill { pid, source }),
            }
        }
        self.log(&failures);
        failures
    }

    /// Kills, then removes the cgroup and the scratch directory (blocking:
    /// the cgroup removal retries with short sleeps). Returns every failure
    /// (each also logged).
    pub fn run(mut self) -> Result<(), SandboxError> {
        let mut failures = self.kill();
        let mut more = Vec::new();
        if let Some(cgroup) = self.cgroup.take() {
            if let Err(e) = cgroup.remove() {
                more.push(TeardownFailure::Cgroup(e));
            }
        }
        if let Some(dir) = self.root_dir.take() {
            more.extend(remove_scratch_dir(dir));
        }
        self.log(&more);
        failures.extend(more);
        if failures.is_empty() {
            Ok(())
        } else {
            Err(SandboxError::Teardown {
                instance: self.instance.clone(),
                failures: failures
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            })
        }
    }

    /// Kills now and runs the rest on a separate thread (for `Drop`, which
    /// must not block); failures are logged there.
    pub fn run_detached(mut self) {
        self.kill();
        self.pids.clear();
        if self.cgroup.is_none() && self.root_dir.is_none() {
            return;
        }
        std::thread::spawn(move || {
            let _logged = self.run();
        });
    }

    fn log(&self, failures: &[TeardownFailure]) {
        for failure in failures {
            tracing::warn!(instance = %self.instance, error = %failure, "sandbox clean-up");
        }
    }
}

/// Removes the (empty) scratch directory; if a mount is still on it,
/// detaches that first. Missing is fine.
fn remove_scratch_dir(dir: PathBuf) -> Vec<TeardownFailure> {
    match std::fs::remove_dir(&dir) {
        Ok(()) => Vec::new(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            if let Err(source) = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH) {
                return vec![TeardownFailure::Unmount { path: dir, source }];
            }
            match std::fs::remove_dir(&dir) {
                Ok(()) => Vec::new(),
                Err(source) => vec![TeardownFailure::RemoveDir { path: dir, source }],
            }
        }
        Err(source) => vec![TeardownFailure::RemoveDir { path: dir, source }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_the_scratch_dir_and_tolerates_it_missing() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("i1");
        std::fs::create_dir(&dir).unwrap();
        let teardown = Teardown {
            instance: "i1".into(),
            root_dir: Some(dir.clone()),
            ..Default::default()
        };
        teardown.run().unwrap();
        assert!(!dir.exists());
        let again = Teardown {
            instance: "i1".into(),
            root_dir: Some(dir),
            ..Default::default()
        };
        again.run().unwrap();
    }

    #[test]
    fn reports_a_scratch_dir_it_cannot_remove() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("i2");
        std::fs::create_dir_all(dir.join("left-behind")).unwrap();
        let err = Teardown {
            instance: "i2".into(),
            root_dir: Some(dir.clone()),
            ..Default::default()
        }
        .run()
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sandbox i2"), "{text}");
        assert!(
            text.contains(&format!("removing {}", dir.display())),
            "{text}"
        );
    }
}
