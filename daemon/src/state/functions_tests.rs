//! Functions over the in-memory store and a real blob directory.

use std::io::Write;

use super::*;
use crate::state::store::MemoryStore;

fn zip(body: &str) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    zip.start_file(
        "lambda_function.py",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(body.as_bytes()).unwrap();
    zip.finish().unwrap();
    out.into_inner()
}

/// Functions over an in-memory store and blobs in `dir`, in
/// eu-west-1, account 123456789012 (for this crate's unit tests).
pub(crate) fn functions(dir: &std::path::Path) -> Functions {
    Functions::new(
        Arc::new(MemoryStore::new()),
        PackageStore::open(dir.to_path_buf()).unwrap(),
        "eu-west-1".into(),
        "123456789012".into(),
        ConcurrencyLimiter::new(10),
        S3Profiles::default(),
    )
    .unwrap()
}

fn config() -> FunctionConfig {
    FunctionConfig {
        name: "f".into(),
        runtime: "python3".into(),
        handler: "lambda_function.handler".into(),
        ..Default::default()
    }
}

#[test]
fn revisions_arns_and_partial_updates() {
    let dir = tempfile::tempdir().unwrap();
    let f = functions(dir.path());
    let created = f.create(config(), &zip("a")).unwrap();
    assert_eq!(created.revision, 1);
    assert_eq!(
        created.function_arn,
        "arn:aws:lambda:eu-west-1:123456789012:function:f"
    );
    let updated = f
        .update_configuration(UpdateFunctionConfigurationRequest {
            name: "f".into(),
            timeout_seconds: Some(30),
            ..Default::default()
        })
        .unwrap();
    let c = updated.config.unwrap();
    assert_eq!(
        (updated.revision, c.timeout_seconds, c.memory_mb),
        (2, Some(30), Some(128))
    );
    let err = f
        .update_configuration(UpdateFunctionConfigurationRequest {
            name: "f".into(),
            memory_mb: Some(64),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, FunctionError::Invalid(_)), "{err}");
    assert_eq!(
        f.get("f").unwrap().revision,
        2,
        "a refused update changes nothing"
    );
}

#[test]
fn shared_packages_are_kept_until_unused() {
    let dir = tempfile::tempdir().unwrap();
    let f = functions(dir.path());
    let a = f.create(config(), &zip("same")).unwrap();
    let b = f
        .create(
            FunctionConfig {
                name: "g".into(),
                ..config()
            },
            &zip("same"),
        )
        .unwrap();
    assert_eq!(a.package_digest, b.package_digest);
    let blob = dir.path().join(format!("{}.zip", a.package_digest));
    f.delete("f").unwrap();
    assert!(blob.exists(), "still used by g");
    f.update_code("g", &zip("other"), "").unwrap();
    assert!(!blob.exists(), "unused after g moved on");
    assert!(matches!(f.delete("f"), Err(FunctionError::NotFound { .. })));
}

#[test]
fn reservations_are_checked_against_the_cluster_limit() {
    let dir = tempfile::tempdir().unwrap();
    let functions = functions(dir.path());
    let mut big = config();
    big.reserved_concurrency = Some(10);
    let err = functions.create(big, &zip("x = 1")).unwrap_err();
    assert!(matches!(err, FunctionError::Reservation(_)), "{err}");
    assert!(functions.list().unwrap().is_empty());
    let mut ok = config();
    ok.reserved_concurrency = Some(4);
    functions.create(ok, &zip("x = 1")).unwrap();
    let info = functions
        .update_configuration(UpdateFunctionConfigurationRequest {
            name: "f".into(),
            clear_reserved_concurrency: true,
            max_retry_attempts: Some(0),
            ..Default::default()
        })
        .unwrap();
    let config = info.config.unwrap();
    assert_eq!(config.reserved_concurrency, None);
    assert_eq!(config.max_retry_attempts, Some(0));
}

fn zip_with(name: &str, mode: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default().unix_permissions(mode);
    zip.start_file(name, options).unwrap();
    zip.write_all(b"#!/bin/sh\n").unwrap();
    zip.finish().unwrap();
    out.into_inner()
}

#[test]
fn provided_packages_need_an_executable_bootstrap_at_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let f = functions(dir.path());
    let provided = || FunctionConfig {
        name: "p".into(),
        runtime: "provided".into(),
        handler: "unused".into(),
        ..Default::default()
    };
    let refused = |result: Result<FunctionInfo, FunctionError>, what: &str| {
        let err = result.unwrap_err();
        assert!(
            matches!(err, FunctionError::Package(PackageError::EntryPoint(_))),
            "{err}"
        );
        assert!(err.to_string().contains(what), "{err}");
    };
    refused(
        f.create(provided(), &zip("x")),
        "no executable file \"bootstrap\"",
    );
    refused(
        f.create(provided(), &zip_with("bootstrap", 0o644)),
        "chmod 755",
    );
    assert!(f.list().unwrap().is_empty());
    f.create(provided(), &zip_with("bootstrap", 0o755)).unwrap();
    refused(
        f.update_code("p", &zip_with("bootstrap", 0o600), ""),
        "not executable",
    );
    // A python3 function switched to provided: its stored package is checked.
    f.create(config(), &zip("x")).unwrap();
    let switch = || UpdateFunctionConfigurationRequest {
        name: "f".into(),
        runtime: Some("provided".into()),
        ..Default::default()
    };
    refused(f.update_configuration(switch()), "no executable file");
    assert_eq!(f.get("f").unwrap().config.unwrap().runtime, "python3");
    f.update_code("f", &zip_with("bootstrap", 0o755), "")
        .unwrap();
    f.update_configuration(switch()).unwrap();
}

#[test]
fn destinations_in_another_region_or_account_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = functions(dir.path());
    f.create(config(), &zip("x")).unwrap();
    let with_destination = |name: &str, destination: &str| FunctionConfig {
        name: name.into(),
        on_failure_destination: destination.into(),
        ..config()
    };
    let here = "arn:aws:lambda:eu-west-1:123456789012:function:f";
    f.create(with_destination("g", here), &zip("x")).unwrap();
    for elsewhere in [
        "arn:aws:lambda:us-east-1:123456789012:function:f",
        "arn:aws:lambda:eu-west-1:999999999999:function:f",
        "999999999999:function:f",
    ] {
        let err = f
            .create(with_destination("h", elsewhere), &zip("x"))
            .unwrap_err();
        assert!(
            matches!(err, FunctionError::UnknownDestination { .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("Function not found: arn:aws:lambda:"),
            "{err}"
        );
    }
}
