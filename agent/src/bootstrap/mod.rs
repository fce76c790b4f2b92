//! Kumo's Python bootstrap: a stdlib-only Lambda runtime client that the
//! `python3` runtime runs as `<python> -B -s -S /var/runtime/bootstrap.py`.
//!
//! `bootstrap.py` is a three-line entry point; the client itself is the
//! module `kumo_runtime.py`, so that its compiled form can be cached in
//! `__pycache__` by [`precompile`] (a script is compiled on every start,
//! which costs milliseconds of every cold start). The client sets
//! `sys.path` (the package, layer paths, the runtime directory, the standard
//! library; the host's site-packages only when [`HOST_SITE_PACKAGES_ENV`] is
//! `1`), imports the `_HANDLER` module from `LAMBDA_TASK_ROOT`, reports
//! loader failures to `/runtime/init/error`, then loops over
//! `/invocation/next`, speaking HTTP/1.1 over a raw socket so that it starts
//! about as fast as a bare interpreter. `kumo_logging.py` gives the root
//! logger Lambda's handler when the function first imports `logging`
//! (docs/wire-formats.md §4).
//!
//! The Node.js bootstrap ([`node`]) is installed into the same directory.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub mod node;

/// The entry point's source.
pub const BOOTSTRAP_PY: &str = include_str!("bootstrap.py");
/// The runtime client's source.
pub const KUMO_RUNTIME_PY: &str = include_str!("kumo_runtime.py");
/// The source of Lambda's `logging` set-up (imported with `logging`).
pub const KUMO_LOGGING_PY: &str = include_str!("kumo_logging.py");
/// File name of the entry point inside the runtime directory.
pub const BOOTSTRAP_FILE_NAME: &str = "bootstrap.py";
/// File name of the runtime client module inside the runtime directory.
pub const KUMO_RUNTIME_FILE_NAME: &str = "kumo_runtime.py";
/// File name of the logging set-up module inside the runtime directory.
pub const KUMO_LOGGING_FILE_NAME: &str = "kumo_logging.py";
/// The modules [`install`] writes and [`precompile`] compiles.
const MODULES: [(&str, &str); 2] = [
    (KUMO_RUNTIME_FILE_NAME, KUMO_RUNTIME_PY),
    (KUMO_LOGGING_FILE_NAME, KUMO_LOGGING_PY),
];
/// A function's variable (or the agent's `python_host_site_packages`)
/// that puts the host interpreter's site-packages on `sys.path` when `1`.
pub const HOST_SITE_PACKAGES_ENV: &str = "KUMO_PYTHON_HOST_SITE_PACKAGES";
/// Where the runtime directory is mounted inside a sandbox.
pub const RUNTIME_DIR_IN_SANDBOX: &str = "/var/runtime";
/// Interpreter flags: `-B` writes no `.pyc` files (the code is read-only),
/// `-s` skips the per-user site directory (there is no home), `-S` skips
/// `site`, so no host site-packages (and none of their `.pth` files) reach
/// `sys.path` unless the runtime adds them on request.
pub const PYTHON_FLAGS: &[&str] = &["-B", "-s", "-S"];

/// The bootstrap could not be written or compiled.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct InstallError {
    /// What was being done, e.g. `writing`.
    pub op: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The OS error (or the compiler's complaint).
    #[source]
    pub source: std::io::Error,
}

/// Writes `bootstrap.py`, `kumo_runtime.py`, `kumo_logging.py` and the
/// Node.js client `kumo_runtime.cjs` into `dir` (created if missing),
/// atomically, each only when its content differs (so that a compiled cache
/// stays valid). Returns the Python entry point's path.
pub fn install(dir: &Path) -> Result<PathBuf, InstallError> {
    std::fs::create_dir_all(dir).map_err(|source| InstallError {
        op: "creating directory",
        path: dir.to_path_buf(),
        source,
    })?;
    for (name, source) in MODULES {
        write_if_changed(&dir.join(name), source)?;
    }
    write_if_changed(
        &dir.join(node::KUMO_RUNTIME_CJS_FILE_NAME),
        node::KUMO_RUNTIME_CJS,
    )?;
    let entry = dir.join(BOOTSTRAP_FILE_NAME);
    write_if_changed(&entry, BOOTSTRAP_PY)?;
    Ok(entry)
}

fn write_if_changed(target: &Path, content: &str) -> Result<(), InstallError> {
    if std::fs::read(target).is_ok_and(|existing| existing == content.as_bytes()) {
        return Ok(());
    }
    let err = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| InstallError { op, path, source }
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = target.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&temp).map_err(err("creating", &temp))?;
    file.write_all(content.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(err("writing", &temp))?;
    drop(file);
    std::fs::rename(&temp, target).map_err(err("renaming into place", target))
}

/// Compiles the runtime's modules in `dir` into `dir/__pycache__` with
/// `python_path` (blocking: spawns the interpreter once).
pub fn precompile(dir: &Path, python_path: &Path) -> Result<(), InstallError> {
    let source = dir.join(KUMO_RUNTIME_FILE_NAME);
    let err = |op| {
        let path = source.clone();
        move |source| InstallError { op, path, source }
    };
    let output = std::process::Command::new(python_path)
        .args([
            "-c",
            "import py_compile, sys\nfor path in sys.argv[1:]: py_compile.compile(path, doraise=True)",
        ])
        .args(MODULES.map(|(name, _)| dir.join(name)))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(err("running the interpreter to compile"))?;
    if output.status.success() {
        return Ok(());
    }
    let message = format!(
        "{}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Err(err("compiling")(std::io::Error::other(message)))
}

/// [`precompile`] once per runtime directory and interpreter for the life
/// of this process; failures are logged (the runtime still works, it just
/// starts a few milliseconds slower).
pub fn precompile_once(dir: &Path, python_path: &Path) {
    static DONE: Mutex<Option<HashSet<(PathBuf, PathBuf)>>> = Mutex::new(None);
    let key = (dir.to_path_buf(), python_path.to_path_buf());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    let done = done.get_or_insert_with(HashSet::new);
    if done.contains(&key) {
        return;
    }
    if let Err(e) = precompile(dir, python_path) {
        tracing::warn!(error = %e, "precompiling the python3 runtime client");
    }
    done.insert(key);
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
        for (name, source) in MODULES {
            assert_eq!(std::fs::read_to_string(runtime.join(name)).unwrap(), source);
        }
        assert_eq!(
            std::fs::read_to_string(runtime.join(node::KUMO_RUNTIME_CJS_FILE_NAME)).unwrap(),
            node::KUMO_RUNTIME_CJS
        );
        assert_eq!(
            std::fs::read_dir(&runtime).unwrap().count(),
            MODULES.len() + 2,
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
            [
                "/usr/bin/python3",
                "-B",
                "-s",
                "-S",
                "/var/runtime/bootstrap.py"
            ]
        );
    }

    #[test]
    fn precompile_writes_a_cache_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        install(dir.path()).unwrap();
        precompile(dir.path(), Path::new("/usr/bin/python3")).unwrap();
        let cached = std::fs::read_dir(dir.path().join("__pycache__"))
            .unwrap()
            .count();
        assert_eq!(cached, MODULES.len());
        let err = precompile(dir.path(), Path::new("/nonexistent/python")).unwrap_err();
        assert!(err.to_string().contains("kumo_runtime.py"), "{err}");
    }
}
