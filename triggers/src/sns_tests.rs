//! Tests of SNS deliveries, URL checks and signatures; the signatures are
//! made with the `openssl` CLI and a key and certificate it creates.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use serde_json::json;

use super::*;
use crate::sns_signature::{verify, SignatureError};

fn notification() -> serde_json::Value {
    json!({
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:orders",
        "Subject": "hello",
        "Message": "a message\nwith two lines",
        "Timestamp": "2026-12-07T12:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        "MessageAttributes": {"colour": {"Type": "String", "Value": "red"}}
    })
}

fn parse(value: &serde_json::Value) -> Result<Delivery, DeliveryError> {
    Delivery::parse(value.to_string().as_bytes())
}

#[test]
fn a_notification_becomes_the_lambda_event() {
    let delivery = parse(&notification()).unwrap();
    assert_eq!(delivery.message_type, MessageType::Notification);
    let event = delivery.lambda_event("arn:aws:sns:us-east-1:123456789012:orders:sub");
    let record = &event["Records"][0];
    assert_eq!(record["EventSource"], "aws:sns");
    assert_eq!(record["EventVersion"], "1.0");
    assert_eq!(
        record["EventSubscriptionArn"],
        "arn:aws:sns:us-east-1:123456789012:orders:sub"
    );
    let sns = &record["Sns"];
    assert_eq!(
        sns["SigningCertUrl"],
        "https://sns.us-east-1.amazonaws.com/cert.pem"
    );
    assert_eq!(
        sns["UnsubscribeUrl"],
        "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
    );
    assert!(sns.get("SigningCertURL").is_none());
    assert_eq!(sns["Subject"], "hello");
    assert_eq!(sns["Type"], "Notification");
    assert_eq!(sns["MessageAttributes"]["colour"]["Value"], "red");
    let mut no_subject = notification();
    no_subject.as_object_mut().unwrap().remove("Subject");
    let event = parse(&no_subject).unwrap().lambda_event("s");
    assert!(event["Records"][0]["Sns"]["Subject"].is_null());
}

#[test]
fn the_string_to_sign_follows_the_type() {
    let delivery = parse(&notification()).unwrap();
    assert_eq!(
        delivery.string_to_sign(),
        "Message\na message\nwith two lines\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nhello\nTimestamp\n2026-12-07T12:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:123456789012:orders\nType\nNotification\n"
    );
    let confirmation = json!({
        "Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "t",
        "TopicArn": "arn:aws:sns:us-east-1:1:x", "Message": "confirm",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
        "Timestamp": "ts", "SignatureVersion": "2", "Signature": "",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/c.pem"
    });
    assert_eq!(
        parse(&confirmation).unwrap().string_to_sign(),
        "Message\nconfirm\nMessageId\nm\nSubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription\nTimestamp\nts\nToken\nt\nTopicArn\narn:aws:sns:us-east-1:1:x\nType\nSubscriptionConfirmation\n"
    );
}

#[test]
fn garbage_bodies_are_refused() {
    assert!(Delivery::parse(b"").is_err());
    assert!(Delivery::parse(b"\xff\x00garbage").is_err());
    assert!(Delivery::parse(b"[]").is_err());
    assert!(Delivery::parse(&vec![b' '; MAX_BODY_BYTES + 1]).is_err());
    let mut bad = notification();
    bad["Type"] = json!("Bogus");
    assert!(parse(&bad).is_err());
    let mut bad = notification();
    bad["SignatureVersion"] = json!("3");
    assert!(parse(&bad).is_err());
    let mut bad = notification();
    bad["MessageAttributes"] = json!({"a": "plain"});
    assert!(parse(&bad).is_err());
    let mut bad = notification();
    bad.as_object_mut().unwrap().remove("MessageId");
    assert!(parse(&bad).is_err());
    let mut confirmation = notification();
    confirmation["Type"] = json!("SubscriptionConfirmation");
    assert_eq!(
        parse(&confirmation).unwrap_err(),
        DeliveryError::Missing {
            kind: "SubscriptionConfirmation",
            field: "Token"
        }
    );
}

