//! kumod refuses at create every package the agent would refuse while
//! unpacking, with the agent's message: symlinks that resolve outside the
//! package only through another symlink, files under a symlinked
//! directory, and a zip whose headers understate the unpacked size. A
//! `provided` package must hold an executable `bootstrap` at its root (or a
//! symlink inside the package to one), checked at create and update.

use kumo_tests::{python, root_or_skip, Kumo};

/// Writes a zip with Python's zipfile. Spec items: `file:NAME:DATA` (mode
/// 0644), `exec:NAME:DATA` (0755), `dir:NAME:`, `link:NAME:TARGET`,
/// `forged:NAME:MB` (MB megabytes of zeros whose local and central headers
/// claim 1,000 bytes).
const MAKE_ZIP: &str = r#"
import struct, sys, zipfile
out, spec = sys.argv[1], sys.argv[2:]
forged = []
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for item in spec:
        kind, name, data = item.split(":", 2)
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        if kind == "link":
            info.external_attr = 0o120777 << 16
        elif kind == "dir":
            info.external_attr = (0o40755 << 16) | 0x10
        elif kind == "exec":
            info.external_attr = 0o100755 << 16
        else:
            info.external_attr = 0o644 << 16
        if kind == "forged":
            with z.open(info, "w") as f:
                chunk = b"\0" * (1 << 20)
                for _ in range(int(data)):
                    f.write(chunk)
            forged.append(name.encode())
            continue
        z.writestr(info, data)
raw = bytearray(open(out, "rb").read())
for name in forged:
    # Local header: size at 22; central directory entry: size at 24.
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = 0
        while True:
            pos = raw.find(sig, pos)
            if pos < 0:
                break
            name_at = pos + (30 if sig == b"PK\x03\x04" else 46)
            if raw[name_at:name_at + len(name)] == name:
                raw[pos + at:pos + at + 4] = struct.pack("<I", 1000)
            pos += 4
open(out, "wb").write(bytes(raw))
"#;

fn make_zip(dir: &std::path::Path, name: &str, entries: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut args = vec![path.to_str().expect("utf-8 path")];
    args.extend_from_slice(entries);
    python(MAKE_ZIP, &args);
    path
}

/// What the agent says unpacking `zip` (it must refuse it).
fn agent_refusal(zip: &std::path::Path) -> String {
    let bytes = std::fs::read(zip).expect("zip");
    let dir = tempfile::tempdir().expect("temp dir");
    match kumo_agent::unzip::extract(&bytes, &dir.path().join("tree"), &Default::default()) {
        Ok(stats) => panic!("the agent unpacked {}: {stats:?}", zip.display()),
        Err(err) => err.to_string(),
    }
}

#[test]
fn kumod_refuses_what_the_agent_refuses_with_its_message() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_daemon_only("", "127.0.0.1");
    let dir = tempfile::tempdir().expect("temp dir");
    let handler = "file:lambda_function.py:def handler(e, c): return 1";
    let cases = [
        (
            // d/up is the root; up2 = d/up/.. is lexically inside but
            // really the root's parent.
            make_zip(
                dir.path(),
                "chained.zip",
                &[handler, "dir:d/:", "link:d/up:..", "link:up2:d/up/.."],
            ),
            "outside the package",
        ),
        (
            make_zip(
                dir.path(),
                "under-link.zip",
                &[handler, "link:lib:vendor", "file:lib/evil.py:x"],
            ),
            "inside a symlink",
        ),
        (
            make_zip(dir.path(), "forged.zip", &[handler, "forged:zeros.bin:300"]),
            "",
        ),
    ];
    for (i, (zip, needle)) in cases.iter().enumerate() {
        let agent_says = agent_refusal(zip);
        assert!(agent_says.contains(needle), "agent: {agent_says}");
        let name = format!("bad{i}");
        let run = kumo.cli(&[
            "function",
            "create",
            &name,
            "--runtime",
            "python3",
            "--handler",
            "lambda_function.handler",
            "--code",
            zip.to_str().expect("utf-8"),
        ]);
        assert_eq!(run.code, 2, "{}: {run:?}", zip.display());
        assert!(
            run.stderr.contains(&agent_says),
            "kumod's message differs from the agent's ({agent_says}): {run:?}"
        );
    }
    assert_eq!(kumo.cli(&["function", "list"]).code, 0);
}

