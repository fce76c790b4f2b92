//! HTTP triggers (API Gateway proxy integration) end to end: the v2.0 and
//! v1.0 events as the function sees them (query, multi-value headers,
//! path parameters, cookies, JSON and binary bodies; v1.0 as REST APIs
//! build it: header names as the client spelled them, forwarding headers,
//! identity, stage), the response mapping with the 502 table for
//! malformed results (and its reason in the function's log), and CORS.

use std::time::{Duration, Instant};

use kumo_tests::http::{request, HttpReply};
use kumo_tests::{fixture, root_or_skip, Kumo};
use serde_json::{json, Value};

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
        event["multiValueHeaders"]["X-Multi"],
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

#[test]
fn v1_events_are_built_as_rest_apis_build_them() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let code = fixture("http_echo");
    kumo.create("form", "python3", "form.lambda_handler", &code, &[]);
    kumo.create("web", "python3", "lambda_function.handler", &code, &[]);
    kumo.create_trigger(&[
        "contact",
        "--function",
        "form",
        "--http-path",
        "/contact",
        "--methods",
        "POST",
        "--payload-format",
        "1.0",
    ]);
    let rest = kumo.create_trigger(&[
        "rest",
        "--function",
        "web",
        "--http-path",
        "/rest/{proxy+}",
        "--payload-format",
        "1.0",
        "--stage",
        "prod",
        "--api-id",
        "abc123",
        "--cors-origin",
        "https://app.example.com",
        "--cors-max-age",
        "300",
    ]);
    assert_eq!(rest["stage"], "prod");
    assert_eq!(
        rest["cors"]["allow_origins"],
        json!(["https://app.example.com"])
    );
    kumo.create_trigger(&[
        "api2",
        "--function",
        "web",
        "--http-path",
        "/api2/{proxy+}",
        "--stage",
        "dev",
    ]);
    let http = &kumo.http_address;

    // The book's form handler reads event['headers']['User-Agent'].
    let reply = request(
        http,
        "POST",
        "/http/contact",
        &[
            ("User-Agent", "Mozilla/5.0 (Kumo test)"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"name=Ada",
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.body,
        "<p>Hello Ada, you use Mozilla/5.0 (Kumo test)</p>"
    );

    // Odd casing and duplicates: one entry per name, as first spelled;
    // headers keeps the last value, multiValueHeaders all of them.
    let event = echo(&request(
        http,
        "GET",
        "/http/rest/x/echo",
        &[
            ("x-CUSTOM", "1"),
            ("X-Custom", "2"),
            ("user-AGENT", "odd/1.0"),
            ("X-Forwarded-For", "10.1.1.1"),
        ],
        b"",
    ));
    assert_eq!(event["headers"]["x-CUSTOM"], "2", "{event}");
    assert_eq!(event["multiValueHeaders"]["x-CUSTOM"], json!(["1", "2"]));
    assert!(event["headers"].get("X-Custom").is_none(), "{event}");
    assert_eq!(event["headers"]["user-AGENT"], "odd/1.0");
    assert_eq!(event["headers"]["Host"], http.as_str());
    assert_eq!(event["headers"]["X-Forwarded-For"], "10.1.1.1, 127.0.0.1");
    assert_eq!(
        event["headers"]["X-Forwarded-Port"],
        kumo.http_port().to_string()
    );
    assert_eq!(event["headers"]["X-Forwarded-Proto"], "http");
    let context = &event["requestContext"];
    assert_eq!(event["path"], "/rest/x/echo");
    assert_eq!(context["path"], "/prod/rest/x/echo");
    assert_eq!(context["stage"], "prod");
    assert_eq!(context["apiId"], "abc123");
    assert_eq!(context["resourcePath"], "/rest/{proxy+}");
    let identity = context["identity"].as_object().unwrap();
    assert_eq!(identity.len(), 12, "{identity:?}");
    assert_eq!(identity["sourceIp"], "127.0.0.1");
    assert_eq!(identity["userAgent"], "odd/1.0");
    for key in [
        "cognitoIdentityPoolId",
        "accountId",
        "caller",
        "principalOrgId",
        "accessKey",
        "userArn",
        "user",
    ] {
        assert_eq!(identity[key], Value::Null, "{key}");
    }
    // v2.0 on a named stage: lowercase names, the stage in rawPath.
    let event = echo(&request(
        http,
        "GET",
        "/http/api2/x/echo",
        &[("X-Custom", "1"), ("x-custom", "2")],
        b"",
    ));
    assert_eq!(event["headers"]["x-custom"], "1,2");
    assert_eq!(event["rawPath"], "/dev/api2/x/echo");
    assert_eq!(event["requestContext"]["stage"], "dev");

    // statusCode as a numeric string, as REST APIs accept it.
    for path in ["/http/rest/x/textstatus", "/http/api2/x/textstatus"] {
        let reply = request(http, "GET", path, &[], b"");
        assert_eq!((reply.status, reply.body.as_str()), (201, "made"), "{path}");
    }

    // CORS: a preflight is answered without invoking the function.
    let invocations = |kumo: &Kumo| kumo.logs("web").matches("START RequestId").count();
    let before = invocations(&kumo);
    let preflight = request(
        http,
        "OPTIONS",
        "/http/rest/x/echo",
        &[
            ("Origin", "https://app.example.com"),
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        b"",
    );
    assert_eq!(preflight.status, 204, "{preflight:?}");
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS")
    );
    assert!(preflight
        .header("access-control-allow-headers")
        .is_some_and(|h| h.contains("Content-Type")));
    assert_eq!(preflight.header("access-control-max-age"), Some("300"));
    let stranger = request(
        http,
        "OPTIONS",
        "/http/rest/x/echo",
        &[
            ("Origin", "https://evil.example.com"),
            ("Access-Control-Request-Method", "GET"),
        ],
        b"",
    );
    assert_eq!(stranger.status, 204);
    assert_eq!(stranger.header("access-control-allow-origin"), None);
    assert_eq!(
        invocations(&kumo),
        before,
        "a preflight invoked the function"
    );
    // Responses to an allowed origin carry Access-Control-Allow-Origin.
    let teapot = request(
        http,
        "GET",
        "/http/rest/x/teapot",
        &[("Origin", "https://app.example.com")],
        b"",
    );
    assert_eq!(teapot.status, 418);
    assert_eq!(
        teapot.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(teapot.header("vary"), Some("Origin"));
    assert_eq!(invocations(&kumo), before + 1);

    // A 502 for a malformed answer says why in the function's log.
    let bad = request(http, "GET", "/http/rest/x/extra", &[], b"");
    assert_eq!(bad.status, 502);
    let deadline = Instant::now() + Duration::from_secs(10);
    let wanted =
        "[kumo] HTTP trigger rest: 502 Malformed Lambda proxy response: unknown key \"surprise\"";
    loop {
        let logs = kumo.logs("web");
        if logs.contains(wanted) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 502 reason in the log:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Settings that must be refused clearly.
    for (args, needle) in [
        (vec!["--stage", "a/b"], "stage"),
        (vec!["--api-id", "Not-Valid"], "API id"),
        (vec!["--cors-origin", "app.example.com"], "origin"),
        (
            vec!["--cors-origin", "*", "--cors-max-age", "100000"],
            "max age",
        ),
        (
            vec!["--cors-origin", "*", "--cors-methods", "BREW"],
            "method",
        ),
    ] {
        let mut all = vec![
            "trigger",
            "create",
            "t",
            "--function",
            "web",
            "--http-path",
            "/t",
        ];
        all.extend_from_slice(&args);
        let run = kumo.cli(&all);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(needle), "{needle}: {run:?}");
    }
}
