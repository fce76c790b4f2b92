//! Kumo with a real S3-compatible server (moto, see tests/s3-server.sh):
//! a package fetched from `s3://`, `--configure-bucket` writing the
//! bucket's MinIO notification configuration through aws-sdk-s3, and the
//! book's example end to end — an upload's webhook makes a function (boto3
//! bundled, credentials from a profile) write a password-protected zip of
//! the object to another bucket.

use std::time::{Duration, Instant};

use kumo_tests::http::{minio_event, post_minio};
use kumo_tests::s3::{unique_bucket as bucket, S3Server};
use kumo_tests::{fixture, root_or_skip, Kumo};

#[test]
fn the_book_example_zips_an_upload_into_another_bucket() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().unwrap();
    let (input, output, packages) = (
        bucket("kumo-in"),
        bucket("kumo-out"),
        bucket("kumo-packages"),
    );
    s3.boto3(
        "for b in sys.argv[1:]: s3.create_bucket(Bucket=b)",
        &[&input, &output, &packages],
    );
    // The package (handler + boto3 + pyzipper) goes to S3; kumod fetches it.
    let zip = work.path().join("zipper.zip");
    s3.package_with_vendor(&[&fixture("zipper").join("lambda_function.py")], &zip);
    s3.boto3(
        "s3.upload_file(sys.argv[1], sys.argv[2], 'zipper.zip')",
        &[&zip.to_string_lossy(), &packages],
    );

    let kumo = Kumo::start_configured(
        &format!(
            "[triggers]\nminio_auth_token = \"hook-token\"\n\n{}",
            s3.profile_toml("store", work.path())
        ),
        "",
    );
    let code = format!("s3://{packages}/zipper.zip");
    let output_env = format!("OUTPUT_BUCKET={output}");
    kumo.create(
        "zipper",
        "python3",
        "lambda_function.lambda_handler",
        std::path::Path::new(&code),
        &[
            "--s3-profile",
            "store",
            "--credentials",
            "store",
            "--network",
            "host",
            "--memory",
            "256",
            "--timeout",
            "60",
            "--env",
            &output_env,
            "--env",
            "ZIP_PASSWORD=correct horse",
        ],
    );
    let info = kumo.function("zipper");
    assert_eq!(info["credentials_profile"], "store");
    assert!(info["code_size"].as_u64().unwrap() > 1_000_000, "{info}");

    let run = kumo.cli(&[
        "trigger",
        "create",
        "uploads",
        "--function",
        "zipper",
        "--bucket",
        &input,
        "--events",
        "put",
        "--suffix",
        ".txt",
        "--configure-bucket",
        "--s3-profile",
        "store",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    // The bucket now notifies Kumo's MinIO webhook target.
    let config = s3.boto3(
        "import json\nprint(json.dumps(s3.get_bucket_notification_configuration(Bucket=sys.argv[1]).get('QueueConfigurations', [])))",
        &[&input],
    );
    let queues: serde_json::Value = serde_json::from_str(config.trim()).unwrap();
    assert_eq!(queues.as_array().unwrap().len(), 1, "{queues}");
    assert_eq!(queues[0]["Id"], "kumo-uploads");
    assert_eq!(
        queues[0]["QueueArn"],
        "arn:minio:sqs:us-east-1:KUMO:webhook"
    );
    assert_eq!(
        queues[0]["Events"],
        serde_json::json!(["s3:ObjectCreated:*"])
    );
    assert_eq!(
        queues[0]["Filter"]["Key"]["FilterRules"][0]["Name"],
        "suffix"
    );
    assert_eq!(
        queues[0]["Filter"]["Key"]["FilterRules"][0]["Value"],
        ".txt"
    );

    // A file lands in the input bucket; MinIO would post this webhook.
    s3.boto3(
        "s3.put_object(Bucket=sys.argv[1], Key='reports/q3 summary.txt', Body=b'quarterly numbers\\n' * 100)",
        &[&input],
    );
    let body = minio_event(
        "s3:ObjectCreated:Put",
        &input,
        "reports%2Fq3+summary.txt",
        "D1",
    );
    let reply = post_minio(&kumo.http_address, Some("Bearer hook-token"), &body);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["queued"], 1, "{reply:?}");

    let deadline = Instant::now() + Duration::from_secs(90);
    let check = "import pyzipper, io\ntry:\n    data = s3.get_object(Bucket=sys.argv[1], Key='reports/q3 summary.txt.zip')['Body'].read()\nexcept s3.exceptions.NoSuchKey:\n    print('missing'); sys.exit(0)\nz = pyzipper.AESZipFile(io.BytesIO(data))\nz.setpassword(b'correct horse')\nprint(z.read('q3 summary.txt').decode().count('quarterly'))\ntry:\n    z.setpassword(b'wrong'); z.read('q3 summary.txt'); print('opened with a wrong password')\nexcept RuntimeError:\n    pass\n";
    loop {
        let found = s3.boto3(check, &[&output]);
        if found.trim() != "missing" {
            assert_eq!(
                found.trim(),
                "100",
                "the zip must hold the object, behind the password"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no zip in the output bucket; function logs:\n{}\n{}",
            kumo.logs("zipper"),
            kumo.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // Deleting the trigger removes the bucket configuration kumod made.
    assert_eq!(kumo.cli(&["trigger", "delete", "uploads"]).code, 0);
    let config = s3.boto3(
        "import json\nprint(json.dumps(s3.get_bucket_notification_configuration(Bucket=sys.argv[1]).get('QueueConfigurations', [])))",
        &[&input],
    );
    assert_eq!(config.trim(), "[]");
}

#[test]
fn s3_errors_are_clear() {
    if !root_or_skip() {
        return;
    }
    let s3 = S3Server::get();
    let work = tempfile::tempdir().unwrap();
    let kumo = Kumo::start_configured(&s3.profile_toml("store", work.path()), "");
    let code = fixture("division").to_string_lossy().into_owned();
    let create = |extra: &[&str]| {
        let mut args = vec![
            "function",
            "create",
            "f",
            "--runtime",
            "python3",
            "--handler",
            "lambda_function.myfunc01_handler",
        ];
        args.extend_from_slice(extra);
        kumo.cli(&args)
    };
    let run = create(&[
        "--code",
        "s3://no-such-bucket-kumo/x.zip",
        "--s3-profile",
        "store",
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("GetObject"), "{run:?}");
    let run = create(&["--code", "s3://b/x.zip", "--s3-profile", "ghost"]);
    assert!(run.stderr.contains("no AWS profile \"ghost\""), "{run:?}");
    let run = create(&["--code", "s3://b/x.zip"]);
    assert!(run.stderr.contains("--s3-profile"), "{run:?}");
    let run = create(&["--code", "s3://just-a-bucket", "--s3-profile", "store"]);
    assert!(run.stderr.contains("s3://bucket/key"), "{run:?}");
    let run = create(&["--code", &code, "--credentials", "ghost"]);
    assert!(run.stderr.contains("credentials_profile"), "{run:?}");
    assert!(kumo
        .cli(&["function", "list", "--output", "json"])
        .json()
        .as_array()
        .unwrap()
        .is_empty());
}
