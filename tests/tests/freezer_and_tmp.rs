//! Idle instances are frozen between invocations; `/tmp` is disk-backed,
//! sized by `--tmp-size` and not charged to the memory limit; the sandbox
//! refuses io_uring.

use std::path::PathBuf;
use std::time::Duration;

use kumo_tests::{fixture, root_or_skip, Kumo, LOG_CLAIMS};

fn create(kumo: &Kumo, name: &str, extra: &[&str]) {
    kumo.create(
        name,
        "python3",
        "lambda_function.handler",
        &fixture("idle_and_tmp"),
        extra,
    );
}

/// The cgroup parent this kumod's agent puts instances under.
fn cgroup_parent(kumo: &Kumo) -> String {
    let config = std::fs::read_to_string(kumo.dir.path().join("kumod.toml")).unwrap();
    config
        .lines()
        .find_map(|l| l.strip_prefix("cgroup_parent = \""))
        .map(|l| l.trim_end_matches('"').to_string())
        .unwrap()
}

fn cgroup_v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The one instance cgroup of `function` in the CPU-accounting hierarchy.
fn instance_cgroup(kumo: &Kumo, function: &str) -> PathBuf {
    let root = if cgroup_v2() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        PathBuf::from("/sys/fs/cgroup/cpuacct")
    };
    let dir = root.join(cgroup_parent(kumo));
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(&format!("-{function}"))
        })
        .map(|e| e.path())
        .collect();
    assert_eq!(found.len(), 1, "one instance of {function}: {found:?}");
    found.into_iter().next().unwrap()
}

