//! [`OutputCapture`]: drains a runtime's stdout+stderr pipe into a
//! [`CappedBuffer`] and, while an invocation runs, streams its log to a
//! [`LiveSink`] in batches.
//!
//! Live streaming never slows the function: the pipe is drained whatever
//! happens to the batches, a batch the sink cannot take now stays in the
//! (capped) buffer and is offered again later, and whatever was not sent
//! live when the invocation ends goes with its result. What was sent is
//! always a prefix of the invocation's framed log ([`super::frame`]): the
//! earlier output and `START` first, then whole lines (or, for a line longer
//! than a batch, a piece cut on a character boundary).

use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::unix::pipe::Receiver;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{push_lines, truncation_line};

/// A running invocation's pending lines are sent at least this often.
pub const LIVE_FLUSH_INTERVAL: Duration = Duration::from_millis(150);
/// Pending bytes that make a batch go at once, before the interval.
const LIVE_FLUSH_BYTES: usize = 64 * 1024;
/// Pending lines that make a batch go at once, before the interval.
const LIVE_FLUSH_LINES: usize = 256;
/// Largest batch (a longer backlog goes in several).
const MAX_LIVE_BATCH_BYTES: usize = 256 * 1024;

/// Where a running invocation's log batches go (kumod's connection).
pub trait LiveSink: Send + Sync + std::fmt::Debug {
    /// Takes `text` now, or gives it back when it cannot (queue full,
    /// connection closed); it is offered again, with what follows, later.
    fn try_send(&self, text: String) -> Result<(), String>;
}

/// A byte-capped log buffer that keeps the start of what it is given.
#[derive(Debug)]
pub struct CappedBuffer {
    data: Vec<u8>,
    cap: usize,
    dropped: u64,
    /// Offset in `data` where the current invocation's output begins.
    mark: usize,
}

/// Output taken from a [`CappedBuffer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    /// Output written before the mark (init or between invocations).
    pub before_start: String,
    /// Output written after the mark, plus the truncation marker if bytes
    /// were dropped.
    pub during: String,
    /// Bytes of the invocation's framed log already sent live (0: none).
    pub streamed: usize,
}

impl CappedBuffer {
    /// An empty buffer keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            data: Vec::new(),
            cap,
            dropped: 0,
            mark: 0,
        }
    }

    /// Appends what fits under the cap and counts the rest as dropped.
    pub fn push(&mut self, bytes: &[u8]) {
        let room = self.cap.saturating_sub(self.data.len());
        let kept = room.min(bytes.len());
        self.data.extend_from_slice(&bytes[..kept]);
        self.dropped += (bytes.len() - kept) as u64;
    }

    /// Marks the start of an invocation's own output.
    pub fn mark_start(&mut self) {
        self.mark = self.data.len();
    }

    /// Takes everything and resets the buffer (and its cap budget).
    pub fn take(&mut self) -> CapturedOutput {
        let mark = self.mark.min(self.data.len());
        let before_start = String::from_utf8_lossy(&self.data[..mark]).into_owned();
        let mut during = String::from_utf8_lossy(&self.data[mark..]).into_owned();
        if self.dropped > 0 {
            if !during.is_empty() && !during.ends_with('\n') {
                during.push('\n');
            }
            during.push_str(&truncation_line(self.dropped));
        }
        self.data.clear();
        self.dropped = 0;
        self.mark = 0;
        CapturedOutput {
            before_start,
            during,
            streamed: 0,
        }
    }

    /// The earlier output (before the mark) as the framed log has it.
    fn head(&self) -> String {
        let mut head = String::new();
        push_lines(&mut head, &String::from_utf8_lossy(&self.data[..self.mark]));
        head
    }
}

/// The invocation whose log is streamed.
#[derive(Debug)]
struct Live {
    sink: Arc<dyn LiveSink>,
    /// Its `START` line; `None` once sent (with the earlier output).
    start_line: Option<String>,
    /// Whether it was handed to the runtime (its output has begun).
    running: bool,
    /// `data[..sent_to]` of the buffer is sent (from the mark on).
    sent_to: usize,
    /// Bytes of framed log text sent.
    sent_bytes: usize,
    /// When the pending lines go at the latest.
    due: Instant,
}

/// The pipe's buffer and the live invocation, locked together so that
/// reads from the background task and from the invoking task keep order.
#[derive(Debug)]
struct Inner {
    buffer: CappedBuffer,
    eof: bool,
    live: Option<Live>,
}

