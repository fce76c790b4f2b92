//! Escape attempts from inside a real Python function, through the real
//! platform (`fixtures/escape`): the host's processes and `/proc`, mounts,
//! tracing, kernel modules, namespaces, keyrings, BPF, reboot, the network
//! in mode `none`, writes outside `/tmp`, other instances' `/tmp`, the
//! agent's state directory, and the capability, `no_new_privs` and seccomp
//! state. Every attempt must be blocked; failures name the attempt and what
//! the function saw.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kumo_tests::{fixture, port_of, root_or_skip, Kumo, Run, LOG_CLAIMS};

fn create(kumo: &Kumo, name: &str) {
    kumo.create(
        name,
        "python3",
        "lambda_function.handler",
        &fixture("escape"),
        &["--timeout", "30"],
    );
}

/// The host's addresses (`hostname -I`), IPv4 and IPv6.
fn host_addresses() -> Vec<String> {
    std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn connects_from_host(host: &str, port: u16) -> bool {
    let address = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    address
        .parse()
        .ok()
        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
        .is_some()
}

/// Pids of host processes whose command line mentions `needle` (kumod is
/// started with `--config <its temp dir>/kumod.toml`).
fn pids_mentioning(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

/// What the sandbox must not see of the host: the harness's temp dir
/// (config, logs), kumod's state, the agent's data dir (its file store
/// with the package cache and runtime, sandbox scratch roots), and the
/// cgroup tree.
fn host_paths(kumo: &Kumo) -> Vec<PathBuf> {
    let dir = kumo.dir.path();
    let agent = dir.join("data").join("agent");
    vec![
        dir.to_path_buf(),
        dir.join("kumod.toml"),
        dir.join("kumod.log"),
        dir.join("data"),
        dir.join("data").join("state"),
        agent.clone(),
        agent.join("files"),
        agent.join("files").join("packages"),
        agent.join("sandboxes"),
        agent.join("files").join("runtime"),
        PathBuf::from("/sys/fs/cgroup"),
        PathBuf::from("/var/lib/kumo"),
        PathBuf::from("/var/lib/kumo-agent"),
    ]
}

/// Attempts the function must always report (a handler that stopped early
/// must not pass by omission).
const REQUIRED: &[&str] = &[
    "read_host_proc1_environ",
    "proc_is_private",
    "proc1_root",
    "mount_tmpfs",
    "umount2",
    "chroot",
    "ptrace_attach_pid1",
    "ptrace_attach_parent",
    "ptrace_attach_own_child",
    "process_vm_readv_self",
    "process_vm_readv_pid1",
    "init_module",
    "finit_module",
    "delete_module",
    "unshare_newuser",
    "unshare_newns",
    "clone_newuser",
    "setns",
    "keyctl",
    "bpf",
    "reboot",
    "perf_event_open",
    "userfaultfd",
    "write /",
    "write /var/task",
    "write /etc",
    "write /usr",
    "visible_sockets",
    "dev_mem",
    "capability_sets",
];

#[test]
fn every_escape_attempt_from_a_function_is_blocked() {
    if root_or_skip() {
        escape_attempts(&Kumo::start());
    }
}

/// The same from an instance that claimed a pre-started sandbox.
#[test]
fn every_escape_attempt_from_a_pre_started_sandbox_is_blocked() {
    if root_or_skip() {
        let kumo = start_prewarmed();
        escape_attempts(&kumo);
        assert_claimed(&kumo);
    }
}

/// A kumod whose agent pre-starts python3 sandboxes and logs each claim.
fn start_prewarmed() -> Kumo {
    let kumo = Kumo::start_configured(LOG_CLAIMS, "prewarm_python_instances = 2\n");
    kumo.wait_for_blanks(2);
    kumo
}

/// The cold starts really claimed pre-started sandboxes.
fn assert_claimed(kumo: &Kumo) {
    assert!(
        kumo.claims() > 0,
        "no cold start used a pre-started sandbox\n{}",
        kumo.log()
    );
}

fn escape_attempts(kumo: &Kumo) {
    create(kumo, "escape");

    // Something listening on every host address, besides kumod's own ports,
    // so that "cannot connect" means the network is cut, not that nothing
    // listens there.
    let listener = TcpListener::bind("[::]:0")
        .or_else(|_| TcpListener::bind("0.0.0.0:0"))
        .expect("a wildcard listener");
    let probe_port = listener.local_addr().unwrap().port();
    let grpc_port = port_of(&kumo.endpoint);
    let http_port = port_of(&kumo.http_address);
    let mut targets = Vec::new();
    for port in [grpc_port, http_port, probe_port] {
        assert!(connects_from_host("127.0.0.1", port), "port {port} is dead");
        targets.push(serde_json::json!(["127.0.0.1", port]));
    }
    for address in host_addresses() {
        for port in [grpc_port, http_port, probe_port] {
            // kumod listens on loopback only; try its ports anyway.
            if port == probe_port {
                assert!(
                    connects_from_host(&address, port),
                    "the probe listener is not reachable on {address} from the host"
                );
            }
            targets.push(serde_json::json!([address, port]));
        }
    }

    let mut host_pids = vec![std::process::id()];
    host_pids.extend(pids_mentioning(&kumo.dir.path().display().to_string()));
    let host_environ: String = std::fs::read("/proc/1/environ")
        .unwrap_or_default()
        .into_iter()
        .map(char::from)
        .collect();
    let paths: Vec<String> = host_paths(kumo)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    for path in paths.iter().filter(|p| !p.starts_with("/var/lib/")) {
        // The agent mounts its file store once attached to kumod.
        kumo_tests::wait_until(
            &format!("{path} on the host"),
            Duration::from_secs(20),
            || Path::new(path).exists(),
        );
    }
    let event = serde_json::json!({
        "action": "escape",
        "host_pids": host_pids,
        "host_proc1_environ": host_environ,
        "targets": targets,
        "host_paths": paths,
    });
    let out = kumo.invoke_ok("escape", &event.to_string());
    let attempts = out["attempts"]
        .as_object()
        .unwrap_or_else(|| panic!("{out}"));
    for (name, outcome) in attempts {
        eprintln!(
            "{name}: blocked={} {}",
            outcome["blocked"], outcome["detail"]
        );
    }

    let connects = targets
        .iter()
        .map(|t| format!("connect {}:{}", t[0].as_str().unwrap(), t[1]));
    let host_path_checks = paths.iter().map(|p| format!("host path {p}"));
    let missing: Vec<String> = REQUIRED
        .iter()
        .map(|name| name.to_string())
        .chain(connects)
        .chain(host_path_checks)
        .filter(|name| !attempts.contains_key(name))
        .collect();
    assert!(
        missing.is_empty(),
        "attempts not reported: {missing:?}\n{out}"
    );

    let escaped: Vec<String> = attempts
        .iter()
        .filter(|(_, o)| o["blocked"] != true)
        .map(|(name, o)| format!("{name}: {}", o["detail"].as_str().unwrap_or("?")))
        .collect();
    assert!(
        escaped.is_empty(),
        "escape attempts that were NOT blocked:\n  {}",
        escaped.join("\n  ")
    );
    assert_eq!(out["tmp_writable"], true, "{out}");

    drop(listener);
}

fn parallel_invocations(kumo: &Kumo, name: &str, payload: &str, n: usize) -> Vec<Run> {
    let children: Vec<_> = (0..n)
        .map(|_| kumo.spawn_cli(&["invoke", name, "--payload", payload]))
        .collect();
    children
        .into_iter()
        .map(|c| {
            let output = c.wait_with_output().expect("kumo invoke");
            Run {
                code: output.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
        })
        .collect()
}

#[test]
fn instances_do_not_see_each_others_tmp() {
    if root_or_skip() {
        tmp_isolation(&Kumo::start());
    }
}

#[test]
fn pre_started_instances_do_not_see_each_others_tmp() {
    if root_or_skip() {
        let kumo = start_prewarmed();
        tmp_isolation(&kumo);
        assert_claimed(&kumo);
    }
}

fn tmp_isolation(kumo: &Kumo) {
    create(kumo, "tmp-a");
    create(kumo, "tmp-b");
    // Attach the agent and warm one instance of each function.
    kumo.invoke_ok("tmp-a", "{}");
    kumo.invoke_ok("tmp-b", "{}");

    // Two overlapping calls of the same function need two instances; each
    // writes a marker to /tmp, waits, and lists the markers it can see.
    let runs = parallel_invocations(kumo, "tmp-a", r#"{"action":"mark_tmp","seconds":3}"#, 2);
    let results: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            assert_eq!(r.code, 0, "{r:?}");
            r.json()
        })
        .collect();
    assert_ne!(
        results[0]["token"], results[1]["token"],
        "the two calls must have run in two instances: {results:?}"
    );
    for result in &results {
        let own = format!("marker-{}", result["token"].as_str().unwrap());
        assert_eq!(
            result["markers"],
            serde_json::json!([own]),
            "an instance sees another instance's /tmp: {results:?}"
        );
    }

    // A different function's instance sees neither marker, while both
    // instances of tmp-a are still alive (warm).
    let other = kumo.invoke_ok("tmp-b", r#"{"action":"list_tmp"}"#);
    assert_eq!(
        other["markers"],
        serde_json::json!([]),
        "another function sees tmp-a's /tmp: {other}"
    );
    let other = kumo.invoke_ok("tmp-b", r#"{"action":"mark_tmp","seconds":0}"#);
    let own = format!("marker-{}", other["token"].as_str().unwrap());
    assert_eq!(other["markers"], serde_json::json!([own]), "{other}");
}
