//! kumod's gRPC API over real listeners, a real sled store in a temp dir,
//! and (for dispatch) an agent speaking the real agent protocol.

use std::time::Duration;

use kumo_proto::agent::{
    agent_message, daemon_message, AgentMessage, FetchPackageRequest, InvocationResult, Outcome,
    Register,
};
use kumo_proto::control::*;
use tonic::Code;

mod common;
use common::{agent_client, config, create, get_function, invocation, package, start, zip_with};

#[tokio::test]
async fn crud_round_trip_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut client) = start(dir.path()).await;
    let info = create(&mut client, config("div"), package()).await.unwrap();
    assert_eq!(info.version, "$LATEST");
    assert_eq!(
        info.function_arn,
        "arn:aws:lambda:us-east-1:000000000000:function:div"
    );
    let c = info.config.clone().unwrap();
    assert_eq!(
        (c.memory_mb, c.timeout_seconds, c.ephemeral_storage_mb),
        (Some(128), Some(3), Some(512))
    );
    assert_eq!(info.package_digest.len(), 64);

    let updated = client
        .update_function_configuration(UpdateFunctionConfigurationRequest {
            name: "div".into(),
            memory_mb: Some(256),
            set_environment: true,
            environment: [("GREETING".to_string(), "hi".to_string())].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.config.as_ref().unwrap().memory_mb, Some(256));
    assert_eq!(updated.revision, info.revision + 1);

    let new_code = zip_with(&[("lambda_function.py", b"def handler(e, c):\n    return 1\n")]);
    let recoded = client
        .update_function_code(UpdateFunctionCodeRequest {
            name: "div".into(),
            zip: new_code.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(recoded.package_digest, info.package_digest);
    // A stale RevisionId is refused and changes nothing.
    let stale = client
        .update_function_code(UpdateFunctionCodeRequest {
            name: "div".into(),
            zip: package(),
            expect_revision_id: "00000000-0000-0000-0000-000000000000".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition, "{stale:?}");
    assert!(stale.message().contains("RevisionId"), "{stale:?}");
    assert_eq!(
        get_function(&mut client, "div").await.revision,
        recoded.revision
    );
    // The replaced blob is gone; the new one is stored.
    assert!(!dir
        .path()
        .join(format!("packages/{}.zip", info.package_digest))
        .exists());
    assert!(dir
        .path()
        .join(format!("packages/{}.zip", recoded.package_digest))
        .exists());

    let list = client
        .list_functions(ListFunctionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.functions.len(), 1);
    daemon.shutdown().await.unwrap();

    // Everything survives a restart on the same data dir.
    let (daemon, mut client) = start(dir.path()).await;
    let got = get_function(&mut client, "div").await;
    assert_eq!(got.package_digest, recoded.package_digest);
    assert_eq!(got.config.unwrap().environment["GREETING"], "hi");
    client
        .delete_function(DeleteFunctionRequest { name: "div".into() })
        .await
        .unwrap();
    let err = client
        .get_function(GetFunctionRequest { name: "div".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message()
            .starts_with("Function not found: arn:aws:lambda:"),
        "{}",
        err.message()
    );
    daemon.shutdown().await.unwrap();
}

#[tokio::test]
async fn hostile_configuration_and_packages_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut client) = start(dir.path()).await;
    let cases: Vec<(FunctionConfig, &str)> = vec![
        (config("bad/name"), "invalid name"),
        (
            FunctionConfig {
                memory_mb: Some(64),
                ..config("m1")
            },
            "invalid memory_mb",
        ),
        (
            FunctionConfig {
                memory_mb: Some(20000),
                ..config("m2")
            },
            "invalid memory_mb",
        ),
        (
            FunctionConfig {
                timeout_seconds: Some(0),
                ..config("t1")
            },
            "invalid timeout_seconds",
        ),
        (
            FunctionConfig {
                timeout_seconds: Some(901),
                ..config("t2")
            },
            "invalid timeout_seconds",
        ),
        (
            FunctionConfig {
                handler: "handler".into(),
                ..config("h1")
            },
            "file.function",
        ),
        (
            FunctionConfig {
                runtime: "ruby".into(),
                ..config("r1")
            },
            "invalid runtime",
        ),
        (
            FunctionConfig {
                environment: [("AWS_REGION".to_string(), "x".to_string())].into(),
                ..config("e1")
            },
            "reserved",
        ),
    ];
    for (cfg, expected) in cases {
        let err = create(&mut client, cfg, package()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(
            err.message().contains(expected),
            "{} lacks {expected}",
            err.message()
        );
    }
    let packages: Vec<(Vec<u8>, &str)> = vec![
        (b"this is not a zip".to_vec(), "not a valid zip"),
        (zip_with(&[("../evil.py", b"x")]), "'..'"),
        (zip_with(&[("/abs.py", b"x")]), "absolute"),
        (vec![0u8; 51 * 1024 * 1024], "50 MB"),
    ];
    for (zip, expected) in packages {
        let err = create(&mut client, config("pkg"), zip).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(
            err.message().contains(expected),
            "{} lacks {expected}",
            err.message()
        );
    }
    create(&mut client, config("dup"), package()).await.unwrap();
    let err = create(&mut client, config("dup"), package())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    for name in ["missing"] {
        let err = client
            .update_function_code(UpdateFunctionCodeRequest {
                name: name.into(),
                zip: package(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = client
            .delete_function(DeleteFunctionRequest { name: name.into() })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }
    daemon.shutdown().await.unwrap();
}

#[tokio::test]
async fn invoke_refusals_and_no_agent() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut client) = start(dir.path()).await;
    create(&mut client, config("f"), package()).await.unwrap();
    let invoke =
        |name: &str, payload: Vec<u8>| invocation(name, &payload, InvocationType::RequestResponse);
    let err = client
        .invoke(invoke("nope", b"{}".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("Function not found"),
        "{}",
        err.message()
    );
    let err = client
        .invoke(invoke("f", b"{not json".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("Could not parse request body into json"),
        "{}",
        err.message()
    );
    let big = format!("\"{}\"", "x".repeat(7 * 1024 * 1024)).into_bytes();
    let err = client.invoke(invoke("f", big)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("RequestTooLargeException"),
        "{}",
        err.message()
    );
    let err = client
        .invoke(invoke("f:prod", b"{}".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let dry = client
        .invoke(InvokeRequest {
            invocation_type: InvocationType::DryRun as i32,
            ..invoke("f", b"{}".to_vec())
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dry.executed_version, "$LATEST");
    let err = client
        .invoke(invoke("f", b"{}".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        err.message().contains("no agent connected"),
        "{}",
        err.message()
    );
    daemon.shutdown().await.unwrap();
}

/// An agent written against the real protocol: registers, fetches the
/// package, answers the invocation; kumod returns the answer and keeps the log.
#[tokio::test]
async fn agent_protocol_dispatch_fetch_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut client) = start(dir.path()).await;
    let zip = package();
    let info = create(&mut client, config("echo"), zip.clone())
        .await
        .unwrap();

    let mut agent = agent_client(&daemon, dir.path()).await;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tx.send(AgentMessage {
        body: Some(agent_message::Body::Register(Register {
            agent_id: "test-agent".into(),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut inbound = agent
        .attach(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let first = inbound.message().await.unwrap().unwrap();
    assert!(matches!(
        first.body,
        Some(daemon_message::Body::Registered(_))
    ));

    let mut fetch = agent.clone();
    let worker = tokio::spawn(async move {
        let message = inbound.message().await.unwrap().unwrap();
        let Some(daemon_message::Body::Invoke(invocation)) = message.body else {
            panic!("expected an invocation");
        };
        let spec = invocation.function.clone().unwrap();
        let mut stream = fetch
            .fetch_package(FetchPackageRequest {
                digest: spec.package_digest.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await.unwrap() {
            bytes.extend_from_slice(&chunk.data);
        }
        // The caller asked for the tail: the agent builds it (with REPORT).
        assert!(invocation.log_tail, "the Tail request reaches the agent");
        let log = format!("START RequestId: {} Version: $LATEST\nhi\nEND RequestId: {0}\nREPORT RequestId: {0}\tDuration: 1.00 ms\t\n", invocation.request_id);
        tx.send(AgentMessage {
            body: Some(agent_message::Body::Result(InvocationResult {
                invocation_id: invocation.invocation_id,
                request_id: invocation.request_id.clone(),
                outcome: Outcome::Success as i32,
                payload: invocation.payload.clone(),
                log_tail: log.clone(),
                log,
                executed_version: "$LATEST".into(),
                ..Default::default()
            })),
        })
        .await
        .unwrap();
        (bytes, tx)
    });
    let response = client
        .invoke(InvokeRequest {
            function_name: "echo".into(),
            payload: br#"{"x": 1}"#.to_vec(),
            log_tail: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (fetched, _tx) = worker.await.unwrap();
    assert_eq!(fetched, zip, "FetchPackage returns the stored bytes");
    assert_eq!(response.payload, br#"{"x": 1}"#);
    assert!(response.function_error.is_empty());
    assert!(response.log_tail.contains("\nhi\n") && response.log_tail.contains("REPORT"));

    let mut logs = client
        .get_logs(GetLogsRequest {
            function_name: "echo".into(),
            request_id: response.request_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let event = tokio::time::timeout(Duration::from_secs(5), logs.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(event.text.contains("REPORT RequestId"));
    assert_eq!(event.request_id, response.request_id);
    let _ = info;
    daemon.shutdown().await.unwrap();
}
