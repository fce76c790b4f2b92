//! A progress bar for package uploads of a few MB and more: a request that
//! carries a bar (in its extensions) has its body handed to the HTTP/2
//! stream in 64 KiB pieces,
//! and each piece taken advances the bar (so it follows the connection's
//! flow control, not just the encoding). Drawn on stderr only when stderr
//! is a terminal.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use indicatif::{ProgressBar, ProgressStyle};

/// Packages at least this large get a bar.
pub const SHOW_FROM_BYTES: usize = 4 << 20;
const PIECE_BYTES: usize = 64 << 10;

/// A bar for a package of `bytes` bytes, when it is large enough to be
/// worth one.
pub fn bar_for(bytes: usize, what: &str) -> Option<ProgressBar> {
    if bytes < SHOW_FROM_BYTES {
        return None;
    }
    let bar = ProgressBar::new(bytes as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(format!("uploading {what}"));
    Some(bar)
}

/// `message` as a request whose body advances `bar` (if any) as it is sent.
pub fn with_bar<T>(message: T, bar: Option<ProgressBar>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(bar) = bar {
        request.extensions_mut().insert(bar);
    }
    request
}

/// Wraps the client's service: a request made with [`with_bar`] reports
/// its body's progress.
#[derive(Debug, Clone)]
pub struct UploadProgress<S> {
    inner: S,
}

impl<S> UploadProgress<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for UploadProgress<S>
where
    S: tower::Service<http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        match request.extensions_mut().remove::<ProgressBar>() {
            Some(bar) => {
                let (parts, body) = request.into_parts();
                let body = tonic::body::Body::new(Counted {
                    inner: body,
                    pending: Bytes::new(),
                    bar,
                });
                self.inner.call(http::Request::from_parts(parts, body))
            }
            None => self.inner.call(request),
        }
    }
}

/// A body passed on in pieces, counting them on a bar.
struct Counted {
    inner: tonic::body::Body,
    pending: Bytes,
    bar: ProgressBar,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(PIECE_BYTES);
                let piece = self.pending.split_to(n);
                self.bar.inc(n as u64);
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => self.pending = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Poll::Ready(None) => {
                    self.bar.finish_and_clear();
                    return Poll::Ready(None);
                }
                other => return other,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.inner.size_hint();
        let pending = self.pending.len() as u64;
        hint.set_lower(hint.lower() + pending);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + pending);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_body_is_passed_on_whole_in_pieces_and_counted() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let bar = ProgressBar::hidden();
        bar.set_length(data.len() as u64);
        let mut counted = Counted {
            inner: tonic::body::Body::new(http_body_util::Full::new(Bytes::from(data.clone()))),
            pending: Bytes::new(),
            bar: bar.clone(),
        };
        let mut pieces = 0;
        let mut received = Vec::new();
        while let Some(frame) = counted.frame().await {
            let piece = frame.unwrap().into_data().unwrap();
            assert!(piece.len() <= PIECE_BYTES);
            received.extend_from_slice(&piece);
            pieces += 1;
        }
        assert_eq!(received, data);
        assert_eq!(pieces, 4);
        assert_eq!(bar.position(), data.len() as u64);
    }

    #[test]
    fn small_packages_get_no_bar() {
        assert!(bar_for(1024, "x").is_none());
        assert!(bar_for(SHOW_FROM_BYTES, "x").is_some());
        let request = with_bar((), bar_for(SHOW_FROM_BYTES, "x"));
        assert!(request.extensions().get::<ProgressBar>().is_some());
    }
}
