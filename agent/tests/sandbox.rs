//! Real sandboxes (namespaces, cgroups, mounts) started through the agent
//! binary's init subcommand. These need root; they skip only when not root
//! and fail instead when KUMO_REQUIRE_ROOT_TESTS=1.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kumo_agent::sandbox::{
    ClaimSpec, NetworkMode, RuntimeExit, Sandbox, SandboxSettings, SandboxSpec, INIT_SUBCOMMAND,
};

mod common;
use common::root_or_skip;

impl Drop for Fixture {
    fn drop(&mut self) {
        kumo_agent::sandbox::remove_cgroup_parent(&self.settings);
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    settings: SandboxSettings,
    task_dir: PathBuf,
    parent: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let task_dir = dir.path().join("task");
    std::fs::create_dir(&task_dir).unwrap();
    std::fs::write(task_dir.join("data.txt"), "payload-data\n").unwrap();
    for p in [dir.path(), task_dir.as_path()] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let parent = format!("kumo-test-sandbox-{}", std::process::id());
    let settings = SandboxSettings {
        init_program: PathBuf::from(env!("CARGO_BIN_EXE_kumo-agent")),
        init_args: vec![INIT_SUBCOMMAND.into()],
        cgroup_parent: parent.clone(),
        state_dir: dir.path().join("sandboxes"),
        outbound: None,
    };
    Fixture {
        _dir: dir,
        settings,
        task_dir,
        parent,
    }
}

fn spec(f: &Fixture, id: &str, script: &str) -> SandboxSpec {
    SandboxSpec {
        instance_id: id.into(),
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("GREETING".into(), "hi".into()),
        ],
        task_dir: f.task_dir.clone(),
        opt_dir: None,
        runtime_dir: None,
        memory_mb: 256,
        tmp_size_mb: 16,
        max_processes: 64,
        network: NetworkMode::None,
        egress_allow: Vec::new(),
        uid: 100_123,
        gid: 100_123,
        hostname: "kumo-sbx".into(),
        deferred: false,
    }
}

/// Reads the output pipe to EOF (the writers close when the sandbox ends).
fn read_all(fd: OwnedFd) -> String {
    let mut file = std::fs::File::from(fd);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 8192];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "output never reached EOF");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("reading sandbox output: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn run(f: &Fixture, spec: SandboxSpec) -> (RuntimeExit, String) {
    let mut sandbox = Sandbox::start(&f.settings, spec)
        .await
        .expect("sandbox starts");
    let output = sandbox.take_output().unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(30), sandbox.wait_exit())
        .await
        .expect("runtime ends");
    sandbox.destroy().await.expect("sandbox cleans up");
    let text = tokio::task::spawn_blocking(move || read_all(output))
        .await
        .unwrap();
    (exit, text)
}

/// Whether /sys/fs/cgroup is the unified (v2) hierarchy rather than v1
/// controller mounts (tests/cgroup2-vm.sh runs these tests on v2).
fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The directory of an instance's cgroup in `controller`'s hierarchy.
fn controller_dir(controller: &str, parent: &str, id: &str) -> PathBuf {
    let root = Path::new("/sys/fs/cgroup");
    let root = if cgroup_v2() {
        root.to_path_buf()
    } else {
        root.join(controller)
    };
    root.join(parent).join(id)
}

fn cgroup_dir(parent: &str, id: &str) -> PathBuf {
    controller_dir("memory", parent, id)
}

#[tokio::test]
async fn isolation_facts() {
    if !root_or_skip("the sandbox tests") {
        return;
    }
    let f = fixture();
    let script = r#"
echo "pid=$$"
echo "ppid_cmd=$(tr '\0' ' ' < /proc/1/cmdline)"
echo "procs=$(ls -d /proc/[0-9]* | wc -l)"
echo "host=$(cat /proc/sys/kernel/hostname)"
echo "uid=$(id -u) gid=$(id -g)"
touch /x 2>/dev/null && echo root_writable=yes || echo root_writable=no
touch /var/task/x 2>/dev/null && echo task_writable=yes || echo task_writable=no
echo ok > /tmp/t && echo tmp_writable=yes
echo "data=$(cat /var/task/data.txt)"
echo "cwd=$(pwd)"
echo "nets=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "env_greeting=$GREETING api=$AWS_LAMBDA_RUNTIME_API"
echo "env_count=$(env | wc -l)"
dd if=/dev/zero of=/tmp/big bs=1M count=32 2>/dev/null; echo "tmp_fill_status=$?"
"#;
    let (exit, out) = run(&f, spec(&f, "iso", script)).await;
    assert_eq!(exit, RuntimeExit::Exited(0), "{out}");
    let has = |needle: &str| assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    // PID 1 is the sandbox's init, the shell is its child; few processes visible.
    has("pid=2");
    has(INIT_SUBCOMMAND);
    let procs: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(procs <= 5, "host processes visible: {procs}\n{out}");
    has("host=kumo-sbx");
    has("uid=100123 gid=100123");
    has("root_writable=no");
    has("task_writable=no");
    has("tmp_writable=yes");
    has("data=payload-data");
    has("cwd=/var/task");
    has("nets=lo \n");
    has("env_greeting=hi api=127.0.0.1:9001");
    // PATH, GREETING, AWS_LAMBDA_RUNTIME_API and the shell's own PWD/SHLVL/_ only.
    let env_count: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("env_count="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(env_count <= 7, "environment leaked: {env_count}\n{out}");
    // /tmp is 16 MB here: a 32 MB write must fail.
    assert!(!out.contains("tmp_fill_status=0"), "{out}");
    assert!(!cgroup_dir(&f.parent, "iso").exists(), "cgroup left behind");
}

#[tokio::test]
async fn exit_codes_propagate_and_bad_programs_are_reported() {
    if !root_or_skip("the sandbox tests") {
        return;
    }
    let f = fixture();
    let (exit, _) = run(&f, spec(&f, "exit3", "exit 3")).await;
    assert_eq!(exit, RuntimeExit::Exited(3));
    let (exit, _) = run(&f, spec(&f, "sig", "kill -9 $$")).await;
    assert_eq!(exit, RuntimeExit::Signaled(9));
    assert_eq!(exit.to_string(), "signal: killed");

    let mut bad = spec(&f, "missing", "");
    bad.argv = vec!["/var/task/bootstrap".into()];
    let err = Sandbox::start(&f.settings, bad)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("exec /var/task/bootstrap"), "{err}");
    assert!(!cgroup_dir(&f.parent, "missing").exists());
}

