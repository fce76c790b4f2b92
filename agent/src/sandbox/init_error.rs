//! Typed errors of the sandbox init (the processes that build the sandbox
//! from inside). They travel to the agent as text over the control channel;
//! each names the operation and, where there is one, the path.

use std::path::PathBuf;

use super::capabilities::CapabilityError;
use super::seccomp::SeccompError;

/// A set-up step of the sandbox init failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// An operation on a path (mount, mkdir, write, symlink, ...) failed.
    #[error("{op} {}: {source}", path.display())]
    Path {
        /// What was being done, e.g. `mount tmpfs (size=4m)` or `mkdir`.
        op: String,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A call without a path (unshare, fork, setresuid, ...) failed.
    #[error("{op}: {source}")]
    Call {
        /// The call and its argument.
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The control channel protocol was not followed (closed early,
    /// undecodable message, missing descriptor).
    #[error("{0}")]
    Protocol(String),
    /// Dropping capabilities failed.
    #[error("dropping capabilities: {0}")]
    Capabilities(#[from] CapabilityError),
    /// Installing the seccomp filter failed.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// The runtime's execve failed.
    #[error("exec {program}: {}", errno.desc())]
    Exec {
        /// argv\[0\] as given in the spec.
        program: String,
        /// The error execve returned.
        errno: nix::errno::Errno,
    },
}

impl InitError {
    /// An error of `op` on `path`.
    pub fn path<E: Into<std::io::Error>>(
        op: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(E) -> InitError {
        let (op, path) = (op.into(), path.into());
        move |source| InitError::Path {
            op,
            path,
            source: source.into(),
        }
    }

    /// An error of the call `op`.
    pub fn call<E: Into<std::io::Error>>(op: impl Into<String>) -> impl FnOnce(E) -> InitError {
        let op = op.into();
        move |source| InitError::Call {
            op,
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_operation_and_path() {
        let e = InitError::path::<std::io::Error>("mkdir", "/x/y")(
            std::io::Error::from_raw_os_error(libc::EACCES),
        );
        assert!(e.to_string().starts_with("mkdir /x/y: "), "{e}");
        let e = InitError::Exec {
            program: "/var/task/bootstrap".into(),
            errno: nix::errno::Errno::ENOENT,
        };
        assert_eq!(
            e.to_string(),
            "exec /var/task/bootstrap: No such file or directory"
        );
        let e = InitError::call::<nix::Error>("unshare")(nix::errno::Errno::EPERM);
        assert!(e.to_string().starts_with("unshare: "), "{e}");
    }
}
