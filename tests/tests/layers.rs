//! Layers (docs/wire-formats.md §13) end to end: published with the CLI,
//! boto3 and the AWS CLI; a pure-Python package, a native library in
//! `/opt/lib`, a tool in `/opt/bin` and a Node.js module reach functions
//! through a read-only `/opt`, in order (a later layer's file wins), in
//! classic and pre-started sandboxes; a `provided` function starts a
//! layer's `bootstrap`; versions in use cannot be deleted; six layers,
//! unknown layers and bad ZIPs are refused; `deploy/layers/boto3.sh` builds
//! a layer a function imports boto3 from.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use kumo_tests::s3::run_python;
use kumo_tests::{
    assert_refused, package_dir, root_or_skip, zip_dir, Kumo, INVOKE_API_KEYS, LOG_CLAIMS,
};
use serde_json::{json, Value};

/// `MAJOR.MINOR` of the agents' interpreter.
fn python_version() -> String {
    let out = Command::new("/usr/bin/python3")
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .expect("running /usr/bin/python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn make_executable(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A layer directory with a Python module, a module in the versioned
/// site-packages path, a shared file the override layer replaces, a
/// Node.js module and a tool on `PATH`.
fn pure_layer() -> tempfile::TempDir {
    let site = format!(
        "python/lib/python{}/site-packages/site_module.py",
        python_version()
    );
    let dir = package_dir(&[
        ("python/layer_greeting.py", "WHO = 'layer-a'\n"),
        ("python/shared.py", "FROM = 'first layer'\n"),
        (&site, "NAME = 'versioned site-packages'\n"),
        (
            "nodejs/node_modules/greet/index.js",
            "module.exports = (who) => `hello ${who} from a node layer`;\n",
        ),
        ("bin/kumo-layer-tool", "#!/bin/sh\necho tool-ran\n"),
    ]);
    make_executable(&dir.path().join("bin/kumo-layer-tool"));
    dir
}

/// A layer with a shared library `lib/libkumogreet.so` built with gcc.
fn native_layer() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    let source = dir.path().join("greet.c");
    std::fs::write(&source, "int kumo_greet(void) { return 42; }\n").unwrap();
    let status = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(dir.path().join("lib/libkumogreet.so"))
        .arg(&source)
        .status()
        .expect("running gcc");
    assert!(status.success(), "gcc failed");
    std::fs::remove_file(&source).unwrap();
    dir
}

const PYTHON_HANDLER: &str = r#"
import ctypes, os, subprocess

def handler(event, context):
    import layer_greeting, shared, site_module
    out = {
        "who": layer_greeting.WHO,
        "shared": shared.FROM,
        "site": site_module.NAME,
        "native": ctypes.CDLL("libkumogreet.so").kumo_greet(),
        "tool": subprocess.run(["kumo-layer-tool"], capture_output=True, text=True).stdout.strip(),
        "opt": sorted(os.listdir("/opt")),
    }
    try:
        open("/opt/new-file", "w")
        out["write"] = "written"
    except OSError as e:
        out["write"] = e.strerror
    return out
"#;

/// Publishes `dir` as the next version of `name`; returns the JSON record.
fn publish(kumo: &Kumo, name: &str, dir: &Path) -> Value {
    let code = dir.to_string_lossy();
    let run = kumo.cli(&[
        "layer",
        "publish",
        name,
        "--code",
        &code,
        "--compatible-runtimes",
        "python3.11",
        "nodejs20.x",
        "--description",
        "test layer",
        "--output",
        "json",
    ]);
    assert_eq!(run.code, 0, "publish {name}: {run:?}\n{}", kumo.log());
    run.json()
}

#[test]
fn layers_reach_python_node_and_provided_functions_through_opt_in_order() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(LOG_CLAIMS, "prewarm_python_instances = 1\n");
    let pure = publish(&kumo, "pure", pure_layer().path());
    assert_eq!(pure["version"], 1);
    assert_eq!(
        pure["layer_version_arn"],
        "arn:aws:lambda:us-east-1:000000000000:layer:pure:1"
    );
    assert_eq!(
        pure["compatible_runtimes"],
        json!(["python3.11", "nodejs20.x"])
    );
    let native = publish(&kumo, "native", native_layer().path());
    let override_dir = package_dir(&[("python/shared.py", "FROM = 'second layer'\n")]);
    publish(&kumo, "override", override_dir.path());

    // Python, from a pre-started sandbox: the claim brings /opt along.
    kumo.wait_for_blank();
    let layers = "pure:1,native:1,arn:aws:lambda:us-east-1:000000000000:layer:override:1";
    kumo.create_python("py", PYTHON_HANDLER, &["--layers", layers]);
    let out = kumo.invoke_ok("py", "{}");
    assert_eq!(out["who"], "layer-a", "{out}");
    assert_eq!(out["shared"], "second layer", "the later layer wins: {out}");
    assert_eq!(out["site"], "versioned site-packages");
    assert_eq!(out["native"], 42, "/opt/lib is on LD_LIBRARY_PATH");
    assert_eq!(out["tool"], "tool-ran", "/opt/bin is on PATH");
    assert_eq!(out["opt"], json!(["bin", "lib", "nodejs", "python"]));
    assert_eq!(out["write"], "Read-only file system");
    assert_eq!(kumo.claims(), 1, "{}", kumo.log());
    let function = kumo.function("py");
    assert_eq!(
        function["layers"],
        json!([
            "arn:aws:lambda:us-east-1:000000000000:layer:pure:1",
            native["layer_version_arn"],
            "arn:aws:lambda:us-east-1:000000000000:layer:override:1"
        ])
    );

    // Node.js, started the classic way: NODE_PATH reaches /opt/nodejs.
    let node = package_dir(&[(
        "index.js",
        "const greet = require('greet');\nexports.handler = async (event) => greet(event.who);\n",
    )]);
    kumo.create(
        "node",
        "nodejs20.x",
        "index.handler",
        node.path(),
        &["--layers", "pure:1"],
    );
    assert_eq!(
        kumo.invoke_ok("node", r#"{"who":"kumo"}"#),
        "hello kumo from a node layer"
    );

    // provided: the package has no bootstrap; the runtime layer's runs.
    let runtime = package_dir(&[(
        "bootstrap",
        r#"#!/usr/bin/python3
import json, os, sys, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    body = json.dumps({"bootstrap": sys.argv[0], "handler_file": os.listdir("/var/task"), "event": event}).encode()
    urllib.request.urlopen(urllib.request.Request(api + rid + "/response", data=body, method="POST")).read()
"#,
    )]);
    make_executable(&runtime.path().join("bootstrap"));
    publish(&kumo, "runtime", runtime.path());
    let handler = package_dir(&[("handler.sh", "echo not a bootstrap\n")]);
    let refused = kumo.try_create(
        "custom",
        "provided.al2023",
        "handler",
        handler.path(),
        &["--layers", "pure:1"],
    );
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("bootstrap"), "{refused:?}");
    kumo.create(
        "custom",
        "provided.al2023",
        "handler",
        handler.path(),
        &["--layers", "runtime:1"],
    );
    assert_eq!(
        kumo.invoke_ok("custom", r#"{"a":1}"#),
        json!({"bootstrap": "/opt/bootstrap", "handler_file": ["handler.sh"], "event": {"a": 1}})
    );

    // A new layer version reaches the function after an update.
    let pure_v2 = package_dir(&[("python/layer_greeting.py", "WHO = 'layer-a v2'\n")]);
    assert_eq!(publish(&kumo, "pure", pure_v2.path())["version"], 2);
    let run = kumo.cli(&[
        "function",
        "update",
        "py",
        "--layers",
        "pure:2",
        "native:1",
        "override:1",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let out = kumo.invoke_failed("py", "{}");
    assert!(
        out["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("site_module"),
        "version 2 has no site_module: {out}"
    );
    let run = kumo.cli(&["function", "update", "py", "--clear-layers"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(kumo.function("py")["layers"], json!([]));
}

#[test]
fn layers_in_use_six_layers_unknown_layers_and_bad_zips_are_refused() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let dir = pure_layer();
    for i in 1..=6 {
        publish(&kumo, &format!("l{i}"), dir.path());
    }
    let code = package_dir(&[("lambda_function.py", "def handler(e, c):\n    return 1\n")]);
    let create = |layers: &str| {
        kumo.try_create(
            "f",
            "python3",
            "lambda_function.handler",
            code.path(),
            &["--layers", layers],
        )
    };
    for (layers, words) in [
        ("l1:1,l2:1,l3:1,l4:1,l5:1,l6:1", "at most 5"),
        ("l1:2", "l1:2 does not exist"),
        (
            "arn:aws:lambda:eu-west-1:000000000000:layer:l1:1",
            "does not exist",
        ),
        (
            "arn:aws:lambda:us-east-1:999999999999:layer:l1:1",
            "does not exist",
        ),
        ("l1", "layer version ARN"),
        ("l1:1,l1:1", "twice"),
    ] {
        let run = create(layers);
        assert_eq!(run.code, 2, "{layers}: {run:?}");
        assert!(run.stderr.contains(words), "{layers}: {run:?}");
    }
    assert_eq!(
        kumo.cli(&["function", "list", "--output", "json"]).json(),
        json!([])
    );

    kumo.create(
        "f",
        "python3",
        "lambda_function.handler",
        code.path(),
        &["--layers", "l1:1"],
    );
    let run = kumo.cli(&["version", "publish", "f"]);
    assert_eq!(run.code, 0, "{run:?}");
    kumo.cli(&["function", "update", "f", "--clear-layers"]);
    let run = kumo.cli(&["layer", "delete", "l1:1"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("used by f:1"),
        "a published version keeps it: {run:?}"
    );
    let shown = kumo
        .cli(&["layer", "get", "l1:1", "--output", "json"])
        .json();
    assert_eq!(shown["used_by"], json!(["f:1"]));
    let run = kumo.cli(&["layer", "delete", "l2:1"]);
    assert_eq!(run.code, 0, "{run:?}");
    let listed = kumo.cli(&["layer", "list", "--output", "json"]).json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["l1", "l3", "l4", "l5", "l6"]);
    assert_eq!(
        kumo.invoke_ok("f:1", "{}"),
        1,
        "the version with its layer still runs"
    );
    kumo.cli(&["function", "delete", "f"]);
    assert_eq!(kumo.cli(&["layer", "delete", "l1:1"]).code, 0);

    let bad = tempfile::tempdir().unwrap();
    let not_zip = bad.path().join("not.zip");
    std::fs::write(&not_zip, b"this is not a zip").unwrap();
    let slip = bad.path().join("slip.zip");
    run_python(
        "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    z.writestr('../../etc/evil', 'x')\n",
        &[&slip.to_string_lossy()],
    );
    for (file, words) in [(&not_zip, "not a valid zip"), (&slip, "invalid package")] {
        let code = file.to_string_lossy();
        let run = kumo.cli(&["layer", "publish", "bad", "--code", &code]);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(words), "{run:?}");
    }
    let run = kumo.cli(&[
        "layer",
        "publish",
        "bad/name",
        "--code",
        &dir.path().to_string_lossy(),
    ]);
    assert!(run.stderr.contains("layer_name"), "{run:?}");
    assert_eq!(
        kumo.cli(&["layer", "list", "bad", "--output", "json"])
            .json(),
        json!([])
    );
}

/// boto3 publishes, lists, reads and deletes layers and creates a function
/// using two; Lambda's error classes for an in-use delete, six layers, an
/// unknown layer and a bad ZIP.
const BOTO3_LAYERS: &str = r#"
import base64, io, json, sys, zipfile
import boto3, botocore
endpoint = sys.argv[1]
lam = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="AKIDKUMOTEST", aws_secret_access_key="kumo-test-secret",
                   config=botocore.config.Config(retries={"max_attempts": 0}))

def zipped(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, body in files.items():
            z.writestr(name, body)
    return buf.getvalue()

def error(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as e:
        return [e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"], e.response["Error"]["Message"]]
    return "no error"

out = {}
p = lam.publish_layer_version(LayerName="lib", Description="d", CompatibleRuntimes=["python3.12"],
                              Content={"ZipFile": zipped({"python/libmod.py": "X = 'from lib'"})})
out["published"] = [p["Version"], p["LayerArn"], p["LayerVersionArn"], p["Content"]["CodeSize"] > 0,
                    p["CompatibleRuntimes"], len(p["CreatedDate"])]
p2 = lam.publish_layer_version(LayerName="lib", Content={"ZipFile": zipped({"python/libmod.py": "X = 'v2'"})})
out["second"] = p2["Version"]
lam.publish_layer_version(LayerName="other", Content={"ZipFile": zipped({"python/other.py": "Y = 1"})})
out["layers"] = [[l["LayerName"], l["LatestMatchingVersion"]["Version"]] for l in lam.list_layers()["Layers"]]
out["by_runtime"] = [l["LayerName"] for l in lam.list_layers(CompatibleRuntime="python3.12")["Layers"]]
out["versions"] = [v["Version"] for v in lam.list_layer_versions(LayerName="lib")["LayerVersions"]]
g = lam.get_layer_version(LayerName="lib", VersionNumber=1)
out["get"] = [g["Version"], g["Content"]["CodeSha256"] == p["Content"]["CodeSha256"]]
out["by_arn"] = lam.get_layer_version_by_arn(Arn=p2["LayerVersionArn"])["Version"]
f = lam.create_function(FunctionName="uses", Runtime="python3.12", Role="arn:aws:iam::000000000000:role/r",
                        Handler="app.handler", Layers=["lib:1", "other:1"],
                        Code={"ZipFile": zipped({"app.py": "def handler(e, c):\n    import libmod, other\n    return [libmod.X, other.Y]\n"})})
out["function_layers"] = [[l["Arn"], l["CodeSize"] > 0] for l in f["Layers"]]
r = lam.invoke(FunctionName="uses", Payload=b"{}")
out["invoked"] = json.load(r["Payload"])
out["got_layers"] = [l["Arn"] for l in lam.get_function(FunctionName="uses")["Configuration"]["Layers"]]
u = lam.update_function_configuration(FunctionName="uses", Layers=["lib:2"])
out["updated"] = [l["Arn"] for l in u["Layers"]]
out["in_use"] = error(lam.delete_layer_version, LayerName="lib", VersionNumber=2)
out["six"] = error(lam.update_function_configuration, FunctionName="uses", Layers=["lib:1"] * 3 + ["other:1"] * 3)
out["unknown"] = error(lam.update_function_configuration, FunctionName="uses", Layers=["nope:1"])
out["bad_zip"] = error(lam.publish_layer_version, LayerName="bad", Content={"ZipFile": b"not a zip"})
out["missing"] = error(lam.get_layer_version, LayerName="lib", VersionNumber=9)
out["foreign"] = error(lam.get_layer_version_by_arn, Arn="arn:aws:lambda:eu-west-1:000000000000:layer:lib:1")
lam.delete_layer_version(LayerName="lib", VersionNumber=1)
lam.delete_layer_version(LayerName="lib", VersionNumber=1)
out["after_delete"] = [v["Version"] for v in lam.list_layer_versions(LayerName="lib")["LayerVersions"]]
print(json.dumps(out))
"#;

#[test]
fn boto3_and_the_aws_cli_manage_layers() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start_configured(INVOKE_API_KEYS, "");
    let endpoint = format!("http://{}", kumo.http_address);
    let out: Value = serde_json::from_str(&run_python(BOTO3_LAYERS, &[&endpoint])).unwrap();
    let arn = "arn:aws:lambda:us-east-1:000000000000:layer";
    assert_eq!(
        out["published"],
        json!([
            1,
            format!("{arn}:lib"),
            format!("{arn}:lib:1"),
            true,
            ["python3.12"],
            28
        ])
    );
    assert_eq!(out["second"], 2);
    assert_eq!(out["layers"], json!([["lib", 2], ["other", 1]]));
    assert_eq!(out["by_runtime"], json!(["lib"]));
    assert_eq!(out["versions"], json!([2, 1]), "newest first, as on Lambda");
    assert_eq!(out["get"], json!([1, true]));
    assert_eq!(out["by_arn"], 2);
    assert_eq!(
        out["function_layers"],
        json!([
            [format!("{arn}:lib:1"), true],
            [format!("{arn}:other:1"), true]
        ])
    );
    assert_eq!(out["invoked"], json!(["from lib", 1]));
    assert_eq!(
        out["got_layers"],
        json!([format!("{arn}:lib:1"), format!("{arn}:other:1")])
    );
    assert_eq!(out["updated"], json!([format!("{arn}:lib:2")]));
    assert_refused(
        &out["in_use"],
        "in use",
        (409, "ResourceConflictException"),
        "used by uses",
    );
    assert_refused(
        &out["six"],
        "six",
        (400, "InvalidParameterValueException"),
        "at most 5",
    );
    assert_refused(
        &out["unknown"],
        "unknown",
        (400, "InvalidParameterValueException"),
        "does not exist",
    );
    assert_refused(
        &out["bad_zip"],
        "bad zip",
        (400, "InvalidParameterValueException"),
        "not a valid zip",
    );
    assert_refused(
        &out["missing"],
        "missing",
        (404, "ResourceNotFoundException"),
        "lib:9",
    );
    assert_refused(
        &out["foreign"],
        "foreign",
        (404, "ResourceNotFoundException"),
        "eu-west-1",
    );
    assert_eq!(out["after_delete"], json!([2]));

    // The AWS CLI publishes from a file and reads the layer back.
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("cli-layer.zip");
    zip_dir(pure_layer().path(), &zip);
    let aws = |args: &[&str]| -> Value {
        let out = Command::new(kumo_tests::s3::aws_cli())
            .args([
                "--endpoint-url",
                &endpoint,
                "--region",
                "us-east-1",
                "--output",
                "json",
                "lambda",
            ])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "AKIDKUMOTEST")
            .env("AWS_SECRET_ACCESS_KEY", "kumo-test-secret")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .expect("running aws");
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let published = aws(&[
        "publish-layer-version",
        "--layer-name",
        "from-cli",
        "--zip-file",
        &format!("fileb://{}", zip.display()),
        "--compatible-runtimes",
        "python3.11",
    ]);
    assert_eq!(published["LayerVersionArn"], format!("{arn}:from-cli:1"));
    assert_eq!(
        published["Content"]["CodeSize"],
        std::fs::metadata(&zip).unwrap().len()
    );
    let listed = aws(&["list-layer-versions", "--layer-name", "from-cli"]);
    assert_eq!(listed["LayerVersions"][0]["Version"], 1);
    let shown = kumo
        .cli(&["layer", "get", "from-cli:1", "--output", "json"])
        .json();
    assert_eq!(shown["code_sha256"], published["Content"]["CodeSha256"]);
}

/// The repository's recipe, as the README tells users to run it.
fn recipe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/layers/boto3.sh")
}

#[test]
fn the_boto3_recipe_builds_a_layer_functions_import_boto3_from() {
    if !root_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("boto3-layer.zip");
    let out = Command::new(recipe())
        .arg(&zip)
        .output()
        .expect("running the recipe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kumo = Kumo::start();
    let published = publish(&kumo, "boto3", &zip);
    assert!(
        published["unzipped_size"].as_u64().unwrap() > 5_000_000,
        "{published}"
    );
    kumo.create_python(
        "s3lister",
        "import boto3, botocore\n\ndef handler(event, context):\n    client = boto3.client('s3', region_name='us-east-1', aws_access_key_id='a', aws_secret_access_key='b')\n    return [boto3.__file__, botocore.__version__, client.meta.service_model.service_name]\n",
        &["--layers", "boto3:1", "--memory", "256"],
    );
    let out = kumo.invoke_ok("s3lister", "{}");
    assert_eq!(out[0], "/opt/python/boto3/__init__.py", "{out}");
    assert_eq!(out[2], "s3", "{out}");
    let bad = Command::new(recipe())
        .args([zip.to_str().unwrap(), "--upload"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--publish"));
}