#[test]
fn urls_must_be_on_the_sns_host() {
    let host = sns_host("", "eu-west-1").unwrap();
    assert_eq!(host, "sns.eu-west-1.amazonaws.com");
    assert!(check_url(
        "SigningCertURL",
        "https://sns.eu-west-1.amazonaws.com/x.pem",
        &host,
        true
    )
    .is_ok());
    assert!(check_url(
        "SigningCertURL",
        "https://sns.eu-west-1.amazonaws.com:443/x.pem",
        &host,
        true
    )
    .is_ok());
    for url in [
        "http://sns.eu-west-1.amazonaws.com/x.pem",
        "https://evil.example/x.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem",
        "https://sns.eu-west-1.amazonaws.com@evil.example/x.pem",
        "file:///etc/passwd",
        "sns.eu-west-1.amazonaws.com/x.pem",
    ] {
        assert!(
            check_url("SigningCertURL", url, &host, true).is_err(),
            "{url}"
        );
    }
    let local = sns_host("http://127.0.0.1:5000", "us-east-1").unwrap();
    assert_eq!(local, "127.0.0.1:5000");
    assert!(check_url(
        "SubscribeURL",
        "http://127.0.0.1:5000/?Action=x",
        &local,
        false
    )
    .is_ok());
    assert!(check_url(
        "SubscribeURL",
        "http://127.0.0.1:5001/?Action=x",
        &local,
        false
    )
    .is_err());
    assert!(check_url("SubscribeURL", "http://10.0.0.1:5000/", &local, false).is_err());
}

/// An RSA key and a self-signed certificate made by openssl in `dir`.
fn key_and_cert(dir: &Path, name: &str) -> (std::path::PathBuf, Vec<u8>) {
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=sns-test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("running openssl");
    assert!(status.status.success(), "{status:?}");
    (key, std::fs::read(&cert).unwrap())
}

/// Signs `delivery` with `key` for its `SignatureVersion`.
fn sign(dir: &Path, key: &Path, delivery: &mut Delivery) {
    let input = dir.join("to-sign");
    let output = dir.join("signature");
    std::fs::write(&input, delivery.string_to_sign()).unwrap();
    let digest = if delivery.signature_version == "1" {
        "-sha1"
    } else {
        "-sha256"
    };
    let status = Command::new("openssl")
        .args(["dgst", digest, "-sign"])
        .arg(key)
        .arg("-out")
        .arg(&output)
        .arg(&input)
        .output()
        .expect("running openssl");
    assert!(status.status.success(), "{status:?}");
    delivery.signature =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&output).unwrap());
}

#[test]
fn signatures_of_both_versions_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = key_and_cert(dir.path(), "sns");
    let (other_key, other_cert) = key_and_cert(dir.path(), "other");
    let der = x509_parser::pem::parse_x509_pem(&cert).unwrap().1.contents;
    for version in ["1", "2"] {
        let mut delivery = parse(&notification()).unwrap();
        delivery.signature_version = version.into();
        sign(dir.path(), &key, &mut delivery);
        assert_eq!(verify(&delivery, &cert), Ok(()), "version {version}");
        assert_eq!(verify(&delivery, &der), Ok(()), "version {version}, DER");
        assert_eq!(
            verify(&delivery, &other_cert),
            Err(SignatureError::Mismatch)
        );
        let mut tampered = delivery.clone();
        tampered.message.push('!');
        assert_eq!(verify(&tampered, &cert), Err(SignatureError::Mismatch));
        let mut tampered = delivery.clone();
        tampered.subject = None;
        assert_eq!(verify(&tampered, &cert), Err(SignatureError::Mismatch));
        let mut other = delivery.clone();
        sign(dir.path(), &other_key, &mut other);
        assert_eq!(verify(&other, &cert), Err(SignatureError::Mismatch));
        let mut garbled = delivery.clone();
        garbled.signature = "not base64!".into();
        assert_eq!(verify(&garbled, &cert), Err(SignatureError::Encoding));
        assert!(matches!(
            verify(&delivery, b"not a certificate"),
            Err(SignatureError::Certificate(_))
        ));
    }
    // A version-1 signature does not pass as version 2.
    let mut delivery = parse(&notification()).unwrap();
    sign(dir.path(), &key, &mut delivery);
    delivery.signature_version = "2".into();
    assert_eq!(verify(&delivery, &cert), Err(SignatureError::Mismatch));
}
