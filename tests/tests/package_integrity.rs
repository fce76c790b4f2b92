//! Packages reach agents by digest and are verified: when the bytes kumod
//! serves do not hash to the function's digest (a different, perfectly
//! valid package, or a truncated one), the agent retries, refuses to run
//! them, and says so; once the right bytes are back the function runs.

use kumo_tests::{package_dir, root_or_skip, zip_dir, Kumo};

const GOOD: &str = "def handler(event, context):\n    return {'package': 'good'}\n";
const EVIL: &str = "def handler(event, context):\n    return {'package': 'EVIL'}\n";

/// Zips `source` as `lambda_function.py` with the system's python zipfile.
fn zip_of(source: &str, out: &std::path::Path) {
    let dir = package_dir(&[("lambda_function.py", source)]);
    zip_dir(dir.path(), out);
}

#[test]
fn corrupted_or_truncated_packages_are_retried_and_never_run() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let dir = package_dir(&[("lambda_function.py", GOOD)]);
    kumo.create("pkg", "python3", "lambda_function.handler", dir.path(), &[]);
    let digest = kumo.function("pkg")["package_digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = kumo
        .data_dir()
        .join("packages")
        .join(format!("{digest}.zip"));
    let original = std::fs::read(&blob).unwrap();

    // Another valid package behind the same digest.
    let evil = kumo.dir.path().join("evil.zip");
    zip_of(EVIL, &evil);
    std::fs::copy(&evil, &blob).unwrap();
    let run = kumo.invoke("pkg", "{}");
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        !run.stdout.contains("EVIL"),
        "bytes that do not match the digest ran: {run:?}"
    );
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("refusing to run them"), "{run:?}");
    let attempts = kumo
        .log()
        .matches("package download does not match its digest")
        .count();
    assert!(
        attempts >= 3,
        "the download was not retried ({attempts} attempts)"
    );

    // A truncated download.
    std::fs::write(&blob, &original[..original.len() / 2]).unwrap();
    let run = kumo.invoke("pkg", "{}");
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains("refusing to run them"),
        "{run:?}"
    );

    // The right bytes again: nothing bad was cached, the function runs.
    std::fs::write(&blob, &original).unwrap();
    let good = kumo.invoke_ok("pkg", "{}");
    assert_eq!(good["package"], "good");
}
