//! The S3-compatible server of the tests (moto, see `tests/s3-server.sh`):
//! the one `tests/run-all.sh` started (`KUMO_TEST_S3_ENDPOINT`), or one
//! started for this test. Object work goes through boto3 in the test venv.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A reachable S3-compatible endpoint and the Python that drives it.
pub struct S3Server {
    /// `http://127.0.0.1:port`.
    pub endpoint: String,
    /// Python with boto3 and pyzipper.
    pub python: PathBuf,
    /// boto3 + pyzipper to bundle into function packages.
    pub vendor: PathBuf,
    own: Option<tempfile::TempDir>,
}

/// `out vendor handler…`: a zip of the handlers and the vendored packages.
const MAKE_PACKAGE: &str = r#"
import os, sys, zipfile
out, vendor, handlers = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for handler in handlers:
        z.write(handler, os.path.basename(handler))
    for root, dirs, files in os.walk(vendor):
        dirs[:] = [d for d in dirs if d != "__pycache__" and not d.endswith(".dist-info")]
        for f in files:
            if f == ".complete":
                continue
            path = os.path.join(root, f)
            z.write(path, os.path.relpath(path, vendor))
"#;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("s3-server.sh")
}

/// A path `tests/s3-server.sh` prepares: `$var`, else `default`.
pub fn prepared_path(var: &str, default: &str) -> PathBuf {
    PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.into()))
}

/// Runs `script` with `python`; returns stdout, panics with stderr.
fn python_stdout(python: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("running the test venv's python");
    assert!(
        out.status.success(),
        "python failed: {}\n{}\n{script}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl S3Server {
    /// The shared server, or a new one for this test.
    pub fn get() -> S3Server {
        let python = venv_python();
        let vendor = prepared_path("KUMO_TEST_VENDOR", "/var/tmp/kumo-test-vendor");
        if let Ok(endpoint) = std::env::var("KUMO_TEST_S3_ENDPOINT") {
            return S3Server {
                endpoint,
                python,
                vendor,
                own: None,
            };
        }
        Self::start_own(&[])
    }

    /// A server of its own that checks request signatures (moto's IAM),
    /// with a user allowed everything: the server, its access key id and
    /// secret (the first three calls make the user, key and policy).
    pub fn start_with_iam() -> (S3Server, String, String) {
        let s3 = S3Server::start_own(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
        let keys: serde_json::Value = serde_json::from_str(
            s3.boto3(
                r#"
import json
iam = boto3.client("iam", endpoint_url=s3.meta.endpoint_url, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
iam.create_user(UserName="kumo")
key = iam.create_access_key(UserName="kumo")["AccessKey"]
iam.put_user_policy(UserName="kumo", PolicyName="all", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
"#,
                &[],
            )
            .trim(),
        )
        .expect("an access key from moto's IAM");
        let field = |name: &str| keys[name].as_str().unwrap_or_default().to_string();
        let (id, secret) = (field("id"), field("secret"));
        (s3, id, secret)
    }

    /// A server of this test's own, started with `env` (moto settings such
    /// as `INITIAL_NO_AUTH_ACTION_COUNT`).
    pub fn start_own(env: &[(&str, &str)]) -> S3Server {
        let python = venv_python();
        let vendor = prepared_path("KUMO_TEST_VENDOR", "/var/tmp/kumo-test-vendor");
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(script())
            .arg("start")
            .env("KUMO_TEST_DIR", dir.path())
            .envs(env.iter().copied())
            .output()
            .expect("running tests/s3-server.sh");
        assert!(
            out.status.success(),
            "tests/s3-server.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let endpoint = String::from_utf8_lossy(&out.stdout).trim().to_string();
        S3Server {
            endpoint,
            python,
            vendor,
            own: Some(dir),
        }
    }

    /// Runs a boto3 script: `s3` and `sqs` are clients for this server;
    /// `argv[1:]` are `args`. Returns stdout; panics with stderr on failure.
    pub fn boto3(&self, script: &str, args: &[&str]) -> String {
        let prelude = format!(
            "import sys, boto3\nfrom botocore.config import Config\ns3 = boto3.client('s3', endpoint_url={0:?}, aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1', config=Config(s3={{'addressing_style': 'path'}}))\nsqs = boto3.client('sqs', endpoint_url={0:?}, aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\n",
            self.endpoint
        );
        python_stdout(&self.python, &format!("{prelude}{script}"), args)
    }

    /// Zips `handlers` (each stored under its file name) with boto3 and
    /// pyzipper from [`S3Server::vendor`] into `out`.
    pub fn package_with_vendor(&self, handlers: &[&Path], out: &Path) {
        let mut args = vec![
            out.to_string_lossy().into_owned(),
            self.vendor.to_string_lossy().into_owned(),
        ];
        args.extend(handlers.iter().map(|h| h.to_string_lossy().into_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        python_stdout(&self.python, MAKE_PACKAGE, &args);
    }

    /// kumod TOML for an S3 profile `name` on this server (its secret
    /// written under `dir`).
    pub fn profile_toml(&self, name: &str, dir: &Path) -> String {
        let secret = dir.join(format!("{name}.secret"));
        std::fs::write(&secret, "test\n").expect("writing the secret");
        format!(
            "[s3.profiles.{name}]\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\nsecret_access_key_file = \"{}\"\nwebhook_arn_region = \"us-east-1\"\n",
            self.endpoint,
            secret.display()
        )
    }
}

impl S3Server {
    /// kumod TOML for an `[aws.profiles.NAME]` on this server with these
    /// credentials (the secret written under `dir`).
    pub fn aws_profile_toml(&self, name: &str, dir: &Path, key: &str, secret: &str) -> String {
        let file = dir.join(format!("{name}.secret"));
        std::fs::write(&file, format!("{secret}\n")).expect("writing the secret");
        format!(
            "[aws.profiles.{name}]\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"{key}\"\nsecret_access_key_file = \"{}\"\n",
            self.endpoint,
            file.display()
        )
    }
}

/// A bucket name unique to this run (the server may be shared).
pub fn unique_bucket(base: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 100_000)
        .unwrap_or(0);
    format!("{base}-{}-{nanos}", std::process::id())
}

/// The test venv's Python (boto3, pyzipper, moto), prepared once per
/// test process if missing.
pub fn venv_python() -> PathBuf {
    static PREPARED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PREPARED
        .get_or_init(|| {
            let out = Command::new(script())
                .arg("prepare")
                .output()
                .expect("running tests/s3-server.sh prepare");
            assert!(
                out.status.success(),
                "tests/s3-server.sh prepare failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            prepared_path("KUMO_TEST_VENV", "/var/tmp/kumo-test-venv").join("bin/python")
        })
        .clone()
}

/// The AWS CLI (`aws`) that `tests/s3-server.sh prepare` installs.
pub fn aws_cli() -> PathBuf {
    venv_python();
    prepared_path("KUMO_TEST_AWSCLI", "/var/tmp/kumo-test-awscli").join("bin/aws")
}

/// Runs `script` with the venv's Python; returns stdout, panics with stderr.
pub fn run_python(script: &str, args: &[&str]) -> String {
    python_stdout(&venv_python(), script, args)
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(dir) = &self.own {
            let _ = Command::new(script())
                .arg("stop")
                .env("KUMO_TEST_DIR", dir.path())
                .status();
        }
    }
}
