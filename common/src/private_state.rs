//! Process set-up shared by kumod and the agent for their own state:
//! private file modes (data directories 0700, files 0600 whoever starts
//! the process) and file-descriptor headroom (the soft `RLIMIT_NOFILE`
//! raised to the hard limit).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::stat::{umask, Mode};

/// A data directory could not be made private.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct PrivateDirError {
    /// What was being done.
    pub op: &'static str,
    /// The directory or file.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Sets the process umask to 077 (new files 0600, new directories 0700)
/// and returns the previous one, so a caller can restore it before
/// starting processes that must not inherit it.
pub fn private_umask() -> u32 {
    umask(Mode::from_bits_truncate(0o077)).bits()
}

/// Sets the process umask to `mask` (e.g. the value [`private_umask`]
/// returned).
pub fn set_umask(mask: u32) {
    umask(Mode::from_bits_truncate(mask));
}

/// Creates `dir` (and missing parents) with mode 0700, and sets an existing
/// one to 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PrivateDirError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| PrivateDirError {
            op: "creating",
            path: dir.to_path_buf(),
            source,
        })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
        PrivateDirError {
            op: "setting mode 0700 on",
            path: dir.to_path_buf(),
            source,
        }
    })
}

/// Makes the tree under `dir` private: directories 0700, regular files
/// 0600 (symlinks are left alone; subdirectories named in `skip` are not
/// entered). For state created by an earlier run with a laxer umask.
pub fn make_tree_private(dir: &Path, skip: &[&Path]) -> Result<(), PrivateDirError> {
    ensure_private_dir(dir)?;
    let entries = std::fs::read_dir(dir).map_err(|source| PrivateDirError {
        op: "listing",
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if skip.iter().any(|s| *s == path) {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            make_tree_private(&path, skip)?;
        } else if kind.is_file() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
                |source| PrivateDirError {
                    op: "setting mode 0600 on",
                    path: path.clone(),
                    source,
                },
            )?;
        }
    }
    Ok(())
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft
/// limit now in force (the old one when raising failed).
pub fn raise_fd_limit() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn trees_become_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::create_dir_all(dir.join("agent")).unwrap();
        std::fs::write(dir.join("state/db"), b"x").unwrap();
        std::fs::write(dir.join("agent/pkg"), b"x").unwrap();
        for p in ["", "state", "agent"] {
            std::fs::set_permissions(dir.join(p), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(dir.join("state/db"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        std::fs::set_permissions(
            dir.join("agent/pkg"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let agent = dir.join("agent");
        make_tree_private(&dir, &[agent.as_path()]).unwrap();
        let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode(""), 0o700);
        assert_eq!(mode("state"), 0o700);
        assert_eq!(mode("state/db"), 0o600);
        assert_eq!(mode("agent"), 0o755, "skipped subtree untouched");
        assert_eq!(mode("agent/pkg"), 0o644);
        let fresh = root.path().join("new/nested");
        ensure_private_dir(&fresh).unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o7777, 0o700);
    }

    #[test]
    fn the_fd_limit_is_at_least_the_old_soft_limit() {
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert!(raise_fd_limit() >= soft);
    }
}
