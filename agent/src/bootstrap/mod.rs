//! Kumo's Python bootstrap: a stdlib-only Lambda runtime client
//! (`bootstrap.py`, embedded here) that the `python3` runtime runs as
//! `<python> -B -s /var/runtime/bootstrap.py`. It imports the `_HANDLER`
//! module from `LAMBDA_TASK_ROOT`, reports loader failures to
//! `/runtime/init/error`, then loops over `/invocation/next`, speaking
//! HTTP/1.1 over a raw socket so that it starts about as fast as a bare
//! interpreter.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The bootstrap's source.
pub const BOOTSTRAP_PY: &str = include_str!("bootstrap.py");
/// File name of the bootstrap inside the runtime directory.
pub const BOOTSTRAP_FILE_NAME: &str = "bootstrap.py";
/// Where the runtime directory is mounted inside a sandbox.
pub const RUNTIME_DIR_IN_SANDBOX: &str = "/var/runtime";
/// Interpreter flags: `-B` writes no `.pyc` files (the code is read-only),
/// `-s` skips the per-user site directory (there is no home).
pub const PYTHON_FLAGS: &[&str] = &["-B", "-s"];

/// The bootstrap could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct InstallError {
    /// What was being done, e.g. `writing`.
    pub op: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Writes `bootstrap.py` into `dir` (created if missing), atomically, and
/// only when its content differs. Returns the file's path.
pub fn install(dir: &Path) -> Result<PathBuf, InstallError> {
    let target = dir.join(BOOTSTRAP_FILE_NAME);
    if std::fs::read(&target).is_ok_and(|existing| existing == BOOTSTRAP_PY.as_bytes()) {
        return Ok(target);
    }
    let err = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| InstallError { op, path, source }
    };
    std::fs::create_dir_all(dir).map_err(err("creating directory", dir))?;
    let temp = dir.join(format!(".{BOOTSTRAP_FILE_NAME}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&temp).map_err(err("creating", &temp))?;
    file.write_all(BOOTSTRAP_PY.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(err("writing", &temp))?;
    drop(file);
    std::fs::rename(&temp, &target).map_err(err("renaming into place", &target))?;
    Ok(target)
}

/// The argv that runs the bootstrap with `python_path` inside a sandbox.
pub fn python_argv(python_path: &Path) -> Vec<String> {
    let mut argv = Vec::with_capacity(PYTHON_FLAGS.len() + 2);
    argv.push(python_path.display().to_string());
    argv.extend(PYTHON_FLAGS.iter().map(|f| (*f).to_owned()));
    argv.push(format!("{RUNTIME_DIR_IN_SANDBOX}/{BOOTSTRAP_FILE_NAME}"));
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_writes_once_and_replaces_stale_copies() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("runtime");
        let path = install(&runtime).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), BOOTSTRAP_PY);
        std::fs::write(&path, "stale").unwrap();
        install(&runtime).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), BOOTSTRAP_PY);
        assert_eq!(
            std::fs::read_dir(&runtime).unwrap().count(),
            1,
            "no temp files left"
        );
    }

    #[test]
    fn install_reports_the_path_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let err = install(&blocker.join("runtime")).unwrap_err();
        assert!(err.to_string().contains("runtime"), "{err}");
    }

    #[test]
    fn argv_runs_the_mounted_bootstrap() {
        assert_eq!(
            python_argv(Path::new("/usr/bin/python3")),
            ["/usr/bin/python3", "-B", "-s", "/var/runtime/bootstrap.py"]
        );
    }
}