impl Inner {
    /// The end (exclusive) of the next batch from `from`: the last newline
    /// within [`MAX_LIVE_BATCH_BYTES`]; without one, a long enough piece
    /// cut before a UTF-8 continuation byte; `from` when nothing is ready.
    fn batch_end(&self, from: usize) -> usize {
        let data = &self.buffer.data;
        let limit = data.len().min(from + MAX_LIVE_BATCH_BYTES);
        if let Some(newline) = data[from..limit].iter().rposition(|b| *b == b'\n') {
            return from + newline + 1;
        }
        if limit - from < MAX_LIVE_BATCH_BYTES {
            return from;
        }
        // End before a byte that is not a continuation byte: the piece
        // then ends on a character boundary even if the rest of a
        // character has not been read yet.
        let mut end = limit.min(data.len() - 1);
        while end > from && (data[end] & 0xC0) == 0x80 {
            end -= 1;
        }
        end
    }

    /// Whether enough is pending to send before the interval is up.
    fn batch_full(&self) -> bool {
        let Some(live) = self.live.as_ref().filter(|l| l.running) else {
            return false;
        };
        let pending = &self.buffer.data[live.sent_to.min(self.buffer.data.len())..];
        pending.len() >= LIVE_FLUSH_BYTES
            || pending.iter().filter(|b| **b == b'\n').count() >= LIVE_FLUSH_LINES
    }

    /// Sends what is ready (the head, then whole lines) until nothing is
    /// left or the sink refuses; the next batch is due an interval later.
    fn flush_live(&mut self) {
        let Some(mut live) = self.live.take() else {
            return;
        };
        if live.running {
            loop {
                let from = live.sent_to.max(self.buffer.mark);
                let end = self.batch_end(from);
                if end == from && live.start_line.is_none() {
                    break;
                }
                let mut text = match &live.start_line {
                    Some(start) => self.buffer.head() + start,
                    None => String::new(),
                };
                text.push_str(&String::from_utf8_lossy(&self.buffer.data[from..end]));
                let len = text.len();
                if live.sink.try_send(text).is_err() {
                    break;
                }
                live.start_line = None;
                live.sent_to = end;
                live.sent_bytes += len;
            }
            live.due = Instant::now() + LIVE_FLUSH_INTERVAL;
        }
        self.live = Some(live);
    }
}

