//! SNS signature checks end to end (docs/wire-formats.md §10): the test
//! makes a CA, an https server certificate for `localhost` and SNS signing
//! keys with the `openssl` CLI, serves the signing certificate over https
//! with `openssl s_server -WWW`, and names that server as the profile's
//! `sns_cert_host` (trusting the CA through `sns_ca_file`); the topic and
//! subscription are moto's. Correctly signed notifications (versions 1
//! and 2) and confirmations pass; tampered, unsigned and wrongly signed
//! ones, certificates from another host, over http or that are not
//! certificates are refused with 403 and nothing is queued.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use kumo_tests::http::request;
use kumo_tests::s3::S3Server;
use kumo_tests::sink::Sink;
use kumo_tests::{free_ports, root_or_skip, wait_until, Kumo};
use serde_json::{json, Value};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// The https server, stopped on drop.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CA, server certificate and two signing keys in `dir`; serves `dir`
/// over https on `port`.
fn pki_and_server(dir: &Path, port: u16) -> Served {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=kumo-test-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            "server.pem",
            "-extfile",
            "ext",
        ],
    );
    for name in ["signing", "other"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-subj",
                "/CN=sns.amazonaws.com",
            ],
        );
    }
    std::fs::write(dir.join("junk.pem"), "not a certificate\n").unwrap();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &port.to_string(),
            "-cert",
            "server.pem",
            "-key",
            "server.key",
            "-WWW",
            "-quiet",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting openssl s_server");
    let served = Served(child);
    wait_until("the https server", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("localhost", port)).is_ok()
    });
    served
}

/// The text SNS signs for a notification (§10), written out here
/// independently of kumod's code.
fn string_to_sign(body: &Value) -> String {
    let keys: &[&str] = if body["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    keys.iter()
        .filter_map(|k| body[*k].as_str().map(|v| format!("{k}\n{v}\n")))
        .collect()
}

fn sign(dir: &Path, key: &str, body: &mut Value) {
    let digest = if body["SignatureVersion"] == "1" {
        "-sha1"
    } else {
        "-sha256"
    };
    std::fs::write(dir.join("to-sign"), string_to_sign(body)).unwrap();
    openssl(
        dir,
        &["dgst", digest, "-sign", key, "-out", "signature", "to-sign"],
    );
    let signature = std::fs::read(dir.join("signature")).unwrap();
    body["Signature"] = json!(base64::engine::general_purpose::STANDARD.encode(signature));
}

fn notification(topic: &str, id: &str, version: &str, cert_url: &str) -> Value {
    json!({
        "Type": "Notification", "MessageId": id, "TopicArn": topic,
        "Subject": "signed", "Message": format!("message {id}"),
        "Timestamp": "2026-12-07T12:00:00.000Z", "SignatureVersion": version,
        "Signature": "", "SigningCertURL": cert_url,
        "UnsubscribeURL": "https://localhost/?Action=Unsubscribe",
        "MessageAttributes": {}
    })
}

fn post(kumo: &Kumo, body: &Value) -> (u16, String) {
    let reply = request(
        &kumo.http_address,
        "POST",
        "/sns/signed",
        &[("Content-Type", "text/plain; charset=UTF-8")],
        body.to_string().as_bytes(),
    );
    (reply.status, reply.body)
}

#[test]
fn signed_deliveries_pass_and_the_rest_are_refused() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().expect("temp dir");
    let pki = work.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    let (port, _) = free_ports();
    let _server = pki_and_server(&pki, port);
    let profile = s3.aws_profile_toml("moto", work.path(), "test", "test");
    let kumo = Kumo::start_configured(
        &format!(
            "[sns]\npublic_url = \"http://127.0.0.1:{{http_port}}\"\n\n{profile}sns_cert_host = \"localhost:{port}\"\nsns_ca_file = \"{}\"\n",
            pki.join("ca.pem").display()
        ),
        "",
    );
    let sink = Sink::start();
    kumo.create_reporter("verified", &sink, &[]);
    let topic = s3.boto3(
        "sns = boto3.client('sns', endpoint_url=s3.meta.endpoint_url, aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\nprint(sns.create_topic(Name=sys.argv[1])['TopicArn'])",
        &[&kumo_tests::s3::unique_bucket("signed")],
    ).trim().to_string();
    kumo.create_trigger(&[
        "signed",
        "--function",
        "verified",
        "--sns-topic",
        &topic,
        "--aws-profile",
        "moto",
    ]);
    let cert_url = format!("https://localhost:{port}/signing.pem");

    // Correctly signed, both versions: queued.
    for (id, version) in [("good-1", "1"), ("good-2", "2")] {
        let mut body = notification(&topic, id, version, &cert_url);
        sign(&pki, "signing.key", &mut body);
        let (status, text) = post(&kumo, &body);
        assert_eq!(status, 200, "{id}: {text}");
        assert!(text.contains("\"queued\":1"), "{id}: {text}");
    }

    // Refused with 403, nothing queued.
    let mut tampered = notification(&topic, "tampered", "2", &cert_url);
    sign(&pki, "signing.key", &mut tampered);
    tampered["Message"] = json!("changed after signing");
    let mut wrong_key = notification(&topic, "wrong-key", "1", &cert_url);
    sign(&pki, "other.key", &mut wrong_key);
    let unsigned = notification(&topic, "unsigned", "1", &cert_url);
    let mut version_swapped = notification(&topic, "swapped", "1", &cert_url);
    sign(&pki, "signing.key", &mut version_swapped);
    version_swapped["SignatureVersion"] = json!("2");
    let mut refused = vec![tampered, wrong_key, unsigned, version_swapped];
    for (id, url) in [
        (
            "other-host",
            format!("https://127.0.0.1:{port}/signing.pem"),
        ),
        ("http-url", format!("http://localhost:{port}/signing.pem")),
        ("not-a-cert", format!("https://localhost:{port}/junk.pem")),
        (
            "missing",
            format!("https://localhost:{port}/nothing-here.pem"),
        ),
    ] {
        let mut body = notification(&topic, id, "2", &url);
        sign(&pki, "signing.key", &mut body);
        refused.push(body);
    }
    let mut unsigned_confirmation = json!({
        "Type": "SubscriptionConfirmation", "MessageId": "c-1", "Token": "tok",
        "TopicArn": topic, "Message": "confirm",
        "SubscribeURL": format!("{}/?Action=ConfirmSubscription", s3.endpoint),
        "Timestamp": "2026-12-07T12:00:00.000Z", "SignatureVersion": "2", "Signature": "",
        "SigningCertURL": cert_url
    });
    refused.push(unsigned_confirmation.clone());
    for body in &refused {
        let (status, text) = post(&kumo, body);
        assert_eq!(status, 403, "{}: {text}", body["MessageId"]);
    }

    // A signed confirmation is confirmed.
    sign(&pki, "signing.key", &mut unsigned_confirmation);
    let (status, text) = post(&kumo, &unsigned_confirmation);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("confirmed"), "{text}");

    wait_until("both signed events", Duration::from_secs(60), || {
        sink.records()
            .iter()
            .filter(|r| r["function"] == "verified")
            .count()
            >= 2
    });
    let mut ids: Vec<String> = sink
        .records()
        .iter()
        .filter(|r| r["function"] == "verified")
        .map(|r| {
            r["event"]["Records"][0]["Sns"]["MessageId"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["good-1".to_string(), "good-2".to_string()]);
}
