//! Percent-decoding, shared by everything Kumo reads out of URLs: object
//! keys in MinIO events, query strings of HTTP triggers and signed
//! requests, function names in Invoke API paths.

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

#[cfg(test)]
mod tests {
    use super::*;

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
