//! The S3 event record a handler written for S3 receives
//! (docs/wire-formats.md §5a), built from the record MinIO posts (§5b):
//! `eventSource` `aws:s3`, `eventVersion` `2.1`, `eventName` without the
//! `s3:` prefix, `awsRegion` from kumod's configuration, and the object key
//! encoded as S3 encodes it. MinIO's other fields stay as they are (extra
//! keys such as `x-minio-deployment-id`, `contentType`, `userMetadata`,
//! `source`). [`EventFormat::Minio`] keeps MinIO's record verbatim.

use serde_json::Value;

use crate::percent::encode_form;

/// The shape of the record a bucket trigger delivers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventFormat {
    /// S3's shape (§5a), the default.
    #[default]
    Aws,
    /// The record exactly as MinIO sent it (§5b).
    Minio,
}

/// An event format name that is not `aws` or `minio`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event format {0:?}: use aws (S3's event shape, the default) or minio (MinIO's record verbatim)")]
pub struct EventFormatError(pub String);

impl EventFormat {
    /// Parses `aws`, `minio` or "" (the default, `aws`), in any case.
    pub fn parse(name: &str) -> Result<Self, EventFormatError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "aws" => Ok(EventFormat::Aws),
            "minio" => Ok(EventFormat::Minio),
            _ => Err(EventFormatError(name.to_string())),
        }
    }

    /// `aws` or `minio`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventFormat::Aws => "aws",
            EventFormat::Minio => "minio",
        }
    }
}

/// Encodes a decoded object key as S3 does in event records: form encoding
/// (a space is `+`, other reserved bytes `%XX`) with `/` left literal.
/// Observed S3 events show `/` literal, `(` as `%28`, `=` as `%3D`, `:` as
/// `%3A` (docs/wire-formats.md §5a). Byte-wise: a key that is not UTF-8
/// or holds NUL keeps every byte (`%FF`, `%00`).
pub fn encode_key(key: &[u8]) -> String {
    encode_form(key, b"/")
}

fn set(object: Option<&mut Value>, field: &str, value: &str) {
    if let Some(Value::Object(map)) = object {
        map.insert(field.to_string(), Value::String(value.to_string()));
    }
}

/// MinIO's `record` in S3's shape: the AWS fields set, the key (decoded
/// bytes `key`) encoded as S3 encodes it, everything else kept.
pub fn aws_record(record: &Value, key: &[u8], region: &str) -> Value {
    let mut out = record.clone();
    let name = record
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = name.strip_prefix("s3:").unwrap_or(name).to_string();
    set(Some(&mut out), "eventVersion", "2.1");
    set(Some(&mut out), "eventSource", "aws:s3");
    set(Some(&mut out), "awsRegion", region);
    set(Some(&mut out), "eventName", &name);
    let object = out.get_mut("s3").and_then(|s3| s3.get_mut("object"));
    set(object, "key", &encode_key(key));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::percent::decode;

    #[test]
    fn keys_are_encoded_as_s3_encodes_them() {
        assert_eq!(encode_key(b"photos/my photo.jpg"), "photos/my+photo.jpg");
        assert_eq!(
            encode_key(b"uploads/Copy (2).jpg"),
            "uploads/Copy+%282%29.jpg"
        );
        assert_eq!(
            encode_key(b"dt=2018-05-04/_SUCCESS"),
            "dt%3D2018-05-04/_SUCCESS"
        );
        assert_eq!(encode_key(b"a+b%2Bc.txt"), "a%2Bb%252Bc.txt");
        assert_eq!(
            encode_key("café/日.txt".as_bytes()),
            "caf%C3%A9/%E6%97%A5.txt"
        );
        assert_eq!(encode_key(b"x\0y\xff"), "x%00y%FF");
        // unquote_plus (Python) / QueryUnescape (Go) give the key back.
        for key in [&b"a+b%2Bc.txt"[..], b"x\0y\xff", b"100% sure?.txt"] {
            assert_eq!(decode(&encode_key(key), true).0, key);
        }
    }

    #[test]
    fn formats_parse() {
        assert_eq!(EventFormat::parse("").unwrap(), EventFormat::Aws);
        assert_eq!(EventFormat::parse("AWS").unwrap(), EventFormat::Aws);
        assert_eq!(EventFormat::parse("minio").unwrap(), EventFormat::Minio);
        assert!(EventFormat::parse("s3")
            .unwrap_err()
            .to_string()
            .contains("aws"));
    }
}
