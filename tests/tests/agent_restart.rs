//! An agent restarted after SIGKILL removes what its predecessor left on
//! the host (cgroups, scratch directories, mounts, loop devices) before it
//! takes work, and replaces the predecessor's file store (one store mount
//! and one store loop device remain: its own).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kumo_tests::{fixture, root_or_skip, Kumo};

/// What agent state is on the host now.
#[derive(Debug, PartialEq, Eq)]
struct Leftovers {
    cgroups: Vec<PathBuf>,
    scratch: Vec<PathBuf>,
    mounts: Vec<String>,
    loop_devices: Vec<String>,
    /// Mounts of the agent's file store (`<agent_dir>/files`), not counted
    /// as leftovers.
    file_stores: usize,
    /// Loop devices backing a file store.
    file_store_devices: usize,
}

impl Leftovers {
    fn count(&self) -> usize {
        self.cgroups.len() + self.scratch.len() + self.mounts.len() + self.loop_devices.len()
    }
}

fn leftovers(cgroup_parent: &str, agent_dir: &Path) -> Leftovers {
    let hierarchy = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        PathBuf::from("/sys/fs/cgroup/memory")
    };
    let dirs = |dir: &Path, skip_hidden: bool| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| !(skip_hidden && e.file_name().to_string_lossy().starts_with('.')))
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()) || !skip_hidden)
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    let prefix = agent_dir.to_string_lossy().into_owned();
    let store = format!("{prefix}/files");
    let store_image = format!("{prefix}/files.img (deleted)");
    let (store_mounts, mounts): (Vec<String>, Vec<String>) =
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&prefix))
            .map(str::to_string)
            .partition(|m| *m == store);
    let (store_devices, loop_devices): (Vec<String>, Vec<String>) = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("loop/backing_file")).ok())
        .filter(|file| file.starts_with(&prefix))
        .partition(|file| file.trim_end() == store_image);
    Leftovers {
        cgroups: dirs(&hierarchy.join(cgroup_parent), true),
        scratch: dirs(&agent_dir.join("sandboxes"), true),
        mounts,
        loop_devices,
        file_stores: store_mounts.len(),
        file_store_devices: store_devices.len(),
    }
}

#[test]
fn an_agent_restarted_after_sigkill_leaves_nothing_of_its_predecessor() {
    if !root_or_skip() {
        return;
    }
    let mut kumo = Kumo::start_separate("");
    let port = kumo.grpc_port();
    let cgroup_parent = format!("kumo-e2e-{}-{port}-agent", std::process::id());
    let agent_dir = kumo.dir.path().join("agent");
    for name in ["left1", "left2"] {
        kumo.create(
            name,
            "python3",
            "lambda_function.handler",
            &fixture("idle_and_tmp"),
            &[],
        );
        kumo.invoke_ok(name, r#"{"action":"spawn"}"#);
    }
    let before = leftovers(&cgroup_parent, &agent_dir);
    assert!(
        before.cgroups.len() >= 2 && before.scratch.len() >= 2,
        "two warm instances: {before:?}"
    );
    kumo.kill9_agent();
    // SIGKILL cleans nothing up: the instances' cgroups are still there.
    let killed = leftovers(&cgroup_parent, &agent_dir);
    assert!(killed.cgroups.len() >= 2, "{killed:?}");
    assert_eq!(
        (killed.file_stores, killed.file_store_devices),
        (1, 1),
        "{killed:?}"
    );
    kumo.start_agent();
    // The sweep runs before the agent attaches; wait for the attach.
    let deadline = Instant::now() + Duration::from_secs(20);
    while kumo.log().matches("agent attached").count() < 2 {
        assert!(Instant::now() < deadline, "{}", kumo.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = leftovers(&cgroup_parent, &agent_dir);
    assert_eq!(
        after.count(),
        0,
        "after the restart: {after:?} (before: {killed:?})"
    );
    assert_eq!(
        (after.file_stores, after.file_store_devices),
        (1, 1),
        "the predecessor's file store must be replaced, not stacked: {after:?}"
    );
    // And it works.
    assert_eq!(kumo.invoke_ok("left1", "{}")["ok"], true);
}
