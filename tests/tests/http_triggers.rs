//! HTTP triggers (API Gateway proxy integration) end to end: the v2.0 and
//! v1.0 events as the function sees them (query, multi-value headers,
//! path parameters, cookies, JSON and binary bodies) and the response
//! mapping, including the 502 table for malformed results.

use kumo_tests::http::{request, HttpReply};
use kumo_tests::{fixture, root_or_skip, Kumo};
use serde_json::Value;

fn echo(reply: &HttpReply) -> Value {
    assert_eq!(reply.status, 200, "{reply:?}");
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {reply:?}"))
}

#[test]
fn http_routes_invoke_functions_with_proxy_events() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    kumo.create(
        "web",
        "python3",
        "lambda_function.handler",
        &fixture("http_echo"),
        &[],
    );
    kumo.create_trigger(&["api", "--function", "web", "--http-path", "/api/{proxy+}"]);
    kumo.create_trigger(&[
        "legacy",
        "--function",
        "web",
        "--http-path",
        "/v1/{proxy+}",
        "--payload-format",
        "1.0",
    ]);
    kumo.create_trigger(&[
        "users",
        "--function",
        "web",
        "--http-path",
        "/users/{id}/echo",
        "--methods",
        "GET",
    ]);
    let http = &kumo.http_address;

    // v2.0: query, duplicate headers joined, cookies, path parameters.
    let reply = request(
        http,
        "GET",
        "/http/api/x/echo?a=1&a=2&b=hi+there",
        &[
            ("X-Multi", "one"),
            ("X-Multi", "two"),
            ("Cookie", "s=1; t=2"),
        ],
        b"",
    );
    assert!(reply.body.len() > 10);
    let event = echo(&reply);
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "ANY /api/{proxy+}");
    assert_eq!(event["rawPath"], "/api/x/echo");
    assert_eq!(event["rawQueryString"], "a=1&a=2&b=hi+there");
    assert_eq!(event["queryStringParameters"]["a"], "1,2");
    assert_eq!(event["queryStringParameters"]["b"], "hi there");
    assert_eq!(event["headers"]["x-multi"], "one,two");
    assert_eq!(event["cookies"], serde_json::json!(["s=1", "t=2"]));
    assert_eq!(event["pathParameters"]["proxy"], "x/echo");
    assert_eq!(event["requestContext"]["http"]["method"], "GET");
    assert_eq!(event["requestContext"]["http"]["sourceIp"], "127.0.0.1");
    // The function's CORS header comes back.
    let cors = request(
        http,
        "OPTIONS",
        "/http/api/echo",
        &[("Origin", "https://example.com")],
        b"",
    );
    assert_eq!(cors.status, 200);
    assert_eq!(
        cors.header("access-control-allow-origin"),
        Some("*"),
        "{cors:?}"
    );
    assert_eq!(cors.header("content-type"), Some("application/json"));
    let cookies_reply = request(http, "GET", "/http/api/cookies", &[], b"");
    let set: Vec<&str> = cookies_reply
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(set, ["a=1", "b=2"], "{cookies_reply:?}");

    // POST JSON and a binary body.
    let event = echo(&request(
        http,
        "POST",
        "/http/api/echo",
        &[("Content-Type", "application/json")],
        br#"{"k": "v"}"#,
    ));
    assert_eq!(event["body"], r#"{"k": "v"}"#);
    assert_eq!(event["isBase64Encoded"], false);
    let event = echo(&request(
        http,
        "POST",
        "/http/api/echo",
        &[("Content-Type", "application/octet-stream")],
        &[0xff, 0x00, 0xfe],
    ));
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], "/wD+");

    // v1.0: multi-value maps, nulls, resource and path parameters.
    let event = echo(&request(
        http,
        "GET",
        "/http/v1/a/echo?q=1&q=2",
        &[("X-Multi", "one"), ("X-Multi", "two")],
        b"",
    ));
    assert_eq!(event["resource"], "/v1/{proxy+}");
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(
        event["multiValueQueryStringParameters"]["q"],
        serde_json::json!(["1", "2"])
    );
    assert_eq!(event["queryStringParameters"]["q"], "2");
    assert_eq!(
        event["multiValueHeaders"]["x-multi"],
        serde_json::json!(["one", "two"])
    );
    assert_eq!(event["stageVariables"], Value::Null);
    assert_eq!(event["body"], Value::Null);
    assert_eq!(event["pathParameters"]["proxy"], "a/echo");

    // A named path parameter, and a method filter.
    let event = echo(&request(http, "GET", "/http/users/42/echo", &[], b""));
    assert_eq!(event["pathParameters"]["id"], "42");
    assert_eq!(
        request(http, "POST", "/http/users/42/echo", &[], b"").status,
        404
    );
    assert_eq!(request(http, "GET", "/http/nowhere", &[], b"").status, 404);

    // Responses: binary, cookies, and the malformed table.
    let binary = request(http, "GET", "/http/api/binary", &[], b"");
    assert_eq!(binary.status, 200);
    let cookies = request(http, "GET", "/http/api/cookies", &[], b"");
    assert_eq!((cookies.status, cookies.body.as_str()), (200, "c"));
    assert_eq!(
        request(http, "GET", "/http/api/teapot", &[], b"").status,
        418
    );
    for (path, v2, v1) in [
        ("plain", 200, 502),
        ("bare", 200, 502),
        ("badstatus", 502, 502),
        ("extra", 200, 502),
        ("inject", 502, 502),
        ("raise", 502, 502),
    ] {
        let got2 = request(http, "GET", &format!("/http/api/{path}"), &[], b"");
        assert_eq!(got2.status, v2, "v2 {path}: {got2:?}");
        let got1 = request(http, "GET", &format!("/http/v1/{path}"), &[], b"");
        assert_eq!(got1.status, v1, "v1 {path}: {got1:?}");
        if v1 == 502 {
            assert_eq!(got1.body.trim(), r#"{"message": "Internal server error"}"#);
        }
    }
    assert_eq!(
        request(http, "GET", "/http/api/plain", &[], b"").body,
        r#"{"hello": "world"}"#
    );

    // Throttled functions answer 429.
    assert_eq!(
        kumo.cli(&["function", "update", "web", "--concurrency", "0"])
            .code,
        0
    );
    assert_eq!(request(http, "GET", "/http/api/echo", &[], b"").status, 429);

    // Refusals at create time.
    for (args, needle) in [
        (
            vec!["t1", "--function", "web", "--http-path", "no-slash"],
            "must start with /",
        ),
        (
            vec!["t2", "--function", "web", "--http-path", "/a/{rest+}/b"],
            "last segment",
        ),
        (
            vec!["t3", "--function", "web", "--http-path", "/api/{proxy+}"],
            "already routed",
        ),
        (
            vec![
                "t4",
                "--function",
                "web",
                "--http-path",
                "/x",
                "--methods",
                "BREW",
            ],
            "method",
        ),
        (
            vec![
                "t5",
                "--function",
                "web",
                "--http-path",
                "/x",
                "--payload-format",
                "3.0",
            ],
            "payload format",
        ),
    ] {
        let mut all = vec!["trigger", "create"];
        all.extend_from_slice(&args);
        let run = kumo.cli(&all);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(needle), "{needle}: {run:?}");
    }
}
