//! Verifying AWS Signature Version 4 on Invoke API requests, so AWS SDKs
//! and the AWS CLI authenticate to Kumo with access keys kumod knows.
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use kumo_triggers::percent::decode_lossy;
use sha2::{Digest, Sha256};

/// How far a request's `X-Amz-Date` may be from kumod's clock.
const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// Why a signature was refused; `code` is the AWS error name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SignatureError {
    /// `IncompleteSignatureException`, `UnrecognizedClientException`,
    /// `InvalidSignatureException`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> SignatureError {
    SignatureError {
        code,
        message: message.into(),
    }
}

/// The parts of a request that are signed.
pub struct SignedRequest<'a> {
    /// `POST`, …
    pub method: &'a str,
    /// The path as sent (still percent-encoded).
    pub raw_path: &'a str,
    /// The query string as sent, without `?`.
    pub raw_query: &'a str,
    /// Every header (lowercase names; repeated headers joined by `,`).
    pub headers: &'a BTreeMap<String, String>,
    /// The body.
    pub body: &'a [u8],
}

/// Percent-encodes like AWS: unreserved characters stay, everything else
/// (including `%`) becomes `%XX`; `/` stays when `keep_slash`.
fn aws_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                aws_encode(&decode_lossy(k, true), false),
                aws_encode(&decode_lossy(v, true), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The parsed `Authorization` header.
struct Authorization {
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse_authorization(header: &str) -> Result<Authorization, SignatureError> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        refuse(
            "IncompleteSignatureException",
            "Authorization must use AWS4-HMAC-SHA256",
        )
    })?;
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for part in rest.split(',') {
        if let Some((k, v)) = part.trim().split_once('=') {
            fields.insert(k, v);
        }
    }
    let get = |k: &str| {
        fields.get(k).copied().ok_or_else(|| {
            refuse(
                "IncompleteSignatureException",
                format!("Authorization has no {k}"),
            )
        })
    };
    let credential: Vec<&str> = get("Credential")?.split('/').collect();
    let [access_key, date, region, service, terminator] = credential[..] else {
        return Err(refuse(
            "IncompleteSignatureException",
            "Credential must be KEY/DATE/REGION/SERVICE/aws4_request",
        ));
    };
    if terminator != "aws4_request" {
        return Err(refuse(
            "IncompleteSignatureException",
            "Credential scope must end in aws4_request",
        ));
    }
    Ok(Authorization {
        access_key: access_key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: get("SignedHeaders")?
            .split(';')
            .map(str::to_string)
            .collect(),
        signature: get("Signature")?.to_string(),
    })
}

/// Checks the request's signature with `secret_for(access_key)`; returns
/// the access key id on success.
pub fn verify(
    request: &SignedRequest<'_>,
    now: chrono::DateTime<chrono::Utc>,
    secret_for: impl Fn(&str) -> Option<String>,
) -> Result<String, SignatureError> {
    let header = request.headers.get("authorization").ok_or_else(|| {
        refuse(
            "MissingAuthenticationTokenException",
            "the request is not signed (AWS Signature Version 4 required)",
        )
    })?;
    let auth = parse_authorization(header)?;
    let amz_date = request
        .headers
        .get("x-amz-date")
        .ok_or_else(|| refuse("IncompleteSignatureException", "X-Amz-Date is missing"))?;
    let when = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| {
            refuse(
                "IncompleteSignatureException",
                format!("X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ"),
            )
        })?
        .and_utc();
    if (now - when).num_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(refuse(
            "InvalidSignatureException",
            "Signature expired: X-Amz-Date is more than 15 minutes from kumod's clock",
        ));
    }
    if !amz_date.starts_with(&auth.date) {
        return Err(refuse(
            "InvalidSignatureException",
            "the credential date does not match X-Amz-Date",
        ));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(refuse(
            "InvalidSignatureException",
            "the Host header must be signed",
        ));
    }
    let secret = secret_for(&auth.access_key).ok_or_else(|| {
        refuse(
            "UnrecognizedClientException",
            "The security token included in the request is invalid: unknown access key",
        )
    })?;
    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        let value = request.headers.get(name).ok_or_else(|| {
            refuse(
                "InvalidSignatureException",
                format!("signed header {name} is missing"),
            )
        })?;
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        aws_encode(request.raw_path, true),
        canonical_query(request.raw_query),
        canonical_headers,
        auth.signed_headers.join(";"),
        hex::encode(Sha256::digest(request.body)),
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), &auth.date);
    for part in [auth.region.as_str(), auth.service.as_str(), "aws4_request"] {
        key = hmac(&key, part);
    }
    let expected = hex::encode(hmac(&key, &string_to_sign));
    let matches = expected.len() == auth.signature.len()
        && expected
            .bytes()
            .zip(auth.signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !matches {
        return Err(refuse(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        ));
    }
    Ok(auth.access_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the AWS SigV4 test suite ("get-vanilla-query-order-key-case").
    #[test]
    fn aws_test_suite_vector() {
        let headers: BTreeMap<String, String> = [
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let request = SignedRequest {
            method: "GET",
            raw_path: "/",
            raw_query: "Param2=value2&Param1=value1",
            headers: &headers,
            body: b"",
        };
        let now = chrono::DateTime::parse_from_rfc3339("2015-08-30T12:36:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let secret = |k: &str| {
            (k == "AKIDEXAMPLE").then(|| "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string())
        };
        assert_eq!(verify(&request, now, secret).unwrap(), "AKIDEXAMPLE");
        let wrong = |_: &str| Some("not the secret".to_string());
        assert_eq!(
            verify(&request, now, wrong).unwrap_err().code,
            "InvalidSignatureException"
        );
        let late = now + chrono::Duration::minutes(16);
        assert!(verify(&request, late, secret)
            .unwrap_err()
            .message
            .contains("expired"));
        let unknown = |_: &str| None;
        assert_eq!(
            verify(&request, now, unknown).unwrap_err().code,
            "UnrecognizedClientException"
        );
    }

    #[test]
    fn malformed_headers_are_refused_not_panicked_on() {
        let now = chrono::Utc::now();
        for auth in [
            "",
            "Bearer x",
            "AWS4-HMAC-SHA256 ",
            "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=0",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host",
        ] {
            let headers: BTreeMap<String, String> = [
                ("authorization".to_string(), auth.to_string()),
                ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
            ]
            .into_iter()
            .collect();
            let request = SignedRequest {
                method: "POST",
                raw_path: "/",
                raw_query: "",
                headers: &headers,
                body: b"",
            };
            assert!(
                verify(&request, now, |_| Some("s".into())).is_err(),
                "{auth}"
            );
        }
    }

    #[test]
    fn paths_are_encoded_again_as_aws_does() {
        assert_eq!(
            aws_encode("/2015-03-31/functions/arn%3Aaws%3Alambda/invocations", true),
            "/2015-03-31/functions/arn%253Aaws%253Alambda/invocations"
        );
        assert_eq!(
            canonical_query("Qualifier=prod&A=b%20c"),
            "A=b%20c&Qualifier=prod"
        );
    }
}
