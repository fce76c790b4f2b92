//! What a sandbox learns about the host from its mount table: the
//! `/proc/self/mountinfo`, `/proc/self/mounts` and `/proc/1/mountinfo` of an
//! instance — in network modes `none`, `outbound` (with a generated
//! `resolv.conf`) and `host`, started fresh and from a pre-started sandbox —
//! name no agent data directory, no kumod/agent binary path and no test
//! temp directory; the package is bound from the agent's file store
//! (`/packages/<digest>`), and PID 1's command line names no host path.

use std::path::Path;

use kumo_tests::network::TestNetwork;
use kumo_tests::{root_or_skip, Kumo, LOG_CLAIMS};

/// Reports the instance's mount tables and PID 1's command line.
const PROBE: &str = r#"
import os

def read(path):
    try:
        return open(path).read()
    except OSError as e:
        return "unreadable: %s" % e

def handler(event, context):
    return {
        "mountinfo": read("/proc/self/mountinfo"),
        "mounts": read("/proc/self/mounts"),
        "pid1_mountinfo": read("/proc/1/mountinfo"),
        "pid1_cmdline": read("/proc/1/cmdline").replace("\0", " "),
        "resolv_conf": read("/etc/resolv.conf"),
    }
"#;

fn create_probe(kumo: &Kumo, name: &str, extra: &[&str]) -> String {
    kumo.create_python(name, PROBE, extra)
}

/// The mount point (5th field) and root (4th field) of each mountinfo line.
fn roots_by_mount_point(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            Some((fields.get(4)?.to_string(), fields.get(3)?.to_string()))
        })
        .collect()
}

/// Invokes `name` and checks that nothing it sees names `forbidden` paths,
/// and that its package comes from the file store.
fn assert_private(kumo: &Kumo, name: &str, digest: &str, forbidden: &[String]) {
    let seen = kumo.invoke_ok(name, "{}");
    for key in ["mountinfo", "mounts", "pid1_mountinfo", "pid1_cmdline"] {
        let text = seen[key].as_str().unwrap();
        assert!(
            !text.is_empty() && !text.starts_with("unreadable"),
            "{name}: {key}: {text}"
        );
        for path in forbidden {
            assert!(
                !text.contains(path.as_str()),
                "{name}: {key} reveals {path}:\n{text}"
            );
        }
    }
    let mountinfo = seen["mountinfo"].as_str().unwrap();
    let roots = roots_by_mount_point(mountinfo);
    let task: Vec<&String> = roots
        .iter()
        .filter(|(point, _)| point == "/var/task")
        .map(|(_, root)| root)
        .collect();
    assert_eq!(
        task,
        [&format!("/packages/{digest}")],
        "{name}: /var/task is not bound from the file store:\n{mountinfo}"
    );
    let runtime: Vec<&String> = roots
        .iter()
        .filter(|(point, _)| point == "/var/runtime")
        .map(|(_, root)| root)
        .collect();
    assert_eq!(runtime, [&"/runtime".to_string()], "{name}:\n{mountinfo}");
    // Every other bind is a standard system path or Kumo's own filesystem.
    for (point, root) in &roots {
        let standard = ["/usr", "/lib", "/bin", "/sbin", "/etc/", "/dev/"]
            .iter()
            .any(|p| point.starts_with(p.trim_end_matches('/')));
        assert!(
            standard
                || root == "/"
                || root.starts_with("/packages/")
                || root == "/runtime"
                || root.starts_with("/network/"),
            "{name}: {point} is bound from {root}:\n{mountinfo}"
        );
    }
}

/// The paths no sandbox may see: the test's temp dirs, kumod's (and the
/// embedded agent's) data directory, the directory of the binaries.
fn forbidden(kumo: &Kumo) -> Vec<String> {
    let mut paths = vec![
        kumo.dir.path().display().to_string(),
        kumo.data_dir().display().to_string(),
        kumo.bins().display().to_string(),
        std::env::temp_dir().join(".tmp").display().to_string(),
        "/var/lib/kumo".to_string(),
    ];
    if let Some(parent) = kumo.bins().parent().filter(|p| *p != Path::new("/")) {
        paths.push(parent.display().to_string());
    }
    paths
}

#[test]
fn mount_tables_reveal_no_host_paths_in_any_network_mode() {
    if !root_or_skip() {
        return;
    }
    let network = TestNetwork::new(219);
    let kumo = Kumo::start_with(&network.agent_settings(true));
    let forbidden = forbidden(&kumo);
    for (name, mode) in [
        ("quiet", "none"),
        ("caller", "outbound"),
        ("hosted", "host"),
    ] {
        let digest = create_probe(&kumo, name, &["--network", mode]);
        assert_private(&kumo, name, &digest, &forbidden);
    }
    // The outbound sandbox's resolv.conf is the generated one (bound from
    // the store's network/ directory, checked above).
    let caller = kumo.invoke_ok("caller", "{}");
    assert_eq!(
        caller["resolv_conf"],
        format!("nameserver {}\n", network.gateway)
    );
}

#[test]
fn pre_started_sandboxes_reveal_no_host_paths() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(LOG_CLAIMS, "prewarm_python_instances = 1\n");
    let forbidden = forbidden(&kumo);
    kumo.wait_for_blank();
    let digest = create_probe(&kumo, "claimer", &[]);
    assert_private(&kumo, "claimer", &digest, &forbidden);
    assert_eq!(
        kumo.claims(),
        1,
        "the cold start did not claim a pre-started sandbox:\n{}",
        kumo.log()
    );
}
