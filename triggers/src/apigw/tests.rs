use super::*;
use serde_json::{json, Value};

const API: Api<'static> = Api {
    id: DEFAULT_API_ID,
    stage: DEFAULT_STAGE,
};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

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
        port: 7071,
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
    let headers = pairs(&[("Accept", "a"), ("Accept", "b"), ("User-Agent", "curl")]);
    let req = request("GET", "/hello/x/y", "a=1&a=2&b=hi+there", &headers, b"");
    let params = route.matches(req.path).unwrap();
    let e = event_v1(&req, &API, &route, &params);
    assert_eq!(e["resource"], "/hello/{proxy+}");
    assert_eq!(e["headers"]["Accept"], "b");
    assert_eq!(e["multiValueHeaders"]["Accept"], json!(["a", "b"]));
    assert_eq!(e["headers"]["User-Agent"], "curl");
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
    let e = event_v1(
        &none,
        &API,
        &Route::parse("/hello").unwrap(),
        &BTreeMap::new(),
    );
    assert_eq!(e["queryStringParameters"], Value::Null);
    assert_eq!(e["pathParameters"], Value::Null);
    assert_eq!(e["requestContext"]["identity"]["userAgent"], Value::Null);
}

#[test]
fn v1_headers_keep_the_clients_spelling_and_fold_duplicates() {
    let route = Route::parse("/form").unwrap();
    let headers = pairs(&[
        ("x-BREAD", "baguette"),
        ("X-Bread", "pain"),
        ("user-AGENT", "odd/1.0"),
        ("X-Forwarded-For", "10.0.0.1"),
        ("x-forwarded-proto", "gopher"),
        ("X-Forwarded-Port", "1"),
        ("Host", "api.example.com:7071"),
    ]);
    let req = request("POST", "/form", "", &headers, b"");
    let e = event_v1(&req, &API, &route, &BTreeMap::new());
    // One entry per name, spelled as first seen; headers keeps the last value.
    assert_eq!(
        e["multiValueHeaders"]["x-BREAD"],
        json!(["baguette", "pain"])
    );
    assert_eq!(e["headers"]["x-BREAD"], "pain");
    assert!(e["headers"].get("X-Bread").is_none());
    assert_eq!(e["headers"]["user-AGENT"], "odd/1.0");
    assert_eq!(e["requestContext"]["identity"]["userAgent"], "odd/1.0");
    // API Gateway's own forwarding headers.
    assert_eq!(e["headers"]["X-Forwarded-For"], "10.0.0.1, 127.0.0.1");
    assert_eq!(e["headers"]["X-Forwarded-Port"], "7071");
    assert_eq!(e["headers"]["X-Forwarded-Proto"], "http");
    assert!(e["headers"].get("x-forwarded-proto").is_none());
    assert_eq!(e["requestContext"]["domainName"], "api.example.com:7071");
    assert_eq!(e["requestContext"]["domainPrefix"], "api");
}

#[test]
fn v1_request_context_has_the_rest_api_keys_and_the_stage() {
    let route = Route::parse("/app/{proxy+}").unwrap();
    let req = request("GET", "/app/users/42", "", &[], b"");
    let params = route.matches(req.path).unwrap();
    let api = Api {
        id: "a1b2c3d4e5",
        stage: "prod",
    };
    let e = event_v1(&req, &api, &route, &params);
    let c = &e["requestContext"];
    assert_eq!(e["path"], "/app/users/42");
    assert_eq!(c["path"], "/prod/app/users/42");
    assert_eq!(c["stage"], "prod");
    assert_eq!(c["apiId"], "a1b2c3d4e5");
    assert_eq!(c["resourcePath"], "/app/{proxy+}");
    assert_eq!(c["httpMethod"], "GET");
    assert_eq!(c["protocol"], "HTTP/1.1");
    assert_eq!(c["requestTimeEpoch"], 1_700_000_000_000i64);
    for key in [
        "accountId",
        "resourceId",
        "extendedRequestId",
        "requestId",
        "domainName",
        "domainPrefix",
    ] {
        assert!(c[key].is_string(), "{key}: {c}");
    }
    let identity = c["identity"].as_object().unwrap();
    let mut keys: Vec<&str> = identity.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "accessKey",
            "accountId",
            "caller",
            "cognitoAuthenticationProvider",
            "cognitoAuthenticationType",
            "cognitoIdentityId",
            "cognitoIdentityPoolId",
            "principalOrgId",
            "sourceIp",
            "user",
            "userAgent",
            "userArn"
        ]
    );
    assert_eq!(identity["sourceIp"], "127.0.0.1");
    assert_eq!(identity["cognitoIdentityPoolId"], Value::Null);
    // On $default the path has no stage prefix.
    let e = event_v1(&req, &API, &route, &params);
    assert_eq!(e["requestContext"]["path"], "/app/users/42");
    assert_eq!(e["requestContext"]["stage"], "$default");
    assert!(validate_stage("prod").is_ok() && validate_stage("$default").is_ok());
    assert!(validate_stage("a/b").is_err() && validate_stage("").is_err());
    assert!(validate_api_id("abc123").is_ok() && validate_api_id("ABC").is_err());
}

