//! Percent-encoding, shared by everything Kumo reads out of URLs or writes
//! into events: object keys in MinIO and S3 events, query strings of HTTP
//! triggers and signed requests, function names in Invoke API paths.

/// Decodes `%XX` escapes, and `+` as a space when `plus_is_space` (form and
/// Go `QueryEscape` encoding). A malformed escape is kept literally; the
/// byte offset of the first one is returned with the bytes.
pub fn decode(text: &str, plus_is_space: bool) -> (Vec<u8>, Option<usize>) {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut first_bad = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let value = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(value) = value {
                    out.push(value);
                    i += 3;
                    continue;
                }
                first_bad.get_or_insert(i);
                out.push(b'%');
            }
            b'+' if plus_is_space => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    (out, first_bad)
}

/// [`decode`], as text (invalid UTF-8 replaced).
pub fn decode_lossy(text: &str, plus_is_space: bool) -> String {
    String::from_utf8_lossy(&decode(text, plus_is_space).0).into_owned()
}

/// Encodes `bytes` as HTML forms do (`application/x-www-form-urlencoded`,
/// Java's `URLEncoder`): ASCII letters, digits and `-_.*` stay, a space
/// becomes `+`, every other byte `%XX` (uppercase hex) — except the bytes
/// in `also_keep` (ASCII), which stay too. Byte-wise, so any input, UTF-8 or not,
/// decodes back exactly with [`decode`] (`plus_is_space`).
pub fn encode_form(bytes: &[u8], also_keep: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ if byte.is_ascii() && also_keep.contains(&byte) => out.push(char::from(byte)),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_round_trips_every_byte() {
        assert_eq!(
            encode_form(b"my photo (1).jpg", b""),
            "my+photo+%281%29.jpg"
        );
        assert_eq!(encode_form(b"a/b=c~d*e", b"/"), "a/b%3Dc%7Ed*e");
        assert_eq!(encode_form("café".as_bytes(), b""), "caf%C3%A9");
        let every: Vec<u8> = (0..=255).collect();
        let encoded = encode_form(&every, b"/");
        assert!(encoded.is_ascii());
        assert_eq!(decode(&encoded, true), (every, None));
    }

    #[test]
    fn escapes_plus_and_malformed_escapes() {
        assert_eq!(decode_lossy("a%2Fb+c", true), "a/b c");
        assert_eq!(decode_lossy("a%2Fb+c", false), "a/b+c");
        assert_eq!(decode("x%zz%4", true), (b"x%zz%4".to_vec(), Some(1)));
        assert_eq!(
            decode("caf%C3%A9", false),
            ("café".as_bytes().to_vec(), None)
        );
    }
}
