use super::*;
use crate::s3_event::EventFormat;

/// The body MinIO posts for a PUT, as in docs/wire-formats.md §5b.
fn minio_body(event: &str, bucket: &str, key: &str) -> String {
    format!(
        r#"{{"EventName":"{event}","Key":"{bucket}/{key}","Records":[{{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2019-09-10T17:41:54.123Z","eventName":"{event}","userIdentity":{{"principalId":"minio"}},"requestParameters":{{"principalId":"minio","region":"","sourceIPAddress":"127.0.0.1"}},"responseElements":{{"x-amz-request-id":"15C32494527B46C5","x-minio-deployment-id":"d1","x-minio-origin-endpoint":"http://127.0.0.1:9000"}},"s3":{{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{{"name":"{bucket}","ownerIdentity":{{"principalId":"minio"}},"arn":"arn:aws:s3:::{bucket}"}},"object":{{"key":"{key}","size":6474,"eTag":"e","contentType":"image/jpeg","userMetadata":{{"content-type":"image/jpeg"}},"versionId":"1","sequencer":"15C32494527B46C5"}}}},"source":{{"host":"127.0.0.1","port":"","userAgent":"MinIO"}}}}]}}"#
    )
}

#[test]
fn a_minio_put_is_parsed_and_its_key_decoded() {
    let body = minio_body("s3:ObjectCreated:Put", "images", "photos%2Fmy+photo.jpg");
    let events = parse_body(body.as_bytes()).unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.event_name, "s3:ObjectCreated:Put");
    assert_eq!(e.bucket, "images");
    assert_eq!(e.raw_key, "photos%2Fmy+photo.jpg");
    assert_eq!(e.key, b"photos/my photo.jpg");
    assert_eq!(e.s3_key(), "photos/my+photo.jpg");
    assert_eq!(e.version_id, "1");
    assert_eq!(e.sequencer, "15C32494527B46C5");
    let minio = e.payload(EventFormat::Minio, "eu-west-1");
    assert_eq!(minio["Records"][0], e.record, "verbatim");
    assert_eq!(minio.as_object().unwrap().len(), 1, "only Records");
}

#[test]
fn the_aws_payload_has_s3s_shape_and_keeps_minio_extras() {
    let body = minio_body(
        "s3:ObjectCreated:Put",
        "images",
        "photos%2Fmy+photo+%281%29.jpg",
    );
    let e = &parse_body(body.as_bytes()).unwrap()[0];
    let payload = e.payload(EventFormat::Aws, "eu-west-1");
    assert_eq!(payload.as_object().unwrap().len(), 1, "only Records");
    let r = &payload["Records"][0];
    assert_eq!(r["eventSource"], "aws:s3");
    assert_eq!(r["eventVersion"], "2.1");
    assert_eq!(r["eventName"], "ObjectCreated:Put");
    assert_eq!(r["awsRegion"], "eu-west-1");
    assert_eq!(r["s3"]["object"]["key"], "photos/my+photo+%281%29.jpg");
    assert_eq!(r["s3"]["object"]["size"], 6474);
    assert_eq!(r["s3"]["object"]["sequencer"], "15C32494527B46C5");
    assert_eq!(r["s3"]["bucket"]["arn"], "arn:aws:s3:::images");
    assert_eq!(r["eventTime"], "2019-09-10T17:41:54.123Z");
    assert_eq!(r["requestParameters"]["sourceIPAddress"], "127.0.0.1");
    assert_eq!(r["responseElements"]["x-minio-deployment-id"], "d1");
    assert_eq!(r["source"]["userAgent"], "MinIO");
    assert_eq!(
        r["s3"]["object"]["userMetadata"]["content-type"],
        "image/jpeg"
    );
}

#[test]
fn keys_with_nul_or_invalid_utf8_keep_every_byte() {
    for (raw, bytes, s3) in [
        ("x%00y", &b"x\0y"[..], "x%00y"),
        ("bad%FF%FEname", b"bad\xff\xfename", "bad%FF%FEname"),
        ("a%2Bb%252Bc.txt", b"a+b%2Bc.txt", "a%2Bb%252Bc.txt"),
    ] {
        let body = minio_body("s3:ObjectCreated:Put", "b", raw);
        let e = &parse_body(body.as_bytes()).unwrap()[0];
        assert_eq!(e.key, bytes, "{raw}");
        assert_eq!(e.s3_key(), s3, "{raw}");
        let payload = e.payload(EventFormat::Aws, "r");
        assert_eq!(payload["Records"][0]["s3"]["object"]["key"], s3);
        let filter = EventFilter {
            bucket: "b".into(),
            events: vec!["s3:ObjectCreated:*".into()],
            prefix: String::new(),
            suffix: String::new(),
        };
        assert!(filter.matches(e));
    }
}

#[test]
fn keys_decode_like_go_query_unescape() {
    assert_eq!(decode_key("a%2Fb%2Fc.txt").unwrap(), b"a/b/c.txt");
    assert_eq!(decode_key("my+file").unwrap(), b"my file");
    assert_eq!(decode_key("%2B").unwrap(), b"+");
    assert_eq!(
        decode_key("caf%C3%A9%2F%E6%97%A5").unwrap(),
        "café/日".as_bytes()
    );
    assert_eq!(decode_key("plain/é").unwrap(), "plain/é".as_bytes());
    assert_eq!(
        decode_key("%ff%fe").unwrap(),
        b"\xff\xfe",
        "kept, not refused"
    );
    assert!(decode_key("bad%zz").is_err());
    assert!(decode_key("cut%4").is_err());
}

