//! The asynchronous side of kumod's gRPC API over real listeners and a
//! real sled store: durable accept (202 and an event id, kept across a
//! restart), refusals at the door, throttling codes, queue counters and
//! dead-letter calls.

use kumo_proto::control::*;
use tonic::Code;

mod common;
use common::{config, create, get_function, invocation, package, start, start_with};

fn event(name: &str, payload: &[u8]) -> InvokeRequest {
    invocation(name, payload, InvocationType::Event)
}

#[tokio::test]
async fn accepted_events_are_durable_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut client) = start(dir.path()).await;
    create(&mut client, config("f"), package()).await.unwrap();
    let accepted = client
        .invoke(event("f", br#"{"n":1}"#))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.status_code, 202);
    assert_eq!(accepted.request_id.len(), 36, "{accepted:?}");
    let info = get_function(&mut client, "f").await;
    let queue = info.queue.unwrap();
    // No agent is attached: the event waits (queued or trying to dispatch).
    assert_eq!(queue.queued + queue.in_flight, 1, "{queue:?}");
    daemon.shutdown().await.unwrap();

    // A new kumod on the same data finds the event again.
    let (daemon, mut client) = start(dir.path()).await;
    let info = get_function(&mut client, "f").await;
    let queue = info.queue.unwrap();
    assert_eq!(queue.queued + queue.in_flight, 1, "{queue:?}");
    let letters = client
        .list_dead_letters(ListDeadLettersRequest {
            function_name: "f".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(letters.dead_letters.is_empty());
    daemon.shutdown().await.unwrap();
}

#[tokio::test]
async fn refusals_and_throttles_have_precise_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut client) = start_with(dir.path(), |c| c.concurrency_limit = 10).await;
    let err = client.invoke(event("missing", b"{}")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    create(&mut client, config("f"), package()).await.unwrap();
    let big = format!("\"{}\"", "x".repeat(257 * 1024));
    let err = client.invoke(event("f", big.as_bytes())).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("RequestTooLargeException"),
        "{}",
        err.message()
    );
    let err = client.invoke(event("f", b"{nope")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    for (update, field) in [
        (
            UpdateFunctionConfigurationRequest {
                max_retry_attempts: Some(3),
                ..Default::default()
            },
            "max_retry_attempts",
        ),
        (
            UpdateFunctionConfigurationRequest {
                max_event_age_seconds: Some(30),
                ..Default::default()
            },
            "max_event_age_seconds",
        ),
        (
            UpdateFunctionConfigurationRequest {
                reserved_concurrency: Some(-2),
                ..Default::default()
            },
            "reserved_concurrency",
        ),
        (
            UpdateFunctionConfigurationRequest {
                reserved_concurrency: Some(10),
                ..Default::default()
            },
            "reserved_concurrency",
        ),
    ] {
        let err = client
            .update_function_configuration(UpdateFunctionConfigurationRequest {
                name: "f".into(),
                ..update
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(err.message().contains(field), "{}", err.message());
    }

    client
        .update_function_configuration(UpdateFunctionConfigurationRequest {
            name: "f".into(),
            reserved_concurrency: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    let err = client
        .invoke(InvokeRequest {
            function_name: "f".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message()
            .starts_with("ReservedFunctionConcurrentInvocationLimitExceeded"),
        "{}",
        err.message()
    );
    let err = client
        .get_dead_letter(GetDeadLetterRequest {
            function_name: "f".into(),
            id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .replay_dead_letters(ReplayDeadLettersRequest {
            function_name: "f".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    daemon.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_zero_concurrency_limit_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = kumo_daemon::config::DaemonConfig {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        concurrency_limit: 0,
        ..Default::default()
    };
    let err = kumo_daemon::server::start(&config).await.err().unwrap();
    assert!(err.to_string().contains("concurrency_limit"), "{err}");
}

#[tokio::test]
async fn functions_are_invoked_by_full_and_partial_arn() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut client) = start(dir.path()).await;
    let arn = create(&mut client, config("f"), package())
        .await
        .unwrap()
        .function_arn;
    assert!(arn.starts_with("arn:aws:lambda:"), "{arn}");
    let accepted = client
        .invoke(event(&arn, br#"{"n":1}"#))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.status_code, 202, "{accepted:?}");
    let account = arn.split(':').nth(4).unwrap().to_string();
    let partial = format!("{account}:function:f:$LATEST");
    assert_eq!(
        client
            .invoke(event(&partial, b"{}"))
            .await
            .unwrap()
            .into_inner()
            .status_code,
        202
    );
    let queue = client
        .get_function(GetFunctionRequest { name: "f".into() })
        .await
        .unwrap()
        .into_inner()
        .queue
        .unwrap();
    assert_eq!(queue.queued + queue.in_flight, 2, "{queue:?}");
    let dry_run = InvokeRequest {
        invocation_type: InvocationType::DryRun as i32,
        ..event(&arn, b"")
    };
    assert_eq!(
        client
            .invoke(dry_run)
            .await
            .unwrap()
            .into_inner()
            .status_code,
        204
    );

    let elsewhere = arn.replace(":us-east-1:", ":eu-west-1:");
    assert_ne!(elsewhere, arn);
    let err = client.invoke(event(&elsewhere, b"{}")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    let other_account = arn.replace(&format!(":{account}:"), ":123456789012:");
    let err = client
        .invoke(event(&other_account, b"{}"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    let mismatch = InvokeRequest {
        qualifier: "2".into(),
        ..event(&format!("{arn}:1"), b"{}")
    };
    let err = client.invoke(mismatch).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    daemon.shutdown().await.unwrap();
}
