//! The Runtime API server over raw HTTP: the Lambda headers of `/next`,
//! protocol errors with Lambda's status codes, oversize responses, and
//! error and init-error posts reaching the pending invocation.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};

use bytes::Bytes;
use kumo_agent::runtime_api::{self, RuntimeApi, RuntimeReply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{expect_error, expect_init_error, invocation, json, wait_reply, ARN};

struct RawResponse {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Sends one request on a fresh connection (`Connection: close`) and reads
/// the whole answer.
async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let (mut reader, mut writer) = stream.split();
    let request = [head.as_bytes(), body].concat();
    let mut answer = Vec::new();
    let (write, read) = tokio::join!(writer.write_all(&request), reader.read_to_end(&mut answer));
    write.unwrap();
    read.unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: answer[split + 4..].to_vec(),
    }
}

fn served() -> (RuntimeApi, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (RuntimeApi::serve(listener).unwrap(), addr)
}

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

#[tokio::test]
async fn next_answers_with_the_lambda_headers() {
    let (api, addr) = served();
    let mut inv = invocation("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", r#"{"k":1}"#);
    inv.client_context = Some("{\n \"custom\": {\"a\": 1}\n}".into());
    inv.cognito_identity = Some(r#"{"cognitoIdentityId":"x"}"#.into());
    let trace = inv.trace_id.clone();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let _reply = api.deliver(inv);
    let next = raw(addr, "GET", NEXT, &[], b"").await;
    assert_eq!(next.status, 200);
    assert_eq!(next.body, br#"{"k":1}"#);
    assert_eq!(next.headers["content-type"], "application/json");
    assert_eq!(
        next.headers["lambda-runtime-aws-request-id"],
        "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
    );
    assert_eq!(next.headers["lambda-runtime-invoked-function-arn"], ARN);
    assert_eq!(next.headers["lambda-runtime-trace-id"], trace);
    assert_eq!(
        next.headers["lambda-runtime-client-context"],
        r#"{"custom":{"a":1}}"#
    );
    assert_eq!(
        next.headers["lambda-runtime-cognito-identity"],
        r#"{"cognitoIdentityId":"x"}"#
    );
    let deadline: u128 = next.headers["lambda-runtime-deadline-ms"].parse().unwrap();
    assert!(
        deadline >= before + 3000 && deadline < before + 3000 + 5000,
        "{deadline} vs {before}"
    );
    assert!(api.has_requested_next());
}

#[tokio::test]
async fn protocol_errors_have_lambda_status_codes() {
    let (api, addr) = served();
    let id = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
    let reply = api.deliver(invocation(id, "{}"));
    assert_eq!(raw(addr, "GET", NEXT, &[], b"").await.status, 200);

    let unknown = raw(
        addr,
        "POST",
        "/2018-06-01/runtime/invocation/not-an-id/response",
        &[],
        b"1",
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(json(&unknown.body)["errorType"], "InvalidRequestID");

    let ok = raw(
        addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id}/response"),
        &[],
        b"\"done\"",
    )
    .await;
    assert_eq!(ok.status, 202);
    assert_eq!(ok.body, br#"{"status":"OK"}"#);
    assert_eq!(
        wait_reply(reply).await,
        RuntimeReply::Response(Bytes::from_static(b"\"done\""))
    );

    let again = raw(
        addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id}/response"),
        &[],
        b"2",
    )
    .await;
    assert_eq!(again.status, 403);
    assert_eq!(json(&again.body)["errorType"], "InvalidStateTransition");
    let error_after = raw(
        addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id}/error"),
        &[],
        b"{}",
    )
    .await;
    assert_eq!(error_after.status, 403);

    let missing = raw(addr, "GET", "/2018-06-01/runtime/nothing", &[], b"").await;
    assert_eq!(missing.status, 404);
    assert!(json(&missing.body)["errorMessage"].is_string());
    assert_eq!(raw(addr, "GET", "/elsewhere", &[], b"").await.status, 404);
    assert_eq!(raw(addr, "POST", NEXT, &[], b"").await.status, 405);
}

#[tokio::test]
async fn oversize_responses_are_refused_and_reported() {
    let (api, addr) = served();
    let id = "cccccccc-cccc-4ccc-8ccc-cccccccccccc";
    let reply = api.deliver(invocation(id, "{}"));
    assert_eq!(raw(addr, "GET", NEXT, &[], b"").await.status, 200);
    let big = vec![b'a'; 6_291_557];
    let refused = raw(
        addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id}/response"),
        &[],
        &big,
    )
    .await;
    assert_eq!(refused.status, 413);
    assert_eq!(wait_reply(reply).await, RuntimeReply::ResponseTooLarge);
    let body = json(runtime_api::RESPONSE_TOO_LARGE_BODY.as_bytes());
    assert_eq!(body["errorType"], "Function.ResponseSizeTooLarge");
    assert_eq!(
        body["errorMessage"],
        "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
    );

    // Exactly the limit is fine.
    let id = "dddddddd-dddd-4ddd-8ddd-dddddddddddd";
    let reply = api.deliver(invocation(id, "{}"));
    assert_eq!(raw(addr, "GET", NEXT, &[], b"").await.status, 200);
    let limit = vec![b'a'; 6_291_556];
    let accepted = raw(
        addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id}/response"),
        &[],
        &limit,
    )
    .await;
    assert_eq!(accepted.status, 202);
    assert!(matches!(wait_reply(reply).await, RuntimeReply::Response(b) if b.len() == 6_291_556));
}

#[tokio::test]
async fn error_posts_are_forwarded_and_init_errors_reach_the_pending_invocation() {
    let (api, addr) = served();
    let id = "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee";
    let reply = api.deliver(invocation(id, "{}"));
    assert_eq!(raw(addr, "GET", NEXT, &[], b"").await.status, 200);
    let posted = raw(
        addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id}/error"),
        &[
            ("Lambda-Runtime-Function-Error-Type", "Custom.Error"),
            (
                "Content-Type",
                "application/vnd.aws.lambda.error.cause+json",
            ),
        ],
        br#"{"errorType":"Custom.Error","errorMessage":"m","errorCause":{"paths":[]}}"#,
    )
    .await;
    assert_eq!(posted.status, 202);
    let (body, header) = expect_error(wait_reply(reply).await);
    assert_eq!(
        body,
        serde_json::json!({"errorType": "Custom.Error", "errorMessage": "m"})
    );
    assert_eq!(header.as_deref(), Some("Custom.Error"));

    // Init error before anything was delivered: kept for the next delivery.
    let (api, addr) = served();
    let posted = raw(
        addr,
        "POST",
        "/2018-06-01/runtime/init/error",
        &[("Lambda-Runtime-Function-Error-Type", "Runtime.Custom")],
        br#"{"errorType":"Runtime.Custom","errorMessage":"no"}"#,
    )
    .await;
    assert_eq!(posted.status, 202);
    let (body, header) = expect_init_error(wait_reply(api.deliver(invocation(id, "{}"))).await);
    assert_eq!(body["errorMessage"], "no");
    assert_eq!(header.as_deref(), Some("Runtime.Custom"));
}