/// A `provided` runtime in Python: echoes the event.
const ECHO_BOOTSTRAP: &str = "#!/usr/bin/python3
import json, os, urllib.request
api = 'http://' + os.environ['AWS_LAMBDA_RUNTIME_API'] + '/2018-06-01/runtime/invocation/'
while True:
    with urllib.request.urlopen(api + 'next') as r:
        rid = r.headers['Lambda-Runtime-Aws-Request-Id']
        event = json.loads(r.read())
    urllib.request.urlopen(urllib.request.Request(api + rid + '/response', data=json.dumps({'echo': event}).encode(), method='POST')).read()
";

#[test]
fn provided_packages_need_an_executable_bootstrap() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let run_file = format!("exec:bin/run:{ECHO_BOOTSTRAP}");
    let create = |name: &str, zip: &std::path::Path| {
        kumo.cli(&[
            "function",
            "create",
            name,
            "--runtime",
            "provided",
            "--handler",
            "x",
            "--code",
            zip.to_str().expect("utf-8"),
        ])
    };
    let refusals = [
        (
            "absent",
            vec!["file:app.py:x", "exec:sub/bootstrap:x"],
            "no executable file \"bootstrap\" at its root",
        ),
        (
            "directory",
            vec!["dir:bootstrap/:", "exec:bootstrap/run:x"],
            "is a directory",
        ),
        (
            "implied-directory",
            vec!["exec:bootstrap/run:x"],
            "is a directory",
        ),
        (
            "link-to-directory",
            vec![run_file.as_str(), "link:bootstrap:bin"],
            "is a directory",
        ),
        (
            "not-executable",
            vec!["file:bootstrap:#!/bin/sh"],
            "not executable",
        ),
        (
            "link-to-plain",
            vec!["file:bin/run:x", "link:bootstrap:bin/run"],
            "not executable",
        ),
        (
            "dangling",
            vec!["link:bootstrap:missing"],
            "which is not in the package",
        ),
        (
            "outside",
            vec!["link:bootstrap:../../usr/bin/python3"],
            "outside the package",
        ),
        (
            "absolute",
            vec!["link:bootstrap:/usr/bin/python3"],
            "absolute path",
        ),
    ];
    for (name, entries, needle) in &refusals {
        let zip = make_zip(dir.path(), &format!("{name}.zip"), entries);
        let run = create(name, &zip);
        assert_eq!(run.code, 2, "{name}: {run:?}");
        assert!(run.stderr.contains(needle), "{name}: {run:?}");
        assert!(run.stderr.contains("bootstrap"), "{name}: {run:?}");
        assert_eq!(
            kumo.cli(&["function", "get", name]).code,
            2,
            "{name} exists"
        );
    }

    // A symlink to an executable inside the package is a bootstrap.
    let good = make_zip(
        dir.path(),
        "good.zip",
        &[run_file.as_str(), "link:bootstrap:bin/run"],
    );
    let run = create("echo", &good);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        kumo.invoke_ok("echo", r#"{"a": 1}"#),
        serde_json::json!({"echo": {"a": 1}})
    );
    // Updates are checked too, and a refused one changes nothing.
    let plain = make_zip(dir.path(), "plain.zip", &["file:bootstrap:x"]);
    let run = kumo.cli(&[
        "function",
        "update",
        "echo",
        "--code",
        plain.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("not executable"), "{run:?}");
    assert_eq!(
        kumo.invoke_ok("echo", r#"{"b": 2}"#),
        serde_json::json!({"echo": {"b": 2}})
    );
    kumo.create_division("div", &[]);
    let run = kumo.cli(&["function", "update", "div", "--runtime", "provided"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("no executable file \"bootstrap\""),
        "{run:?}"
    );
    assert_eq!(kumo.function("div")["runtime"], "python3");
}
