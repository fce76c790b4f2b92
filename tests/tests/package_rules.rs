//! kumod refuses at create every package the agent would refuse while
//! unpacking, with the agent's message: symlinks that resolve outside the
//! package only through another symlink, files under a symlinked
//! directory, and a zip whose headers understate the unpacked size.

use kumo_tests::{python, root_or_skip, Kumo};

/// Writes a zip with Python's zipfile. Spec items: `file:NAME:DATA`,
/// `dir:NAME:`, `link:NAME:TARGET`, `forged:NAME:MB` (MB megabytes of
/// zeros whose local and central headers claim 1,000 bytes).
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