#[tokio::test]
async fn memory_limit_kills_with_oom() {
    if !root_or_skip("the sandbox tests") {
        return;
    }
    let f = fixture();
    let mut s = spec(&f, "oom", "");
    s.memory_mb = 128;
    s.argv = vec![
        "/usr/bin/python3".into(),
        "-c".into(),
        "b = bytearray(512 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('survived')".into(),
    ];
    let mut sandbox = Sandbox::start(&f.settings, s).await.unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(30), sandbox.wait_exit())
        .await
        .unwrap();
    assert_eq!(exit, RuntimeExit::Signaled(9));
    assert!(sandbox.oom_killed());
    let peak = sandbox.max_memory_used_bytes().unwrap();
    assert!(
        peak > 100 * 1024 * 1024 && peak <= 129 * 1024 * 1024,
        "peak {peak}"
    );
    sandbox.destroy().await.unwrap();
}

#[tokio::test]
async fn fork_bomb_stops_at_the_process_limit_and_kill_ends_it() {
    if !root_or_skip("the sandbox tests") {
        return;
    }
    let f = fixture();
    let script = r#"
i=0; while [ $i -lt 200 ]; do (sleep 60) 2>/dev/null & i=$((i+1)); done
echo "started=$(ls -d /proc/[0-9]* | wc -l)"
sleep 60
"#;
    let mut sandbox = Sandbox::start(&f.settings, spec(&f, "bomb", script))
        .await
        .unwrap();
    let output = sandbox.take_output().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pids =
        std::fs::read_to_string(controller_dir("pids", &f.parent, "bomb").join("pids.current"))
            .unwrap();
    let pids: u32 = pids.trim().parse().unwrap();
    assert!(pids <= 64, "pids.current {pids} exceeds the limit");
    sandbox.kill();
    let exit = tokio::time::timeout(Duration::from_secs(10), sandbox.wait_exit())
        .await
        .unwrap();
    // Either our kill ended it, or the shell gave up when fork failed.
    assert_ne!(exit, RuntimeExit::Exited(0));
    sandbox.destroy().await.unwrap();
    assert!(!controller_dir("pids", &f.parent, "bomb").exists());
    drop(output);
}

#[tokio::test]
async fn network_none_cannot_reach_the_host_but_host_mode_can() {
    if !root_or_skip("the sandbox tests") {
        return;
    }
    let f = fixture();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = format!(
        "import socket\ntry:\n  socket.create_connection(('127.0.0.1', {port}), timeout=2); print('connected')\nexcept OSError as e:\n  print('refused', e)"
    );
    let mut s = spec(&f, "net-none", "");
    s.argv = vec!["/usr/bin/python3".into(), "-c".into(), probe.clone()];
    let (_, out) = run(&f, s).await;
    assert!(out.contains("refused"), "{out}");

    let mut s = spec(&f, "net-host", "");
    s.network = NetworkMode::Host;
    s.argv = vec!["/usr/bin/python3".into(), "-c".into(), probe];
    let (_, out) = run(&f, s).await;
    assert!(out.contains("connected"), "{out}");
}

#[tokio::test]
async fn runtime_api_listener_is_reachable_from_inside() {
    if !root_or_skip("the sandbox tests") {
        return;
    }
    let f = fixture();
    let mut s = spec(&f, "api", "");
    s.argv = vec![
        "/usr/bin/python3".into(),
        "-c".into(),
        "import os, socket\nh, p = os.environ['AWS_LAMBDA_RUNTIME_API'].split(':')\ns = socket.create_connection((h, int(p)), timeout=5)\ns.sendall(b'hello')".into(),
    ];
    let mut sandbox = Sandbox::start(&f.settings, s).await.unwrap();
    let listener = sandbox.take_runtime_api_listener().expect("a listener");
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut buf = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut conn, &mut buf)
        .await
        .unwrap();
    assert_eq!(buf, b"hello");
    assert_eq!(sandbox.wait_exit().await, RuntimeExit::Exited(0));
    sandbox.destroy().await.unwrap();
}

