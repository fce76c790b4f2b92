//! The multi-server guide's TLS set-up, as documented: certificates made by
//! `deploy/make-certs.sh`, kumod requiring client certificates, its agent
//! joining over https, and the CLI deploying and invoking with its own
//! certificate — while a CLI without one is refused.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kumo_tests::{
    bin_dir, fixture, free_ports, root_or_skip, spawn_all_in_one, wait_until, DIVISION_HANDLER,
};

fn make_certs(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/make-certs.sh");
    let out = Command::new(script)
        .arg(dir)
        .args(["localhost", "operator", "node-1"])
        .output()
        .expect("running make-certs.sh");
    assert!(out.status.success(), "make-certs.sh: {out:?}");
}

fn kumo(bins: &Path, certs: &Path, endpoint: &str, token: &Path, with_cert: bool) -> Command {
    let mut command = Command::new(bins.join("kumo"));
    command
        .args(["--endpoint", endpoint])
        .arg("--tls-ca")
        .arg(certs.join("ca.pem"))
        .env_remove("KUMO_TOKEN")
        .env("KUMO_TOKEN_FILE", token);
    if with_cert {
        command
            .arg("--tls-cert")
            .arg(certs.join("operator.pem"))
            .arg("--tls-key")
            .arg(certs.join("operator.key"));
    }
    command
}

#[test]
fn documented_tls_setup_serves_cli_and_agent() {
    if !root_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("tls");
    make_certs(&certs);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(certs.join("node-1.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "keys are private");

    let (grpc, http) = free_ports();
    let data = dir.path().join("data");
    let c = |name: &str| certs.join(name).display().to_string();
    let config = dir.path().join("kumod.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{data}\"\nlisten = \"127.0.0.1:{grpc}\"\nhttp_listen = \"127.0.0.1:{http}\"\n\
             [tls]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\nclient_ca_file = \"{ca}\"\n\
             [agent]\nserver = \"https://localhost:{grpc}\"\ntls_ca_file = \"{ca}\"\n\
             tls_cert_file = \"{node}\"\ntls_key_file = \"{node_key}\"\n\
             cgroup_parent = \"kumo-e2e-tls-{pid}\"\nallocatable_memory_mb = 4096\n",
            data = data.display(),
            cert = c("kumod.pem"),
            key = c("kumod.key"),
            ca = c("ca.pem"),
            node = c("node-1.pem"),
            node_key = c("node-1.key"),
            pid = std::process::id(),
        ),
    )
    .unwrap();
    let bins = bin_dir();
    let _kumod = spawn_all_in_one(&config, &dir.path().join("kumod.log"));
    let endpoint = format!("https://localhost:{grpc}");
    let token = data.join("control.token");
    let kumod_log = || std::fs::read_to_string(dir.path().join("kumod.log")).unwrap_or_default();
    wait_until(
        "kumod over TLS with its agent",
        Duration::from_secs(30),
        || {
            kumo(&bins, &certs, &endpoint, &token, true)
                .args(["agents", "--output", "json"])
                .output()
                .is_ok_and(|o| {
                    o.status.success() && String::from_utf8_lossy(&o.stdout).contains("ready")
                })
        },
    );

    let create = kumo(&bins, &certs, &endpoint, &token, true)
        .args(["function", "create", "divide", "--runtime", "python3"])
        .args(["--handler", DIVISION_HANDLER, "--code"])
        .arg(fixture("division"))
        .output()
        .unwrap();
    assert!(create.status.success(), "{create:?}\n{}", kumod_log());
    let invoke = kumo(&bins, &certs, &endpoint, &token, true)
        .args(["invoke", "divide", "--payload", r#"{"x": 6, "y": 3}"#])
        .output()
        .unwrap();
    assert!(invoke.status.success(), "{invoke:?}\n{}", kumod_log());
    let result: serde_json::Value = serde_json::from_slice(&invoke.stdout).unwrap();
    assert_eq!(result["result"], 2.0, "{invoke:?}");

    // Without a client certificate the handshake is refused, token or not.
    let refused = kumo(&bins, &certs, &endpoint, &token, false)
        .args(["function", "list"])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "{refused:?}");
}
