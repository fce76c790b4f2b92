//! An invocation's log: the platform's framing lines (docs/wire-formats.md §4)
//! and [`OutputCapture`], which drains a runtime's stdout+stderr pipe into a
//! byte-capped buffer.
//!
//! The capture drains continuously in a background task, so a function that
//! prints without end never blocks on a full pipe; what exceeds the cap is
//! dropped and replaced by one marker line. Output written between
//! invocations (and during init) stays in the buffer and is reported before
//! the next invocation's `START` line, as Lambda reports INIT output.

use std::fmt::Write as _;
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::net::unix::pipe::Receiver;
use tokio::task::JoinHandle;

/// `START RequestId: <id> Version: <version>` and a newline.
pub fn start_line(request_id: &str, version: &str) -> String {
    format!("START RequestId: {request_id} Version: {version}\n")
}

/// `END RequestId: <id>` and a newline.
pub fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}\n")
}

/// How an invocation ended, for the REPORT line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportStatus {
    /// Completed (successfully or with a function error): no status field.
    Completed,
    /// Killed at its timeout: `Status: timeout`.
    Timeout,
    /// The runtime failed: `Status: error` and `Error Type: <type>`, e.g.
    /// `Runtime.ExitError` or `Runtime.OutOfMemory`.
    Error(String),
}

/// Figures of one REPORT line.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<'a> {
    /// Lambda request id.
    pub request_id: &'a str,
    /// Run time of the invocation in milliseconds.
    pub duration_ms: f64,
    /// Configured memory in MB.
    pub memory_size_mb: u32,
    /// Peak memory used in MB.
    pub max_memory_used_mb: u64,
    /// Set on a cold start only.
    pub init_duration_ms: Option<f64>,
    /// How it ended.
    pub status: ReportStatus,
}

/// Billed duration: the duration rounded up to whole milliseconds (at least 1).
pub fn billed_duration_ms(duration_ms: f64) -> u64 {
    if duration_ms.is_finite() && duration_ms > 1.0 {
        duration_ms.ceil() as u64
    } else {
        1
    }
}

/// The TAB-separated REPORT line (each field followed by a TAB; failure
/// fields last, the line ending after them) and a newline.
pub fn report_line(report: &Report<'_>) -> String {
    let mut line = String::with_capacity(192);
    let _ = write!(
        line,
        "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
        report.request_id,
        report.duration_ms,
        billed_duration_ms(report.duration_ms),
        report.memory_size_mb,
        report.max_memory_used_mb,
    );
    if let Some(init) = report.init_duration_ms {
        let _ = write!(line, "Init Duration: {init:.2} ms\t");
    }
    match &report.status {
        ReportStatus::Completed => {}
        ReportStatus::Timeout => line.push_str("Status: timeout"),
        ReportStatus::Error(error_type) => {
            let _ = write!(line, "Status: error\tError Type: {error_type}");
        }
    }
    line.push('\n');
    line
}

/// `<ISO8601 UTC with ms> <id> Task timed out after <s.ss> seconds` and a newline.
pub fn timeout_line(at: SystemTime, request_id: &str, timeout_seconds: f64) -> String {
    let at: chrono::DateTime<chrono::Utc> = at.into();
    format!(
        "{} {request_id} Task timed out after {timeout_seconds:.2} seconds\n",
        at.format("%Y-%m-%dT%H:%M:%S%.3fZ")
    )
}

/// One invocation's complete log: output written before it (init, or
/// between invocations), `START`, its own output, the `Task timed out` line
/// if `timed_out_line` is given, `END` and `REPORT`. Output that does not end
/// in a newline gets one.
pub fn frame(
    captured: &CapturedOutput,
    version: &str,
    timed_out_line: Option<&str>,
    report: &Report<'_>,
) -> String {
    let mut log = String::with_capacity(captured.before_start.len() + captured.during.len() + 256);
    push_lines(&mut log, &captured.before_start);
    log.push_str(&start_line(report.request_id, version));
    push_lines(&mut log, &captured.during);
    if let Some(line) = timed_out_line {
        log.push_str(line);
    }
    log.push_str(&end_line(report.request_id));
    log.push_str(&report_line(report));
    log
}

fn push_lines(log: &mut String, text: &str) {
    log.push_str(text);
    if !text.is_empty() && !text.ends_with('\n') {
        log.push('\n');
    }
}

/// The marker line appended when `dropped` bytes were cut from a log.
pub fn truncation_line(dropped: u64) -> String {
    format!("[kumo] log truncated: {dropped} bytes dropped\n")
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
        }
    }
}

/// The pipe and the buffer it drains into, locked together so that reads
/// from the background task and from [`OutputCapture::drain_now`] keep order.
#[derive(Debug)]
struct Inner {
    buffer: CappedBuffer,
    eof: bool,
}

