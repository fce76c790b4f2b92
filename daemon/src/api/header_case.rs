//! Header names as the client spelled them, for API Gateway v1.0 events
//! (`event['headers']['User-Agent']`, docs/wire-formats.md §5d). hyper lowercases
//! header names and keeps their spelling only in a crate-private extension,
//! so the listener reads them itself: each connection's stream passes
//! through a [`HeadTap`], which parses every request head with `httparse`
//! (hyper's own parser) as the bytes are read, and skips bodies by their
//! framing (Content-Length or chunked). Each head's names wait in a queue
//! for the request hyper hands to the service; a head that does not match
//! that request (method, target, the same names in any case) is not used,
//! and the request's names stay lowercase. Anything the tap cannot follow
//! (an oversized head, an upgrade, a framing error) switches it off for
//! the rest of the connection — hyper answers such requests on its own.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper::http::request::Parts;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most headers a head may have for the tap to read it (hyper's limit is
/// 100).
const MAX_HEADERS: usize = 128;
/// Most bytes of one head (or chunk-size line, or trailer block) the tap
/// buffers.
const MAX_BUFFERED: usize = 64 * 1024;
/// Most heads waiting for their requests (pipelining).
const MAX_QUEUED: usize = 32;

/// The request extension with a request's header names in arrival order,
/// spelled as the client sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalHeaderNames(pub Vec<String>);

/// What the tap expects next on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A request head.
    Head,
    /// This many body bytes.
    Body(u64),
    /// A chunk-size line.
    ChunkSize,
    /// This many bytes of chunk data and its CRLF.
    ChunkData(u64),
    /// The trailer block after the last chunk.
    Trailers,
    /// Lost track: nothing more is recorded.
    Off,
}

/// One parsed request head.
#[derive(Debug)]
struct Head {
    method: String,
    target: String,
    names: Vec<String>,
}

/// The result of parsing the buffered bytes.
enum Step {
    /// More bytes are needed.
    Need,
    /// This many buffered bytes were used; continue in this phase.
    Done(usize, Phase),
    /// The bytes cannot be followed.
    Fail,
}

#[derive(Debug)]
struct TapState {
    phase: Phase,
    buffer: Vec<u8>,
    heads: VecDeque<Head>,
}

/// Follows one connection's request stream and records each head's
/// header names (see the module docs).
#[derive(Debug)]
pub struct HeadTap {
    state: Mutex<TapState>,
}

impl Default for HeadTap {
    fn default() -> Self {
        Self {
            state: Mutex::new(TapState {
                phase: Phase::Head,
                buffer: Vec::new(),
                heads: VecDeque::new(),
            }),
        }
    }
}

fn parse_head(buffer: &[u8], heads: &mut VecDeque<Head>) -> Step {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let used = match request.parse(buffer) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Step::Need,
        Err(_) => return Step::Fail,
    };
    let method = request.method.unwrap_or_default();
    let header = |name: &str| -> Vec<String> {
        request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
            .collect()
    };
    let chunked = header("transfer-encoding")
        .last()
        .is_some_and(|codings| codings.rsplit(',').next().map(str::trim) == Some("chunked"));
    let lengths = header("content-length");
    let upgrade = method == "CONNECT" || !header("upgrade").is_empty();
    heads.push_back(Head {
        method: method.to_string(),
        target: request.path.unwrap_or_default().to_string(),
        names: request.headers.iter().map(|h| h.name.to_string()).collect(),
    });
    let next = if upgrade {
        Phase::Off
    } else if chunked {
        Phase::ChunkSize
    } else {
        match lengths.as_slice() {
            [] => Phase::Head,
            [length] => match length.parse::<u64>() {
                Ok(0) => Phase::Head,
                Ok(n) => Phase::Body(n),
                Err(_) => Phase::Off,
            },
            _ => Phase::Off,
        }
    };
    Step::Done(used, next)
}

