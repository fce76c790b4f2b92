use super::*;

fn request<'a>(
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: &'a [(String, String)],
    body: &'a [u8],
) -> HttpRequest<'a> {
    HttpRequest {
        method,
        path,
        raw_query: query,
        headers,
        body,
        source_ip: "127.0.0.1",
        request_id: "r-1",
        time: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        account_id: "000000000000",
    }
}

#[test]
fn routes_match_literals_params_and_greedy_rests() {
    let route = Route::parse("/users/{id}/files/{path+}").unwrap();
    let params = route.matches("/users/42/files/a/b.txt").unwrap();
    assert_eq!(params["id"], "42");
    assert_eq!(params["path"], "a/b.txt");
    assert!(
        route.matches("/users/42/files").is_none(),
        "greedy needs one segment"
    );
    assert!(route.matches("/users/42/photos/a").is_none());
    let exact = Route::parse("/hello").unwrap();
    assert!(exact.matches("/hello").is_some());
    assert!(exact.matches("/hello/").is_some());
    assert!(exact.matches("/hello/x").is_none());
    for bad in ["hello", "/a/{b+}/c", "/{}", "/a/{b c}", "/a{b}"] {
        assert!(Route::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn v1_event_has_multi_values_and_nulls() {
    let route = Route::parse("/hello/{proxy+}").unwrap();
    let headers = vec![
        ("accept".to_string(), "a".to_string()),
        ("accept".to_string(), "b".to_string()),
        ("user-agent".to_string(), "curl".to_string()),
    ];
    let req = request("GET", "/hello/x/y", "a=1&a=2&b=hi+there", &headers, b"");
    let params = route.matches(req.path).unwrap();
    let e = event_v1(&req, &route, &params);
    assert_eq!(e["resource"], "/hello/{proxy+}");
    assert_eq!(e["headers"]["accept"], "b");
    assert_eq!(e["multiValueHeaders"]["accept"], json!(["a", "b"]));
    assert_eq!(e["queryStringParameters"]["a"], "2");
    assert_eq!(e["multiValueQueryStringParameters"]["a"], json!(["1", "2"]));
    assert_eq!(e["queryStringParameters"]["b"], "hi there");
    assert_eq!(e["pathParameters"]["proxy"], "x/y");
    assert_eq!(e["stageVariables"], Value::Null);
    assert_eq!(e["body"], Value::Null);
    assert_eq!(e["requestContext"]["identity"]["userAgent"], "curl");
    assert_eq!(
        e["requestContext"]["requestTime"],
        "14/Nov/2023:22:13:20 +0000"
    );
    let none = request("GET", "/hello", "", &[], b"");
    let e = event_v1(&none, &Route::parse("/hello").unwrap(), &BTreeMap::new());
    assert_eq!(e["queryStringParameters"], Value::Null);
    assert_eq!(e["pathParameters"], Value::Null);
}

#[test]
fn v2_event_joins_duplicates_and_splits_cookies() {
    let headers = vec![
        ("x-a".to_string(), "1".to_string()),
        ("x-a".to_string(), "2".to_string()),
        ("cookie".to_string(), "s=1; t=2".to_string()),
    ];
    let req = request("POST", "/p", "q=1&q=2", &headers, &[0xff, 0xfe]);
    let e = event_v2(&req, "POST /p", &BTreeMap::new());
    assert_eq!(e["headers"]["x-a"], "1,2");
    assert_eq!(e["cookies"], json!(["s=1", "t=2"]));
    assert_eq!(e["queryStringParameters"]["q"], "1,2");
    assert_eq!(e["isBase64Encoded"], true);
    assert_eq!(e["body"], "//4=");
    assert_eq!(e["requestContext"]["http"]["method"], "POST");
    assert!(e.get("pathParameters").is_none());
}

#[test]
fn the_malformed_response_table() {
    let r = |format: &str, body: &str| response(format, Some(body.as_bytes()));
    // v1: anything but a proper object is a 502.
    for bad in [
        r#"{}"#,
        r#""hello""#,
        r#"{"statusCode":"200"}"#,
        r#"{"statusCode":200,"extra":1}"#,
        "not json",
        r#"{"statusCode":200,"body":{"a":1}}"#,
        r#"{"statusCode":99}"#,
    ] {
        assert_eq!(r("1.0", bad).status, 502, "{bad}");
    }
    assert_eq!(response("1.0", None), bad_gateway());
    assert_eq!(response("2.0", None).status, 502);
    let ok = r(
        "1.0",
        r#"{"statusCode":201,"headers":{"x-a":"1"},"multiValueHeaders":{"x-b":["1","2"]},"body":"made"}"#,
    );
    assert_eq!(ok.status, 201);
    assert_eq!(ok.body, b"made");
    assert_eq!(
        ok.headers,
        vec![
            ("x-a".into(), "1".into()),
            ("x-b".into(), "1".into()),
            ("x-b".into(), "2".into())
        ]
    );
    let binary = r(
        "1.0",
        r#"{"statusCode":200,"body":"//4=","isBase64Encoded":true}"#,
    );
    assert_eq!(binary.body, vec![0xff, 0xfe]);
    // v2: JSON without statusCode is a 200 with that JSON as the body.
    let plain = r("2.0", r#"{"hello":"world"}"#);
    assert_eq!(
        (plain.status, plain.body.as_slice()),
        (200, br#"{"hello":"world"}"#.as_slice())
    );
    assert_eq!(r("2.0", r#""text""#).body, b"text");
    let cookies = r(
        "2.0",
        r#"{"statusCode":200,"cookies":["a=1","b=2"],"body":"x"}"#,
    );
    assert_eq!(
        cookies
            .headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .count(),
        2
    );
    // Header injection is refused.
    assert_eq!(
        r(
            "1.0",
            r#"{"statusCode":200,"headers":{"x-a":"1\r\nSet-Cookie: evil=1"}}"#
        )
        .status,
        502
    );
    assert_eq!(
        r("1.0", r#"{"statusCode":200,"headers":{"x-a\r\nevil":"1"}}"#).status,
        502
    );
}
