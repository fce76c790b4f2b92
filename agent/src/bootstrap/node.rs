//! Kumo's Node.js bootstrap: a runtime client without npm dependencies
//! (`kumo_runtime.cjs`) that the `nodejsNN.x` runtimes run as
//! `<node> [heap flags] /var/runtime/kumo_runtime.cjs`
//! (docs/wire-formats.md §14). It is written next to the Python bootstrap
//! by [`super::install`].

use std::path::Path;

use kumo_proto::model::NodeMajor;

use super::RUNTIME_DIR_IN_SANDBOX;

/// The runtime client's source.
pub const KUMO_RUNTIME_CJS: &str = include_str!("kumo_runtime.cjs");
/// File name of the runtime client inside the runtime directory.
pub const KUMO_RUNTIME_CJS_FILE_NAME: &str = "kumo_runtime.cjs";

/// V8 heap flags for a function of `memory_mb`, sized as AWS's Node
/// runtimes size them: a tenth of the memory for the young generation (two
/// semi-spaces), the rest for the old one. Without them V8 sizes its heap
/// from the host's memory, not the cgroup's limit, and a small function
/// is killed by the kernel before V8 collects its garbage.
pub fn heap_flags(memory_mb: u32) -> Vec<String> {
    let young = (memory_mb / 10).max(2);
    vec![
        format!("--max-semi-space-size={}", (young / 2).max(1)),
        format!("--max-old-space-size={}", memory_mb.saturating_sub(young)),
    ]
}

/// The argv that runs the bootstrap with `node_path` inside a sandbox,
/// its heap sized for a function of `memory_mb`.
pub fn node_argv(node_path: &Path, memory_mb: u32) -> Vec<String> {
    let mut argv = vec![node_path.display().to_string()];
    argv.extend(heap_flags(memory_mb));
    argv.push(format!(
        "{RUNTIME_DIR_IN_SANDBOX}/{KUMO_RUNTIME_CJS_FILE_NAME}"
    ));
    argv
}

/// `NODE_PATH` of a function asking for `major` (docs/wire-formats.md §14):
/// layers' `nodejs/nodeNN/node_modules` and `nodejs/node_modules`, the
/// runtime directory, then the package.
pub fn node_path_variable(major: NodeMajor) -> String {
    format!(
        "/opt/nodejs/node{}/node_modules:/opt/nodejs/node_modules:{RUNTIME_DIR_IN_SANDBOX}/node_modules:{RUNTIME_DIR_IN_SANDBOX}:/var/task",
        major.number()
    )
}

/// `AWS_EXECUTION_ENV` of a function asking for `major`: the runtime it
/// asked for (code that checks it gates on the name; `process.version`
/// tells the binary actually running).
pub fn execution_env(major: NodeMajor) -> String {
    format!("AWS_Lambda_nodejs{}.x", major.number())
}

/// The major version of the `node` at `node_path` (`v20.19.2` → `20`), or
/// "" when it cannot be run (logged).
pub fn node_major(node_path: &Path) -> String {
    let output = std::process::Command::new(node_path)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output();
    match output {
        Ok(out) if out.status.success() => major_of(&String::from_utf8_lossy(&out.stdout)),
        Ok(out) => {
            tracing::warn!(node = %node_path.display(), status = %out.status, "asking node its version failed");
            String::new()
        }
        Err(err) => {
            tracing::debug!(node = %node_path.display(), %err, "node is not runnable; nodejsNN.x functions will fail to start");
            String::new()
        }
    }
}

/// `v20.19.2` → `20`.
fn major_of(version: &str) -> String {
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .filter(|major| !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_runs_the_mounted_client_with_a_heap_sized_to_the_function() {
        assert_eq!(
            node_argv(Path::new("/usr/bin/node"), 128),
            [
                "/usr/bin/node",
                "--max-semi-space-size=6",
                "--max-old-space-size=116",
                "/var/runtime/kumo_runtime.cjs"
            ]
        );
    }

    #[test]
    fn versions_reduce_to_their_major() {
        assert_eq!(major_of("v20.19.2\n"), "20");
        assert_eq!(major_of("v22.1.0"), "22");
        assert_eq!(major_of("garbage"), "");
        assert_eq!(major_of(""), "");
    }

    #[test]
    fn node_path_and_execution_env_name_the_requested_major() {
        assert!(node_path_variable(NodeMajor::V18).starts_with("/opt/nodejs/node18/node_modules:"));
        assert!(node_path_variable(NodeMajor::V20).ends_with(":/var/runtime:/var/task"));
        assert_eq!(execution_env(NodeMajor::V22), "AWS_Lambda_nodejs22.x");
    }

    #[test]
    fn the_client_is_valid_javascript() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(KUMO_RUNTIME_CJS_FILE_NAME);
        std::fs::write(&file, KUMO_RUNTIME_CJS).unwrap();
        let Ok(out) = std::process::Command::new("node")
            .arg("--check")
            .arg(&file)
            .output()
        else {
            eprintln!("skipping: no node binary");
            return;
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