/// Continuously drains a runtime's output pipe into a [`CappedBuffer`].
/// Dropping it stops draining.
#[derive(Debug)]
pub struct OutputCapture {
    pipe: Arc<Receiver>,
    inner: Arc<Mutex<Inner>>,
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
        }));
        let task = tokio::spawn(drain_forever(pipe.clone(), inner.clone()));
        Ok(Self { pipe, inner, task })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Reads everything currently in the pipe, without waiting.
    pub fn drain_now(&self) {
        let mut inner = self.lock();
        let _ = read_available(&self.pipe, &mut inner);
    }

    /// Marks the start of an invocation's output (after draining what is
    /// already written).
    pub fn mark_start(&self) {
        let mut inner = self.lock();
        let _ = read_available(&self.pipe, &mut inner);
        inner.buffer.mark_start();
    }

    /// Drains what is in the pipe now and takes the whole buffer.
    pub fn take(&self) -> CapturedOutput {
        let mut inner = self.lock();
        let _ = read_available(&self.pipe, &mut inner);
        inner.buffer.take()
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

async fn drain_forever(pipe: Arc<Receiver>, inner: Arc<Mutex<Inner>>) {
    loop {
        if let Err(e) = pipe.readable().await {
            tracing::warn!(error = %e, "runtime output pipe failed");
            return;
        }
        let mut inner = lock(&inner);
        if let Err(e) = read_available(&pipe, &mut inner) {
            tracing::warn!(error = %e, "reading runtime output failed");
            return;
        }
        if inner.eof {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

    #[test]
    fn start_and_end_lines() {
        assert_eq!(
            start_line(ID, "$LATEST"),
            format!("START RequestId: {ID} Version: $LATEST\n")
        );
        assert_eq!(end_line(ID), format!("END RequestId: {ID}\n"));
    }

    #[test]
    fn report_line_cold_start() {
        let line = report_line(&Report {
            request_id: ID,
            duration_ms: 3.01,
            memory_size_mb: 128,
            max_memory_used_mb: 36,
            init_duration_ms: Some(110.1),
            status: ReportStatus::Completed,
        });
        assert_eq!(
            line,
            format!("REPORT RequestId: {ID}\tDuration: 3.01 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\tMax Memory Used: 36 MB\tInit Duration: 110.10 ms\t\n")
        );
    }

    #[test]
    fn report_line_warm_timeout_and_errors() {
        let mut report = Report {
            request_id: ID,
            duration_ms: 1000.0,
            memory_size_mb: 256,
            max_memory_used_mb: 40,
            init_duration_ms: None,
            status: ReportStatus::Timeout,
        };
        assert_eq!(
            report_line(&report),
            format!("REPORT RequestId: {ID}\tDuration: 1000.00 ms\tBilled Duration: 1000 ms\tMemory Size: 256 MB\tMax Memory Used: 40 MB\tStatus: timeout\n")
        );
        report.status = ReportStatus::Error("Runtime.OutOfMemory".into());
        report.duration_ms = 0.2;
        assert_eq!(
            report_line(&report),
            format!("REPORT RequestId: {ID}\tDuration: 0.20 ms\tBilled Duration: 1 ms\tMemory Size: 256 MB\tMax Memory Used: 40 MB\tStatus: error\tError Type: Runtime.OutOfMemory\n")
        );
    }

    #[test]
    fn frame_puts_earlier_output_before_start_and_the_timeout_before_end() {
        let report = Report {
            request_id: ID,
            duration_ms: 3000.0,
            memory_size_mb: 128,
            max_memory_used_mb: 20,
            init_duration_ms: None,
            status: ReportStatus::Timeout,
        };
        let captured = CapturedOutput {
            before_start: "init output".into(),
            during: "working\nno newline".into(),
        };
        let timed_out = timeout_line(UNIX_EPOCH, ID, 3.0);
        let log = frame(&captured, "7", Some(&timed_out), &report);
        assert_eq!(
            log,
            format!(
                "init output\n{}working\nno newline\n{timed_out}{}{}",
                start_line(ID, "7"),
                end_line(ID),
                report_line(&report)
            )
        );
        let quiet = frame(&CapturedOutput::default(), "$LATEST", None, &report);
        assert_eq!(
            quiet,
            format!(
                "{}{}{}",
                start_line(ID, "$LATEST"),
                end_line(ID),
                report_line(&report)
            )
        );
    }

    #[test]
    fn billed_duration_rounds_up() {
        assert_eq!(billed_duration_ms(3.01), 4);
        assert_eq!(billed_duration_ms(3.0), 3);
        assert_eq!(billed_duration_ms(0.0), 1);
        assert_eq!(billed_duration_ms(f64::NAN), 1);
    }

    #[test]
    fn timeout_line_is_iso8601_with_millis() {
        let at = UNIX_EPOCH + Duration::from_millis(1_704_067_200_123);
        assert_eq!(
            timeout_line(at, ID, 3.0),
            format!("2024-01-01T00:00:00.123Z {ID} Task timed out after 3.00 seconds\n")
        );
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
        use std::io::Write;
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
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !capture.at_eof() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
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
}