/// CPU time the cgroup has used, in nanoseconds.
fn cpu_usage_ns(cgroup: &std::path::Path) -> u64 {
    if cgroup_v2() {
        let stat = std::fs::read_to_string(cgroup.join("cpu.stat")).unwrap();
        stat.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap()
            * 1000
    } else {
        std::fs::read_to_string(cgroup.join("cpuacct.usage"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

#[test]
fn a_background_process_burns_no_cpu_between_invocations_and_resumes_after() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_with("idle_freeze_ms = 100\n");
    create(&kumo, "spinner", &["--timeout", "30"]);
    let spawned = kumo.invoke_ok("spinner", r#"{"action":"spawn"}"#);
    assert!(spawned["pid"].as_u64().unwrap() > 0, "{spawned}");
    let cgroup = instance_cgroup(&kumo, "spinner");
    // Past the idle delay: frozen.
    std::thread::sleep(Duration::from_millis(600));
    let before = cpu_usage_ns(&cgroup);
    std::thread::sleep(Duration::from_secs(2));
    let idle_ns = cpu_usage_ns(&cgroup) - before;
    assert!(
        idle_ns < 20_000_000,
        "the idle instance used {} ms of CPU in 2 s",
        idle_ns / 1_000_000
    );
    // The next invocation thaws it: the child runs again (and uses CPU).
    let before = cpu_usage_ns(&cgroup);
    let progress = kumo.invoke_ok("spinner", r#"{"action":"spin_progress","seconds":0.5}"#);
    let busy_ns = cpu_usage_ns(&cgroup) - before;
    assert!(
        progress["after"].as_u64().unwrap() > progress["before"].as_u64().unwrap(),
        "the background child resumes: {progress}"
    );
    assert!(
        busy_ns > 50_000_000,
        "the thawed child spins: {} ms of CPU in 0.5 s",
        busy_ns / 1_000_000
    );
}

#[test]
fn a_frozen_instance_is_reclaimed_cleanly() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_with("idle_freeze_ms = 50\nidle_timeout_seconds = 2\n");
    create(&kumo, "reclaimed", &[]);
    kumo.invoke_ok("reclaimed", r#"{"action":"spawn"}"#);
    let cgroup = instance_cgroup(&kumo, "reclaimed");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while cgroup.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired frozen instance's cgroup {} is still there",
            cgroup.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    kumo.invoke_ok("reclaimed", "{}");
}

#[test]
fn a_128_mb_function_writes_500_mb_to_tmp_and_gets_enospc_past_its_size() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    create(
        &kumo,
        "scratch",
        &["--memory", "128", "--tmp-size", "600", "--timeout", "120"],
    );
    let wrote = kumo.invoke_ok("scratch", r#"{"action":"write_tmp","mb":500}"#);
    assert_eq!(wrote["errno"], 0, "{wrote}");
    assert_eq!(wrote["written_mb"], 500, "{wrote}");
    let past = kumo.invoke_ok("scratch", r#"{"action":"write_tmp","mb":700}"#);
    assert_eq!(past["errno"], 28, "ENOSPC past --tmp-size 600: {past}");
    let written = past["written_mb"].as_u64().unwrap();
    // At least the advertised 600 MB fit (ext4's metadata comes on top).
    assert!((600..660).contains(&written), "{past}");
    // /dev/shm is not a separate, memory-backed filesystem.
    assert_eq!(
        kumo.invoke_ok("scratch", r#"{"action":"shm"}"#)["exists"],
        true
    );
    // The memory limit still holds.
    let hog = kumo.invoke("scratch", r#"{"action":"hog","mb":400}"#);
    assert_eq!(hog.code, 1, "{hog:?}");
    assert!(
        kumo.logs("scratch")
            .contains("\tStatus: error\tError Type: Runtime.OutOfMemory"),
        "{}",
        kumo.logs("scratch")
    );
    kumo.invoke_ok("scratch", "{}");
}

#[test]
fn io_uring_setup_is_refused_with_eperm() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    create(&kumo, "uring", &[]);
    let uring = kumo.invoke_ok("uring", r#"{"action":"io_uring"}"#);
    assert_eq!(uring["rc"], -1, "{uring}");
    assert_eq!(uring["errno"], 1, "EPERM: {uring}");
}

/// The filesystem type mounted on `/tmp` in `mountinfo` text.
fn tmp_filesystem(mountinfo: &str) -> String {
    mountinfo
        .lines()
        .find_map(|line| {
            let (mount, rest) = line.split_once(" - ")?;
            (mount.split(' ').nth(4)? == "/tmp")
                .then(|| rest.split(' ').next().unwrap().to_string())
        })
        .unwrap_or_default()
}

#[test]
fn a_tmp_disk_that_cannot_be_made_falls_back_to_a_tmpfs_with_a_warning_naming_the_path() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(LOG_CLAIMS, "prewarm_python_instances = 1\n");
    // Break the template of one size for real: a directory where mkfs's
    // image would go.
    let templates = kumo.data_dir().join("agent/sandboxes/.tmp-templates");
    let blocker = templates.join("ext4-700m-v3.partial");
    std::fs::create_dir_all(&blocker).unwrap();
    kumo.wait_for_blank();
    // One cold start claims the blank, the other starts the classic way
    // (a start-up variable makes it ineligible).
    create(&kumo, "claimed", &["--tmp-size", "700"]);
    create(
        &kumo,
        "classic",
        &["--tmp-size", "700", "--env", "LANG=C.UTF-8"],
    );
    let claimed = kumo.invoke_ok("claimed", r#"{"action":"mountinfo"}"#);
    let classic = kumo.invoke_ok("classic", r#"{"action":"mountinfo"}"#);
    for (name, seen) in [("claimed", &claimed), ("classic", &classic)] {
        let mountinfo = seen["mountinfo"].as_str().unwrap();
        assert_eq!(tmp_filesystem(mountinfo), "tmpfs", "{name}:\n{mountinfo}");
        // And it is usable, of the function's size.
        let wrote = kumo.invoke_ok(name, r#"{"action":"write_tmp","mb":20}"#);
        assert_eq!(wrote["errno"], 0, "{name}: {wrote}");
    }
    let log = kumo.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("no disk-backed /tmp") && l.contains(&blocker.display().to_string()))
        .collect();
    assert!(
        warnings.len() >= 2,
        "each fallback is logged naming the path:\n{log}"
    );
    assert_eq!(kumo.claims(), 1, "{log}");
    // Other sizes still get their disk.
    create(&kumo, "sized", &[]);
    let sized = kumo.invoke_ok("sized", r#"{"action":"mountinfo"}"#);
    assert_eq!(tmp_filesystem(sized["mountinfo"].as_str().unwrap()), "ext4");
}
