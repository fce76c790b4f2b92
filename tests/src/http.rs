//! A minimal HTTP/1.1 client for posting to kumod's HTTP listener exactly
//! as MinIO would (headers and body under the test's control).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An HTTP answer.
#[derive(Debug)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Body text.
    pub body: String,
    /// Response headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
}

impl HttpReply {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl HttpReply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.body.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer.
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    let mut stream =
        TcpStream::connect(address).unwrap_or_else(|e| panic!("connecting to {address}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // A server may answer (413) and close before reading a large body.
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body));
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpReply {
        status,
        body: body.to_string(),
        headers,
    }
}

/// POSTs a JSON webhook body to kumod's MinIO endpoint.
pub fn post_minio(address: &str, authorization: Option<&str>, body: &str) -> HttpReply {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = authorization {
        headers.push(("Authorization", auth));
    }
    request(
        address,
        "POST",
        "/webhooks/minio",
        &headers,
        body.as_bytes(),
    )
}

/// The body MinIO posts for one event (docs/wire-formats.md §5b). `key` is given
/// already escaped as MinIO escapes it (Go `QueryEscape`). Delete events
/// carry no size, eTag, contentType or userMetadata.
pub fn minio_event(event: &str, bucket: &str, key: &str, sequencer: &str) -> String {
    let object = if event.starts_with("s3:ObjectRemoved") {
        format!(r#"{{"key":"{key}","versionId":"1","sequencer":"{sequencer}"}}"#)
    } else {
        format!(
            r#"{{"key":"{key}","size":6474,"eTag":"d41d8cd98f00b204e9800998ecf8427e","contentType":"image/jpeg","userMetadata":{{"content-type":"image/jpeg"}},"versionId":"1","sequencer":"{sequencer}"}}"#
        )
    };
    format!(
        r#"{{"EventName":"{event}","Key":"{bucket}/{key}","Records":[{{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2019-09-10T17:41:54.123Z","eventName":"{event}","userIdentity":{{"principalId":"minioadmin"}},"requestParameters":{{"principalId":"minioadmin","region":"","sourceIPAddress":"127.0.0.1"}},"responseElements":{{"x-amz-request-id":"15C32494527B46C5","x-minio-deployment-id":"0b4b3f4b-9c86-4a52-9c3a-5a4f3f1d8f7e","x-minio-origin-endpoint":"http://127.0.0.1:9000"}},"s3":{{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{{"name":"{bucket}","ownerIdentity":{{"principalId":"minioadmin"}},"arn":"arn:aws:s3:::{bucket}"}},"object":{object}}},"source":{{"host":"127.0.0.1","port":"","userAgent":"MinIO (linux; amd64) minio-go/v7.0.70"}}}}]}}"#
    )
}