/// Continuously drains a runtime's output pipe into a [`CappedBuffer`].
/// Dropping it stops draining.
#[derive(Debug)]
pub struct OutputCapture {
    pipe: Arc<Receiver>,
    inner: Arc<Mutex<Inner>>,
    /// Wakes the draining task when an invocation's streaming begins.
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Drop for OutputCapture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The output pipe could not be registered with tokio.
#[derive(Debug, thiserror::Error)]
#[error("watching the runtime output pipe (fd {fd}): {source}")]
pub struct CaptureError {
    /// The pipe's file descriptor number.
    pub fd: i32,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

impl OutputCapture {
    /// Starts draining `pipe` (a non-blocking read end) on the current tokio
    /// runtime, keeping at most `cap` bytes per [`take`](Self::take).
    pub fn start(pipe: OwnedFd, cap: usize) -> Result<Self, CaptureError> {
        use std::os::fd::AsRawFd;
        let fd = pipe.as_raw_fd();
        // Checks that it is a pipe and makes it non-blocking.
        let pipe =
            Arc::new(Receiver::from_owned_fd(pipe).map_err(|source| CaptureError { fd, source })?);
        let inner = Arc::new(Mutex::new(Inner {
            buffer: CappedBuffer::new(cap),
            eof: false,
            live: None,
        }));
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(drain_forever(pipe.clone(), inner.clone(), wake.clone()));
        Ok(Self {
            pipe,
            inner,
            wake,
            task,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Reads everything currently in the pipe, without waiting.
    pub fn drain_now(&self) {
        let mut inner = self.lock();
        let _ = read_available(&self.pipe, &mut inner);
    }

    /// Streams the next invocation's log (from its hand-over, see
    /// [`mark_start`](Self::mark_start)) to `sink`, its `START` line first.
    pub fn stream_next(&self, start_line: String, sink: Arc<dyn LiveSink>) {
        self.lock().live = Some(Live {
            sink,
            start_line: Some(start_line),
            running: false,
            sent_to: 0,
            sent_bytes: 0,
            due: Instant::now() + LIVE_FLUSH_INTERVAL,
        });
    }

    /// Marks the start of an invocation's output (after draining what is
    /// already written); a streamed invocation's first batch is due one
    /// interval later.
    pub fn mark_start(&self) {
        let mut inner = self.lock();
        let _ = read_available(&self.pipe, &mut inner);
        inner.buffer.mark_start();
        let mark = inner.buffer.mark;
        if let Some(live) = inner.live.as_mut() {
            live.running = true;
            live.sent_to = mark;
            live.due = Instant::now() + LIVE_FLUSH_INTERVAL;
            drop(inner);
            self.wake.notify_one();
        }
    }

    /// Drains what is in the pipe now and takes the whole buffer, ending
    /// the invocation's streaming ([`CapturedOutput::streamed`] says how
    /// much of its log went live).
    pub fn take(&self) -> CapturedOutput {
        let mut inner = self.lock();
        let _ = read_available(&self.pipe, &mut inner);
        let streamed = inner.live.take().map_or(0, |live| live.sent_bytes);
        CapturedOutput {
            streamed,
            ..inner.buffer.take()
        }
    }

    /// Whether the write end has been closed by every writer.
    pub fn at_eof(&self) -> bool {
        self.lock().eof
    }
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads until the pipe is empty or at end of file; other errors are
/// returned. An empty pipe clears the readiness the background task waits on.
fn read_available(pipe: &Receiver, inner: &mut Inner) -> std::io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    while !inner.eof {
        match pipe.try_read(&mut chunk) {
            Ok(0) => inner.eof = true,
            Ok(n) => inner.buffer.push(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Drains the pipe until end of file, and sends a streamed invocation's
/// batches when one is full or due.
async fn drain_forever(pipe: Arc<Receiver>, inner: Arc<Mutex<Inner>>, wake: Arc<Notify>) {
    loop {
        let due = lock(&inner)
            .live
            .as_ref()
            .filter(|l| l.running)
            .map(|l| l.due);
        tokio::select! {
            readable = pipe.readable() => {
                if let Err(e) = readable {
                    tracing::warn!(error = %e, "runtime output pipe failed");
                    return;
                }
                let mut inner = lock(&inner);
                if let Err(e) = read_available(&pipe, &mut inner) {
                    tracing::warn!(error = %e, "reading runtime output failed");
                    return;
                }
                if inner.eof || inner.batch_full() {
                    inner.flush_live();
                }
                if inner.eof {
                    return;
                }
            }
            () = sleep_until_some(due) => lock(&inner).flush_live(),
            () = wake.notified() => {}
        }
    }
}

/// Sleeps until `due`, or forever when there is nothing due.
async fn sleep_until_some(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Collects batches; refuses them while `refuse` is set.
    #[derive(Debug, Default)]
    struct Collect {
        batches: Mutex<Vec<String>>,
        refuse: std::sync::atomic::AtomicBool,
    }

    impl LiveSink for Collect {
        fn try_send(&self, text: String) -> Result<(), String> {
            if self.refuse.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(text);
            }
            self.batches.lock().unwrap().push(text);
            Ok(())
        }
    }

    impl Collect {
        fn joined(&self) -> String {
            self.batches.lock().unwrap().concat()
        }
        fn count(&self) -> usize {
            self.batches.lock().unwrap().len()
        }
    }

    /// A pipe's write end, a capture of its read end and a sink.
    fn streamed_pipe() -> (std::fs::File, OutputCapture, Arc<Collect>) {
        let (read, write) = nix::unistd::pipe().unwrap();
        let capture = OutputCapture::start(read, 1 << 20).unwrap();
        (
            std::fs::File::from(write),
            capture,
            Arc::new(Collect::default()),
        )
    }

    async fn until(what: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !what() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[test]
    fn capped_buffer_keeps_the_start_and_marks_truncation() {
        let mut buffer = CappedBuffer::new(10);
        buffer.push(b"init\n");
        buffer.mark_start();
        buffer.push(b"0123456789");
        let taken = buffer.take();
        assert_eq!(taken.before_start, "init\n");
        assert_eq!(
            taken.during,
            "01234\n[kumo] log truncated: 5 bytes dropped\n"
        );
        buffer.push(b"next\n");
        assert_eq!(
            buffer.take().during,
            "next\n",
            "cap budget resets after take"
        );
    }

    #[tokio::test]
    async fn capture_drains_a_flood_without_blocking_the_writer() {
        let (read, write) = nix::unistd::pipe().unwrap();
        let capture = OutputCapture::start(read, 1000).unwrap();
        let writer = std::thread::spawn(move || {
            let mut file = std::fs::File::from(write);
            // 4 MiB: far more than a pipe holds; would block without draining.
            for _ in 0..1024 {
                file.write_all(&[b'x'; 4096]).unwrap();
            }
        });
        tokio::task::spawn_blocking(move || writer.join().unwrap())
            .await
            .unwrap();
        until(|| capture.at_eof()).await;
        let taken = capture.take();
        assert!(taken.during.starts_with(&"x".repeat(1000)));
        assert!(
            taken
                .during
                .ends_with(&truncation_line(4 * 1024 * 1024 - 1000)),
            "{}",
            &taken.during[1000..]
        );
    }

    #[tokio::test]
    async fn a_streamed_invocation_sends_its_head_and_whole_lines_as_a_prefix_of_its_log() {
        let (mut file, capture, sink) = streamed_pipe();
        file.write_all(b"init output").unwrap();
        capture.stream_next("START x\n".into(), sink.clone());
        tokio::time::sleep(LIVE_FLUSH_INTERVAL * 2).await;
        assert_eq!(sink.count(), 0, "nothing goes before the hand-over");
        capture.mark_start();
        file.write_all("one\ntwo é".as_bytes()).unwrap();
        until(|| sink.joined().contains("one\n")).await;
        assert_eq!(sink.joined(), "init output\nSTART x\none\n");
        file.write_all(b" half\n").unwrap();
        until(|| sink.joined().ends_with("half\n")).await;
        file.write_all(b"unsent").unwrap();
        // (take reads what the reactor has seen: give it a moment.)
        tokio::time::sleep(Duration::from_millis(50)).await;
        let taken = capture.take();
        let framed = format!(
            "{}START x\n{}",
            taken.before_start.clone() + "\n",
            taken.during
        );
        assert_eq!(taken.streamed, sink.joined().len());
        assert!(framed.starts_with(&sink.joined()), "{framed:?}");
        assert_eq!(&framed[taken.streamed..], "unsent");
        // The next invocation starts with nothing streamed.
        file.write_all(b"later\n").unwrap();
        tokio::time::sleep(LIVE_FLUSH_INTERVAL * 2).await;
        let count = sink.count();
        assert_eq!(capture.take().streamed, 0);
        assert_eq!(sink.count(), count, "nothing streams between invocations");
    }

    #[tokio::test]
    async fn a_refused_batch_is_kept_and_sent_later() {
        let (mut file, capture, sink) = streamed_pipe();
        sink.refuse
            .store(true, std::sync::atomic::Ordering::Relaxed);
        capture.stream_next("START y\n".into(), sink.clone());
        capture.mark_start();
        file.write_all(b"kept\n").unwrap();
        tokio::time::sleep(LIVE_FLUSH_INTERVAL * 3).await;
        assert_eq!(sink.count(), 0);
        sink.refuse
            .store(false, std::sync::atomic::Ordering::Relaxed);
        until(|| sink.count() > 0).await;
        assert_eq!(sink.joined(), "START y\nkept\n");
        let lines: String = (0..300).map(|i| format!("line {i}\n")).collect();
        file.write_all(lines.as_bytes()).unwrap();
        until(|| sink.joined().ends_with("line 299\n")).await;
        assert!(sink.joined().ends_with(&lines));
        let taken = capture.take();
        assert_eq!(taken.streamed, sink.joined().len());
    }

    #[test]
    fn a_long_line_is_cut_on_a_character_boundary_and_thresholds_trigger_a_batch() {
        let mut inner = Inner {
            buffer: CappedBuffer::new(usize::MAX),
            eof: false,
            live: None,
        };
        // "é" is two bytes: the piece must not end between them.
        inner
            .buffer
            .push("é".repeat(MAX_LIVE_BATCH_BYTES).as_bytes());
        let end = inner.batch_end(0);
        assert!(end > 0 && end <= MAX_LIVE_BATCH_BYTES);
        assert!(std::str::from_utf8(&inner.buffer.data[..end]).is_ok());
        // A character whose last byte has not arrived is not cut either.
        inner.buffer = CappedBuffer::new(usize::MAX);
        inner.buffer.push(&[b'a'; MAX_LIVE_BATCH_BYTES]);
        inner.buffer.push(&"é".as_bytes()[..1]);
        assert_eq!(inner.batch_end(0), MAX_LIVE_BATCH_BYTES);
        inner.buffer.push(b"\nshort");
        let from = inner.buffer.data.len() - 5;
        assert_eq!(inner.batch_end(from), from, "a short partial line waits");

        let live = |sent_to| Live {
            sink: Arc::new(Collect::default()),
            start_line: None,
            running: true,
            sent_to,
            sent_bytes: 0,
            due: Instant::now(),
        };
        inner.buffer = CappedBuffer::new(usize::MAX);
        inner.live = Some(live(0));
        inner.buffer.push(&b"line\n".repeat(LIVE_FLUSH_LINES - 1));
        assert!(!inner.batch_full());
        inner.buffer.push(b"line\n");
        assert!(inner.batch_full(), "N lines");
        inner.buffer = CappedBuffer::new(usize::MAX);
        inner.buffer.push(&vec![b'x'; LIVE_FLUSH_BYTES]);
        assert!(inner.batch_full(), "N bytes");
        inner.live = Some(live(1));
        assert!(!inner.batch_full(), "counts only what is not sent");
    }
}
