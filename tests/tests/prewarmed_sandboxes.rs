//! Pre-started python3 sandboxes (`prewarm_python_instances`): cold starts
//! claim a sandbox whose interpreter is already running. Instances made
//! this way must be as isolated as classic ones: each sees only its own
//! package, its own `/tmp` of its own size, its own environment, its own
//! uid, no capabilities, the seccomp filter, and the function's memory
//! limit; functions that are not eligible still start the classic way.

use std::path::PathBuf;

use kumo_tests::{package_dir, root_or_skip, Kumo, LOG_CLAIMS};

/// Reports what the instance sees; `write` puts a marker into /tmp first.
const FACTS: &str = r#"
import os, json

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()

def handler(event, context):
    if event.get("write"):
        open("/tmp/marker-" + os.environ["MARK"], "w").write("x")
    stat = os.statvfs("/tmp")
    return {
        "mark": os.environ.get("MARK"),
        "prewarmed_variable": os.environ.get("KUMO_PREWARMED"),
        "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "cwd": os.getcwd(),
        "task": sorted(os.listdir("/var/task")),
        "tmp": sorted(os.listdir("/tmp")),
        "tmp_mb": stat.f_blocks * stat.f_frsize // (1024 * 1024),
        "uid": os.getuid(),
        "cap_eff": status("CapEff"),
        "cap_bnd": status("CapBnd"),
        "seccomp": status("Seccomp"),
        "mountinfo": open("/proc/self/mountinfo").read(),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    }
"#;

fn create(kumo: &Kumo, name: &str, extra: &[&str]) -> String {
    let dir = package_dir(&[
        ("lambda_function.py", FACTS),
        (&format!("only-in-{name}.txt"), name),
    ]);
    let env = format!("MARK={name}");
    let mut args = vec!["--env", env.as_str()];
    args.extend_from_slice(extra);
    kumo.create(
        name,
        "python3",
        "lambda_function.handler",
        dir.path(),
        &args,
    );
    kumo.function(name)["package_digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Memory cgroups of this kumod's instances whose name ends with `suffix`.
fn memory_limits_mb(kumo: &Kumo, suffix: &str) -> Vec<u64> {
    let config = std::fs::read_to_string(kumo.dir.path().join("kumod.toml")).unwrap();
    let parent = config
        .lines()
        .find_map(|l| l.strip_prefix("cgroup_parent = \""))
        .map(|l| l.trim_end_matches('"').to_string())
        .unwrap();
    let dir = PathBuf::from("/sys/fs/cgroup/memory").join(parent);
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .filter_map(|e| {
                    std::fs::read_to_string(e.path().join("memory.limit_in_bytes")).ok()
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .map(|bytes| bytes / (1024 * 1024))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn instances_from_pre_started_sandboxes_are_isolated() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(LOG_CLAIMS, "prewarm_python_instances = 2\n");
    kumo.wait_for_blanks(2);
    let digest_a = create(&kumo, "alpha", &["--memory", "256", "--tmp-size", "600"]);
    let digest_b = create(&kumo, "beta", &[]);
    let a = kumo.invoke_ok("alpha", r#"{"write":true}"#);
    let b = kumo.invoke_ok("beta", "{}");
    assert_eq!(
        kumo.claims(),
        2,
        "both cold starts must have claimed a pre-started sandbox\n{}",
        kumo.log()
    );

    for (facts, name, digest, other) in [
        (&a, "alpha", &digest_a, &digest_b),
        (&b, "beta", &digest_b, &digest_a),
    ] {
        assert_eq!(facts["mark"], name, "{facts}");
        assert_eq!(facts["function"], name);
        assert_eq!(
            facts["prewarmed_variable"],
            serde_json::Value::Null,
            "{facts}"
        );
        assert_eq!(facts["cwd"], "/var/task");
        assert_eq!(
            facts["task"],
            serde_json::json!(["lambda_function.py", format!("only-in-{name}.txt")]),
            "{facts}"
        );
        assert_ne!(facts["uid"], 0);
        assert_eq!(facts["cap_eff"], "0000000000000000");
        assert_eq!(facts["cap_bnd"], "0000000000000000");
        assert_eq!(facts["seccomp"], "2");
        assert!(facts["pids"].as_array().unwrap().len() <= 4, "{facts}");
        let mounts = facts["mountinfo"].as_str().unwrap();
        assert!(
            mounts.contains(digest.as_str()),
            "its own package is not mounted:\n{mounts}"
        );
        assert!(
            !mounts.contains(other.as_str()),
            "another function's package is visible:\n{mounts}"
        );
        let data_dir = kumo.data_dir().display().to_string();
        assert!(
            !mounts.contains(&data_dir),
            "the agent's data directory is visible:\n{mounts}"
        );
    }
    assert_ne!(a["uid"], b["uid"], "two instances share a uid");
    assert_eq!(a["tmp"], serde_json::json!(["marker-alpha"]));
    assert_eq!(b["tmp"], serde_json::json!([]), "beta sees alpha's /tmp");
    // /tmp is an ext4 disk of at least the function's size (its metadata
    // comes on top).
    let tmp_mb = a["tmp_mb"].as_u64().unwrap_or(0);
    assert!(
        (600..=640).contains(&tmp_mb),
        "/tmp is not the function's size: {tmp_mb}"
    );
    assert!(
        memory_limits_mb(&kumo, "-blank").contains(&256),
        "alpha's memory limit was not applied: {:?}",
        memory_limits_mb(&kumo, "-blank")
    );

    // Warm reuse works as before on a claimed instance.
    let again = kumo.invoke_ok("alpha", "{}");
    assert_eq!(again["tmp"], serde_json::json!(["marker-alpha"]));
    assert_eq!(again["uid"], a["uid"]);
}

#[test]
fn functions_the_interpreter_would_start_differently_start_the_classic_way() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(LOG_CLAIMS, "prewarm_python_instances = 2\n");
    kumo.wait_for_blanks(2);
    create(&kumo, "hashed", &["--env", "PYTHONHASHSEED=7"]);
    let facts = kumo.invoke_ok("hashed", "{}");
    assert_eq!(facts["mark"], "hashed");
    assert!(kumo.claims() == 0, "{}", kumo.log());
    // The pre-started ones are still there for eligible functions.
    create(&kumo, "plain", &[]);
    kumo.invoke_ok("plain", "{}");
    assert_eq!(kumo.claims(), 1, "{}", kumo.log());
}
