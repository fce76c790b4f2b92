//! HTML building blocks of the console: escaping, the page layout (with
//! the embedded stylesheet and script), form decoding and responses.

use std::collections::HashMap;
use std::convert::Infallible;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

/// The body type of every console response (pages are whole, the live
/// tail streams).
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// The console's stylesheet.
const STYLE: &str = include_str!("console.css");
/// The console's script (template picker, zip upload, live tail).
const SCRIPT: &str = include_str!("console.js");

/// Escapes `text` for HTML text and double-quoted attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes `text` for a URL path segment or query value.
pub(crate) fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A hidden CSRF field for a form.
pub(crate) fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}

/// A whole page: `title` (escaped here), navigation with sign-out when
/// `csrf` is given, a flash `notice` (escaped here) and `body` (already
/// HTML).
pub(crate) fn page(title: &str, csrf: Option<&str>, notice: Option<&str>, body: &str) -> String {
    let nav = match csrf {
        Some(csrf) => format!(
            "<nav><a href=\"/console/\">Functions</a> <a href=\"/console/new\">Create function</a> \
             <a href=\"/console/cluster\">Cluster</a>\
             <form method=\"post\" action=\"/console/logout\" class=\"inline\">{}\
             <button id=\"sign-out\" type=\"submit\">Sign out</button></form></nav>",
            csrf_field(csrf)
        ),
        None => String::new(),
    };
    let notice = notice
        .filter(|n| !n.is_empty())
        .map(|n| format!("<p class=\"notice\" id=\"notice\">{}</p>", esc(n)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title} · Kumo console</title><style>{STYLE}</style></head>\
         <body><header><strong>Kumo</strong> console{nav}</header><main>\
         <h1>{title}</h1>{notice}{body}</main><script>{SCRIPT}</script></body></html>",
        title = esc(title),
    )
}

/// A response with `status`, `content_type` and `body`, never cached.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .header("x-content-type-options", "nosniff")
        .header("x-frame-options", "DENY")
        .header(
            "content-security-policy",
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:",
        )
        .body(Full::new(body.into()).boxed_unsync())
        .unwrap_or_default()
}

/// A 200 HTML page.
pub(crate) fn html(body: String) -> Response<Body> {
    respond(StatusCode::OK, "text/html; charset=utf-8", body)
}

/// An HTML page with an error status.
pub(crate) fn error_page(status: StatusCode, csrf: Option<&str>, message: &str) -> Response<Body> {
    respond(
        status,
        "text/html; charset=utf-8",
        page("Error", csrf, Some(message), ""),
    )
}

/// A 303 redirect to `location` (a console path).
pub(crate) fn redirect(location: &str) -> Response<Body> {
    let mut response = respond(StatusCode::SEE_OTHER, "text/plain", "");
    if let Ok(value) = location.parse() {
        response
            .headers_mut()
            .insert(hyper::header::LOCATION, value);
    }
    response
}

/// Decodes an `application/x-www-form-urlencoded` body or query; a later
/// repeat of a name wins.
pub(crate) fn form(encoded: &str) -> HashMap<String, String> {
    encoded
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                kumo_triggers::percent::decode_lossy(name, true),
                kumo_triggers::percent::decode_lossy(value, true),
            )
        })
        .collect()
}

/// A table with `headers` and rows of cells (already HTML).
pub(crate) fn table(id: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let head: String = headers
        .iter()
        .map(|h| format!("<th>{}</th>", esc(h)))
        .collect();
    let body: String = rows
        .iter()
        .map(|row| {
            let cells: String = row.iter().map(|c| format!("<td>{c}</td>")).collect();
            format!("<tr>{cells}</tr>")
        })
        .collect();
    format!("<table id=\"{id}\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_forms() {
        assert_eq!(
            esc("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(url("a b/é"), "a%20b%2F%C3%A9");
        let f = form("a=1+2&b=%3Cx%3E&c&a=3");
        assert_eq!(f["a"], "3");
        assert_eq!(f["b"], "<x>");
        assert_eq!(f["c"], "");
        let p = page("<t>", Some("tok"), Some("<n>"), "<p>x</p>");
        assert!(p.contains("<title>&lt;t&gt;"));
        assert!(p.contains("&lt;n&gt;"));
        assert!(p.contains("value=\"tok\""));
    }
}
