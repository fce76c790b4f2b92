//! AWS's official runtime clients, unmodified, in the `provided` runtime:
//! the Python `awslambdaric` (PyPI) and a Rust function built with the
//! `lambda_runtime` crate. They must find everything they need in Kumo's
//! Runtime API.

use std::path::PathBuf;
use std::process::Command;

use kumo_tests::s3::{prepared_path, venv_python};
use kumo_tests::{copy_dir, fixture, root_or_skip, Kumo};

/// `fixtures/ric` plus awslambdaric from the test venv's cache.
fn ric_package() -> tempfile::TempDir {
    venv_python(); // prepares /var/tmp/kumo-test-ric too
    let ric = prepared_path("KUMO_TEST_RIC", "/var/tmp/kumo-test-ric");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("ric"), dir.path());
    copy_dir(&ric, &dir.path().join("vendor"));
    dir
}

#[test]
fn awslambdaric_runs_unmodified() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let package = ric_package();
    kumo.create(
        "ric",
        "provided",
        "app.handler",
        package.path(),
        &["--timeout", "2", "--memory", "256"],
    );
    let out = kumo.invoke_ok_with_client_context(
        "ric",
        r#"{"hello": "ric"}"#,
        r#"{"custom": {"tenant": "t1"}}"#,
    );
    assert_eq!(out["event"]["hello"], "ric");
    assert_eq!(out["client_context"]["tenant"], "t1");
    assert_eq!(out["version"], "$LATEST");
    assert!(out["arn"].as_str().unwrap().ends_with(":function:ric"));
    let (first, second) = (
        out["remaining"][0].as_i64().unwrap(),
        out["remaining"][1].as_i64().unwrap(),
    );
    assert!(
        first <= 2000 && second < first && first - second >= 40,
        "remaining time must decrease: {first} {second}"
    );

    // An exception, formatted by awslambdaric.
    let failed = kumo.cli(&["invoke", "ric", "--payload", r#"{"fail": true}"#]);
    assert_eq!(failed.code, 1, "{failed:?}");
    let error = failed.json();
    assert_eq!(error["errorType"], "RuntimeError");
    assert_eq!(error["errorMessage"], "kaboom");
    assert!(error["stackTrace"].is_array(), "{error}");
    // A timeout, and it keeps serving.
    kumo.assert_times_out_then_serves("ric");

    // An import failure is reported through /init/error.
    kumo.create(
        "ric-broken",
        "provided",
        "missing_module.handler",
        package.path(),
        &[],
    );
    let broken = kumo.cli(&["invoke", "ric-broken"]);
    assert_eq!(broken.code, 1, "{broken:?}");
    assert_eq!(
        broken.json()["errorType"],
        "Runtime.ImportModuleError",
        "{broken:?}"
    );
}

/// Builds `fixtures/rust_lambda` (a `lambda_runtime` function) once; the
/// binary is cached under /var/tmp.
fn rust_bootstrap() -> PathBuf {
    let target = std::env::var("KUMO_TEST_RUST_TARGET")
        .unwrap_or_else(|_| "/var/tmp/kumo-test-rust-lambda".into());
    let manifest = fixture("rust_lambda").join("Cargo.toml");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("running cargo");
    assert!(
        status.success(),
        "building the lambda_runtime fixture failed"
    );
    PathBuf::from(target).join("release/bootstrap")
}

#[test]
fn a_rust_lambda_runtime_function_runs_unmodified() {
    if !root_or_skip() {
        return;
    }
    let binary = rust_bootstrap();
    let package = tempfile::tempdir().unwrap();
    std::fs::copy(&binary, package.path().join("bootstrap")).unwrap();
    let kumo = Kumo::start();
    kumo.create("rusty", "provided", "", package.path(), &[]);
    let out = kumo.invoke_ok("rusty", r#"{"name": "kumo"}"#);
    assert_eq!(out["greeting"], "hello kumo");
    assert!(out["request_id"].as_str().unwrap().len() == 36, "{out}");
    let failed = kumo.cli(&["invoke", "rusty", "--payload", r#"{"name": ""}"#]);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(failed.stdout.contains("a name is required"), "{failed:?}");
}