#[test]
fn v2_event_joins_duplicates_and_splits_cookies() {
    let headers = pairs(&[("X-A", "1"), ("x-a", "2"), ("Cookie", "s=1; t=2")]);
    let req = request("POST", "/p", "q=1&q=2", &headers, &[0xff, 0xfe]);
    let e = event_v2(&req, &API, "POST /p", &BTreeMap::new());
    assert_eq!(e["headers"]["x-a"], "1,2");
    assert_eq!(e["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(e["cookies"], json!(["s=1", "t=2"]));
    assert_eq!(e["queryStringParameters"]["q"], "1,2");
    assert_eq!(e["isBase64Encoded"], true);
    assert_eq!(e["body"], "//4=");
    assert_eq!(e["requestContext"]["http"]["method"], "POST");
    assert_eq!(e["rawPath"], "/p");
    assert!(e.get("pathParameters").is_none());
    let staged = Api {
        id: "x",
        stage: "dev",
    };
    let e = event_v2(&req, &staged, "POST /p", &BTreeMap::new());
    assert_eq!(e["rawPath"], "/dev/p");
    assert_eq!(e["requestContext"]["http"]["path"], "/dev/p");
    assert_eq!(e["requestContext"]["stage"], "dev");
}

#[test]
fn the_malformed_response_table() {
    let r = |format: &str, body: &str| {
        response(format, body.as_bytes()).unwrap_or_else(|_| bad_gateway())
    };
    // v1: anything but a proper object is a 502, with the reason.
    for (bad, reason) in [
        (r#"{}"#, "no statusCode"),
        (r#""hello""#, "not a JSON object"),
        (r#"{"statusCode":"two hundred"}"#, "statusCode"),
        (r#"{"statusCode":"2000"}"#, "statusCode"),
        (r#"{"statusCode":" 200"}"#, "statusCode"),
        (r#"{"statusCode":200.5}"#, "statusCode"),
        (r#"{"statusCode":200,"extra":1}"#, "unknown key \"extra\""),
        ("not json", "not JSON"),
        (r#"{"statusCode":200,"body":{"a":1}}"#, "body"),
        (r#"{"statusCode":99}"#, "statusCode"),
        (
            r#"{"statusCode":200,"body":"%","isBase64Encoded":true}"#,
            "base64",
        ),
    ] {
        assert_eq!(r("1.0", bad), bad_gateway(), "{bad}");
        let err = response("1.0", bad.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(reason), "{bad}: {err}");
        assert!(err
            .to_string()
            .starts_with("Malformed Lambda proxy response"));
    }
    // A numeric string is a status code, as REST APIs accept it.
    let text = r("1.0", r#"{"statusCode":"201","body":"made"}"#);
    assert_eq!(
        (text.status, text.body.as_slice()),
        (201, b"made".as_slice())
    );
    assert_eq!(r("2.0", r#"{"statusCode":"404"}"#).status, 404);
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

#[test]
fn cors_preflights_and_decorates() {
    let get = vec!["GET".to_string()];
    let cors = cors::Cors {
        allow_origins: vec!["https://app.example.com".into()],
        ..Default::default()
    }
    .validated(&get)
    .unwrap();
    assert_eq!(cors.allow_methods, ["GET", "OPTIONS"]);
    assert_eq!(cors.allow_headers, cors::DEFAULT_ALLOW_HEADERS);
    let answer = cors.preflight("https://app.example.com");
    assert_eq!(answer.status, 204);
    let header = |r: &HttpResponse, name: &str| {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header(&answer, "access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(
        header(&answer, "access-control-allow-methods").as_deref(),
        Some("GET,OPTIONS")
    );
    assert_eq!(header(&answer, "vary").as_deref(), Some("Origin"));
    let refused = cors.preflight("https://evil.example.com");
    assert_eq!((refused.status, refused.headers.len()), (204, 0));
    let mut plain = HttpResponse {
        status: 200,
        headers: vec![],
        body: vec![],
    };
    cors.decorate(Some("https://app.example.com"), &mut plain);
    assert!(plain.has_header("Access-Control-Allow-Origin"));
    let mut own = HttpResponse {
        status: 200,
        headers: vec![("Access-Control-Allow-Origin".into(), "x".into())],
        body: vec![],
    };
    cors.decorate(Some("https://app.example.com"), &mut own);
    assert_eq!(own.headers.len(), 1, "the function's own header wins");
    let any = cors::Cors {
        allow_origins: vec!["*".into()],
        max_age_seconds: 600,
        ..Default::default()
    }
    .validated(&[])
    .unwrap();
    assert_eq!(any.allow_methods.len(), METHODS.len());
    let answer = any.preflight("http://localhost:3000");
    assert_eq!(
        header(&answer, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(
        header(&answer, "access-control-max-age").as_deref(),
        Some("600")
    );
    for bad in [
        cors::Cors::default(),
        cors::Cors {
            allow_origins: vec!["app.example.com".into()],
            ..Default::default()
        },
        cors::Cors {
            allow_origins: vec!["https://a.example.com/path".into()],
            ..Default::default()
        },
        cors::Cors {
            allow_origins: vec!["*".into()],
            allow_methods: vec!["BREW".into()],
            ..Default::default()
        },
        cors::Cors {
            allow_origins: vec!["*".into()],
            allow_headers: vec!["bad header".into()],
            ..Default::default()
        },
        cors::Cors {
            allow_origins: vec!["*".into()],
            max_age_seconds: 100_000,
            ..Default::default()
        },
    ] {
        assert!(bad.clone().validated(&[]).is_err(), "{bad:?}");
    }
    let h = pairs(&[
        ("Origin", "https://a"),
        ("Access-Control-Request-Method", "post"),
    ]);
    assert_eq!(
        cors::preflight_of("OPTIONS", &h),
        Some(("https://a".into(), "POST".into()))
    );
    assert_eq!(cors::preflight_of("GET", &h), None);
    assert_eq!(cors::preflight_of("OPTIONS", &h[..1]), None);
}