fn parse_buffered(phase: Phase, buffer: &[u8], heads: &mut VecDeque<Head>) -> Step {
    match phase {
        Phase::Head => parse_head(buffer, heads),
        Phase::ChunkSize => match httparse::parse_chunk_size(buffer) {
            Ok(httparse::Status::Complete((used, 0))) => Step::Done(used, Phase::Trailers),
            Ok(httparse::Status::Complete((used, size))) => {
                Step::Done(used, Phase::ChunkData(size.saturating_add(2)))
            }
            Ok(httparse::Status::Partial) => Step::Need,
            Err(_) => Step::Fail,
        },
        Phase::Trailers => {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match httparse::parse_headers(buffer, &mut headers) {
                Ok(httparse::Status::Complete((used, _))) => Step::Done(used, Phase::Head),
                Ok(httparse::Status::Partial) => Step::Need,
                Err(_) => Step::Fail,
            }
        }
        Phase::Body(_) | Phase::ChunkData(_) | Phase::Off => Step::Fail,
    }
}

impl TapState {
    fn off(&mut self) {
        self.phase = Phase::Off;
        self.buffer = Vec::new();
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match self.phase {
                Phase::Off => return,
                Phase::Body(left) | Phase::ChunkData(left) => {
                    let skip = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    data = &data[skip..];
                    let left = left - skip as u64;
                    self.phase = match (self.phase, left) {
                        (Phase::Body(_), 0) => Phase::Head,
                        (Phase::Body(_), _) => Phase::Body(left),
                        (_, 0) => Phase::ChunkSize,
                        _ => Phase::ChunkData(left),
                    };
                }
                Phase::Head | Phase::ChunkSize | Phase::Trailers => {
                    let before = self.buffer.len();
                    self.buffer.extend_from_slice(data);
                    match parse_buffered(self.phase, &self.buffer, &mut self.heads) {
                        Step::Need if self.buffer.len() <= MAX_BUFFERED => return,
                        Step::Done(used, next) if used > before => {
                            data = &data[used - before..];
                            self.buffer.clear();
                            self.phase = next;
                            if self.heads.len() > MAX_QUEUED {
                                self.heads.clear();
                                self.off();
                            }
                        }
                        _ => self.off(),
                    }
                }
            }
        }
    }
}

impl HeadTap {
    /// Records the bytes just read from the connection.
    pub fn feed(&self, data: &[u8]) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .feed(data);
    }

    /// The client's spelling of the header names of `parts` (the next
    /// request on the connection), when the next recorded head is its own.
    pub fn take(&self, parts: &Parts) -> Option<Vec<String>> {
        let head = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .heads
            .pop_front()?;
        let target = parts.uri.path_and_query().map(|p| p.as_str());
        if head.method != parts.method.as_str()
            || target != Some(head.target.as_str())
            || head.names.len() != parts.headers.len()
        {
            return None;
        }
        let mut counts: HashMap<String, usize> = HashMap::new();
        for name in &head.names {
            *counts.entry(name.to_ascii_lowercase()).or_default() += 1;
        }
        let same = counts
            .iter()
            .all(|(name, count)| parts.headers.get_all(name.as_str()).iter().count() == *count);
        same.then_some(head.names)
    }
}

/// The headers of a request in arrival order: with their original
/// spelling when the tap recorded it ([`OriginalHeaderNames`]), else
/// hyper's lowercase names (values are always hyper's).
pub fn headers_in_order(parts: &Parts) -> Vec<(String, String)> {
    let value = |v: &hyper::header::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    let Some(OriginalHeaderNames(names)) = parts.extensions.get::<OriginalHeaderNames>() else {
        return parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), value(v)))
            .collect();
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    names
        .iter()
        .filter_map(|name| {
            let lower = name.to_ascii_lowercase();
            let index = seen.entry(lower.clone()).or_default();
            let found = parts.headers.get_all(lower.as_str()).iter().nth(*index);
            *index += 1;
            found.map(|v| (name.clone(), value(v)))
        })
        .collect()
}

/// A connection's stream, read through a [`HeadTap`].
pub struct Tapped<S> {
    inner: S,
    tap: Arc<HeadTap>,
}

impl<S> Tapped<S> {
    /// `inner`, with the bytes read from it fed to `tap`.
    pub fn new(inner: S, tap: Arc<HeadTap>) -> Self {
        Self { inner, tap }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tapped<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.tap.feed(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tapped<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
