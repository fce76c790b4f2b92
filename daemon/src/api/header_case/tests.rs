use super::*;

/// A request's parts as hyper hands them to the service.
fn parts(method: &str, target: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = hyper::Request::builder().method(method).uri(target);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("request").into_parts().0
}

fn feed_all(tap: &HeadTap, bytes: &[u8], step: usize) {
    for chunk in bytes.chunks(step) {
        tap.feed(chunk);
    }
}

#[test]
fn names_keep_their_spelling_across_bodies_and_pipelined_requests() {
    let stream = b"POST /http/form HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/8\r\nx-BREAD: a\r\nX-Bread: b\r\nContent-Length: 5\r\n\r\nhello\
GET /http/next?q=1 HTTP/1.1\r\nhost: h\r\nACCEPT: */*\r\n\r\n\
PUT /http/chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab\r\nc\r\n0\r\nX-Trailer: t\r\n\r\n\
DELETE /http/last HTTP/1.1\r\nX-Last: 1\r\n\r\n";
    // Whole, byte by byte, and in odd pieces: the same heads.
    for step in [stream.len(), 1, 7] {
        let tap = HeadTap::default();
        feed_all(&tap, stream, step);
        let first = parts(
            "POST",
            "/http/form",
            &[
                ("host", "h"),
                ("user-agent", "curl/8"),
                ("x-bread", "a"),
                ("x-bread", "b"),
                ("content-length", "5"),
            ],
        );
        assert_eq!(
            tap.take(&first).as_deref(),
            Some(
                &["Host", "User-Agent", "x-BREAD", "X-Bread", "Content-Length"].map(String::from)[..]
            ),
            "step {step}"
        );
        let second = parts("GET", "/http/next?q=1", &[("host", "h"), ("accept", "*/*")]);
        assert_eq!(
            tap.take(&second),
            Some(vec!["host".into(), "ACCEPT".into()]),
            "step {step}"
        );
        let third = parts(
            "PUT",
            "/http/chunked",
            &[("host", "h"), ("transfer-encoding", "chunked")],
        );
        assert!(tap.take(&third).is_some(), "step {step}");
        let fourth = parts("DELETE", "/http/last", &[("x-last", "1")]);
        assert_eq!(
            tap.take(&fourth),
            Some(vec!["X-Last".into()]),
            "step {step}"
        );
        assert_eq!(tap.take(&fourth), None, "no more heads");
    }
}

#[test]
fn a_head_that_is_not_the_requests_is_not_used() {
    let tap = HeadTap::default();
    tap.feed(b"GET /a HTTP/1.1\r\nX-One: 1\r\n\r\n");
    assert_eq!(tap.take(&parts("GET", "/b", &[("x-one", "1")])), None);
    tap.feed(b"GET /a HTTP/1.1\r\nX-One: 1\r\n\r\n");
    assert_eq!(tap.take(&parts("GET", "/a", &[("x-two", "1")])), None);
}

#[test]
fn what_the_tap_cannot_follow_switches_it_off() {
    // An oversized head.
    let tap = HeadTap::default();
    tap.feed(b"GET / HTTP/1.1\r\nX-Big: ");
    tap.feed(&vec![b'a'; MAX_BUFFERED + 1]);
    tap.feed(b"\r\n\r\nGET / HTTP/1.1\r\nX-A: 1\r\n\r\n");
    assert_eq!(tap.take(&parts("GET", "/", &[("x-a", "1")])), None);
    // Garbage, a bad Content-Length, an upgrade: later heads are not recorded.
    for stream in [
        &b"\x00\x01 nonsense\r\n\r\nGET / HTTP/1.1\r\nX-A: 1\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\nGET / HTTP/1.1\r\nX-A: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\nX-A: 1\r\n\r\n",
    ] {
        let tap = HeadTap::default();
        tap.feed(stream);
        let mut found = None;
        for _ in 0..2 {
            if let Some(names) = tap.take(&parts("GET", "/", &[("x-a", "1")])) {
                found = Some(names);
            }
        }
        assert_eq!(found, None, "{}", String::from_utf8_lossy(stream));
    }
}

#[test]
fn headers_come_in_arrival_order_with_their_spelling() {
    let mut request = parts(
        "GET",
        "/",
        &[("x-bread", "a"), ("user-agent", "u"), ("x-bread", "b")],
    );
    assert_eq!(
        headers_in_order(&request),
        vec![
            ("x-bread".to_string(), "a".to_string()),
            ("x-bread".to_string(), "b".to_string()),
            ("user-agent".to_string(), "u".to_string()),
        ],
        "without the tap: hyper's names, grouped"
    );
    request.extensions.insert(OriginalHeaderNames(vec![
        "X-Bread".into(),
        "User-Agent".into(),
        "x-BREAD".into(),
    ]));
    assert_eq!(
        headers_in_order(&request),
        vec![
            ("X-Bread".to_string(), "a".to_string()),
            ("User-Agent".to_string(), "u".to_string()),
            ("x-BREAD".to_string(), "b".to_string()),
        ]
    );
}
