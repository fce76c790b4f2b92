//! An invocation's log: the platform's framing lines (docs/wire-formats.md §4)
//! and [`OutputCapture`] (in `capture`), which drains a runtime's
//! stdout+stderr pipe into a byte-capped buffer and streams an invocation's
//! lines to kumod while it runs.
//!
//! The capture drains continuously in a background task, so a function that
//! prints without end never blocks on a full pipe; what exceeds the cap is
//! dropped and replaced by one marker line. Output written between
//! invocations (and during init) stays in the buffer and is reported before
//! the next invocation's `START` line, as Lambda reports INIT output.

use std::fmt::Write as _;
use std::time::SystemTime;

mod capture;

pub use capture::{
    CappedBuffer, CaptureError, CapturedOutput, LiveSink, OutputCapture, LIVE_FLUSH_INTERVAL,
};

/// Bytes of log returned as the tail (`--log-tail`, Lambda's
/// `X-Amz-Log-Result`): the last 4 KB, REPORT line included.
pub const LOG_TAIL_BYTES: usize = 4096;

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

/// Appends `text`, ending it with a newline when it has none.
pub(crate) fn push_lines(log: &mut String, text: &str) {
    log.push_str(text);
    if !text.is_empty() && !text.ends_with('\n') {
        log.push('\n');
    }
}

/// The marker line appended when `dropped` bytes were cut from a log.
pub fn truncation_line(dropped: u64) -> String {
    format!("[kumo] log truncated: {dropped} bytes dropped\n")
}

/// The part of a framed `log` not yet sent live: everything after its
/// first `streamed` bytes (all of it when nothing was streamed).
pub fn unsent(mut log: String, streamed: usize) -> String {
    if streamed == 0 {
        return log;
    }
    if streamed >= log.len() {
        return String::new();
    }
    if !log.is_char_boundary(streamed) {
        // Cannot happen (live parts end on character boundaries); keep
        // everything rather than cut a character.
        tracing::warn!(
            streamed,
            "live log parts do not end on a character boundary"
        );
        return log;
    }
    log.split_off(streamed)
}

/// The last [`LOG_TAIL_BYTES`] of a log (cut on a character boundary).
pub fn tail(log: &str) -> String {
    let mut start = log.len().saturating_sub(LOG_TAIL_BYTES);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    log[start..].to_string()
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
            streamed: 0,
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
    fn unsent_cuts_what_went_live_and_tail_keeps_the_report() {
        let log = format!("{}hello\n{}", start_line(ID, "1"), end_line(ID));
        let head = start_line(ID, "1").len();
        assert_eq!(unsent(log.clone(), 0), log);
        assert_eq!(
            unsent(log.clone(), head),
            format!("hello\n{}", end_line(ID))
        );
        assert_eq!(unsent(log.clone(), log.len()), "");
        let report = "REPORT RequestId: a\tDuration: 1.00 ms\t\n";
        let long = format!("{}{report}", "é".repeat(5000));
        let t = tail(&long);
        assert!(t.len() <= LOG_TAIL_BYTES && t.len() >= LOG_TAIL_BYTES - 1);
        assert!(t.ends_with(report), "the tail includes REPORT");
        assert_eq!(tail("short\n"), "short\n");
    }
}