#[tokio::test]
async fn runtime_has_no_capabilities_and_runs_under_seccomp() {
    if !root_or_skip("the sandbox tests") {
        return;
    }
    let f = fixture();
    let script = r#"
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status
unshare -U true 2>/dev/null && echo unshare=allowed || echo unshare=denied
"#;
    let (exit, out) = run(&f, spec(&f, "caps", script)).await;
    assert_eq!(exit, RuntimeExit::Exited(0), "{out}");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let line = format!("{set}:\t0000000000000000");
        assert!(out.contains(&line), "missing {line:?} in:\n{out}");
    }
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(
        out.contains("Seccomp:\t2"),
        "seccomp filter mode expected:\n{out}"
    );
    assert!(out.contains("unshare=denied"), "{out}");
}

/// A blank sandbox: its runtime runs before the package is mounted and
/// reads its assignment from stdin; claiming mounts the package and the
/// layers read-only and a /tmp of the claimed size, and sets the memory
/// limit.
#[tokio::test]
async fn a_blank_sandbox_is_claimed_once() {
    if !root_or_skip("the sandbox tests") {
        return;
    }
    let f = fixture();
    let script = "find /var/task /opt -type f | wc -l; read assignment; echo got:$assignment; \
                  cat /var/task/data.txt /opt/python/layer.txt; df -m /tmp | tail -1; \
                  touch /var/task/x 2>&1 || true; touch /opt/x 2>&1 || true";
    let opt_dir = f.task_dir.with_file_name("layers");
    std::fs::create_dir_all(opt_dir.join("python")).unwrap();
    std::fs::write(opt_dir.join("python/layer.txt"), "layer-data\n").unwrap();
    let mut blank = spec(&f, "claim-1", script);
    blank.deferred = true;
    blank.memory_mb = 128;
    let mut sandbox = Sandbox::start(&f.settings, blank)
        .await
        .expect("blank starts");
    assert!(sandbox.is_blank());
    let mut output = std::fs::File::from(sandbox.take_output().unwrap());
    // The first line is written before the claim: the package is not there.
    let mut before = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !before.ends_with(b"\n") {
        let mut byte = [0u8; 1];
        match output.read(&mut byte) {
            Ok(1) => before.push(byte[0]),
            Ok(_) => panic!("the blank's runtime ended before its claim"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the blank's runtime never ran");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("reading the output: {e}"),
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&before).trim(),
        "0",
        "the package or the layers were visible before the claim"
    );
    sandbox
        .claim(ClaimSpec {
            task_dir: f.task_dir.clone(),
            opt_dir: Some(opt_dir),
            tmp_size_mb: 48,
            blank_memory_mb: 128,
            memory_mb: 384,
            assignment: "hello\n".into(),
            egress_allow: Vec::new(),
        })
        .await
        .expect("claim");
    assert!(!sandbox.is_blank());
    let limit_file = if cgroup_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let limit = std::fs::read_to_string(cgroup_dir(&f.parent, "claim-1").join(limit_file)).unwrap();
    assert_eq!(limit.trim(), (384u64 * 1024 * 1024).to_string());
    // The CPU share follows the memory: 384/1769 of one vCPU's default share.
    let (share_file, share) = if cgroup_v2() {
        ("cpu.weight", "21")
    } else {
        ("cpu.shares", "222")
    };
    let dir = controller_dir("cpu", &f.parent, "claim-1");
    let actual = std::fs::read_to_string(dir.join(share_file)).unwrap();
    assert_eq!(actual.trim(), share, "{share_file}");
    let again = sandbox
        .claim(ClaimSpec {
            task_dir: f.task_dir.clone(),
            opt_dir: None,
            tmp_size_mb: 1,
            blank_memory_mb: 128,
            memory_mb: 128,
            assignment: String::new(),
            egress_allow: Vec::new(),
        })
        .await;
    assert!(again.is_err(), "a sandbox was claimed twice");
    let exit = tokio::time::timeout(Duration::from_secs(30), sandbox.wait_exit())
        .await
        .expect("runtime ends");
    sandbox.destroy().await.expect("sandbox cleans up");
    let text = tokio::task::spawn_blocking(move || read_all(output.into()))
        .await
        .unwrap();
    assert_eq!(exit, RuntimeExit::Exited(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "got:hello", "{text}");
    assert_eq!(lines[1], "payload-data", "{text}");
    assert_eq!(lines[2], "layer-data", "{text}");
    // /tmp is an ext4 disk sized so that at least the claimed 48 MB are
    // free (ext4's own metadata comes on top).
    let free_mb: u64 = lines[3]
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!((48..=56).contains(&free_mb), "/tmp size: {text}");
    assert_eq!(
        text.matches("Read-only file system").count(),
        2,
        "/var/task and /opt are read-only: {text}"
    );
}