#[test]
fn delete_events_without_size_or_etag_are_fine() {
    let body = r#"{"EventName":"s3:ObjectRemoved:Delete","Key":"b/k","Records":[{"eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k","sequencer":"1"}}}]}"#;
    let events = parse_body(body.as_bytes()).unwrap();
    assert_eq!(events[0].event_name, "s3:ObjectRemoved:Delete");
    assert_eq!(events[0].version_id, "");
}

#[test]
fn garbage_is_refused_with_a_reason() {
    assert!(matches!(
        parse_body(b"not json"),
        Err(WebhookError::NotJson(_))
    ));
    assert_eq!(parse_body(b"{}"), Err(WebhookError::NoRecords));
    assert_eq!(
        parse_body(br#"{"Records":[]}"#),
        Err(WebhookError::NoRecords)
    );
    assert_eq!(
        parse_body(br#"{"Records":"x"}"#),
        Err(WebhookError::NoRecords)
    );
    let err = parse_body(br#"{"Records":[{"eventName":"s3:ObjectCreated:Put"}]}"#).unwrap_err();
    assert!(err.to_string().contains("s3.bucket.name"), "{err}");
    let err = parse_body(
        br#"{"Records":[{"eventName":"x","s3":{"bucket":{"name":"b"},"object":{"key":"%"}}}]}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("escape"), "{err}");
    assert!(parse_body(br#"{"Records":[1]}"#).is_err());
}

#[test]
fn aws_format_names_get_the_s3_prefix() {
    let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
    assert_eq!(
        parse_body(body.as_bytes()).unwrap()[0].event_name,
        "s3:ObjectCreated:Put"
    );
}

#[test]
fn identity_separates_deliveries() {
    let a = &parse_body(minio_body("s3:ObjectCreated:Put", "b", "k").as_bytes()).unwrap()[0];
    let b = &parse_body(minio_body("s3:ObjectRemoved:Delete", "b", "k").as_bytes()).unwrap()[0];
    assert_ne!(a.identity(), b.identity());
    let again = &parse_body(minio_body("s3:ObjectCreated:Put", "b", "k").as_bytes()).unwrap()[0];
    assert_eq!(a.identity(), again.identity());
}

#[test]
fn patterns_normalize() {
    let p = |list: &[&str]| {
        normalize_event_patterns(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    };
    assert_eq!(p(&[]).unwrap(), ["s3:ObjectCreated:*"]);
    assert_eq!(
        p(&["put", "delete"]).unwrap(),
        ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    );
    assert_eq!(
        p(&["ObjectCreated:Put", "s3:ObjectCreated:Put"]).unwrap(),
        ["s3:ObjectCreated:Put"]
    );
    assert!(p(&["s3:Nope:*"]).is_err());
    assert!(p(&["s3:ObjectCreated"]).is_err());
    assert!(p(&["s3:ObjectCreated:P*t"]).is_err());
}

#[test]
fn filters_match_decoded_keys_and_patterns() {
    let filter = EventFilter {
        bucket: "images".into(),
        events: vec![
            "s3:ObjectCreated:*".into(),
            "s3:ObjectRemoved:Delete".into(),
        ],
        prefix: "photos/".into(),
        suffix: ".jpg".into(),
    };
    let event = |name: &str, bucket: &str, key: &str| {
        parse_body(minio_body(name, bucket, key).as_bytes())
            .unwrap()
            .remove(0)
    };
    assert!(filter.matches(&event("s3:ObjectCreated:Put", "images", "photos%2Fa+b.jpg")));
    assert!(filter.matches(&event(
        "s3:ObjectCreated:CompleteMultipartUpload",
        "images",
        "photos%2Fx.jpg"
    )));
    assert!(filter.matches(&event(
        "s3:ObjectRemoved:Delete",
        "images",
        "photos%2Fx.jpg"
    )));
    assert!(!filter.matches(&event(
        "s3:ObjectRemoved:DeleteMarkerCreated",
        "images",
        "photos%2Fx.jpg"
    )));
    assert!(!filter.matches(&event("s3:ObjectAccessed:Get", "images", "photos%2Fx.jpg")));
    assert!(!filter.matches(&event("s3:ObjectCreated:Put", "other", "photos%2Fx.jpg")));
    assert!(!filter.matches(&event("s3:ObjectCreated:Put", "images", "videos%2Fx.jpg")));
    assert!(!filter.matches(&event("s3:ObjectCreated:Put", "images", "photos%2Fx.png")));
    // The raw key "photos%2F…" does not start with "photos/": decoding matters.
    let unicode = EventFilter {
        prefix: "café/".into(),
        suffix: String::new(),
        ..filter.clone()
    };
    assert!(unicode.matches(&event("s3:ObjectCreated:Put", "images", "caf%C3%A9%2Fx")));
}
