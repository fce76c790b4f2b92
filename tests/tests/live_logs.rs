//! Logs as they happen: a long invocation's lines reach `kumo logs
//! --follow` (the real CLI) while it runs, `--follow` starts at the end,
//! `--log-tail` includes the REPORT line, a 100 MB flood stays capped while
//! streamed, and the lines an agent sent before it died are kept.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kumo_tests::{package_dir, root_or_skip, wait_until, Kumo};

/// Prints `tick i` once a second for `event["n"]` seconds (or a flood of
/// `event["flood_mb"]` MB in 1 KB lines), then returns.
const TICKER: &str = r#"import sys, time
def handler(event, context):
    if event.get('old'):
        print('old line')
        return 'old'
    for mb in range(event.get('flood_mb', 0)):
        sys.stdout.write(('y' * 1023 + '\n') * 1024)
    for i in range(event.get('n', 0)):
        print('tick', i, flush=True)
        time.sleep(event.get('every', 1))
    return 'done'
"#;

/// Lines a follower prints, each with the instant it arrived.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
}

impl Follower {
    fn start(kumo: &Kumo, args: &[&str]) -> Follower {
        let mut child = kumo.spawn_cli(args);
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send((Instant::now(), line)).is_err() {
                    return;
                }
            }
        });
        // Give the CLI time to connect and subscribe (setup, not a check).
        std::thread::sleep(Duration::from_secs(1));
        Follower {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to `within`) for a line containing `text`; returns when
    /// it arrived.
    fn wait_for(&mut self, text: &str, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        if let Some((at, _)) = self.seen.iter().find(|(_, l)| l.contains(text)) {
            return *at;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    let found = line.contains(text);
                    self.seen.push((at, line));
                    if found {
                        return at;
                    }
                }
                Err(_) => panic!(
                    "no line with {text:?} within {within:?}; saw {:?}",
                    self.text()
                ),
            }
        }
    }

    fn text(&self) -> Vec<&str> {
        self.seen.iter().map(|(_, l)| l.as_str()).collect()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn create_ticker(kumo: &Kumo, name: &str) {
    let code = package_dir(&[("lambda_function.py", TICKER)]);
    kumo.create(
        name,
        "python3",
        "lambda_function.handler",
        code.path(),
        &["--timeout", "60"],
    );
}

/// kumod --all-in-one with the ticker function `name` (None: not root).
fn start_with_ticker(name: &str) -> Option<Kumo> {
    if !root_or_skip() {
        return None;
    }
    let kumo = Kumo::start();
    create_ticker(&kumo, name);
    Some(kumo)
}

/// The index of the first line containing `text`.
fn position(lines: &[&str], text: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no {text:?} in {lines:?}"))
}

#[test]
fn follow_shows_a_long_invocations_lines_while_it_runs_and_tail_has_the_report() {
    let Some(kumo) = start_with_ticker("ticker") else {
        return;
    };
    assert_eq!(kumo.invoke_ok("ticker", r#"{"old": true}"#), "old");

    let mut follower = Follower::start(&kumo, &["logs", "ticker", "--follow"]);
    let invoke = {
        let mut command = kumo.spawn_cli(&[
            "invoke",
            "ticker",
            "--payload",
            r#"{"n": 10}"#,
            "--log-tail",
        ]);
        std::thread::spawn(move || {
            let status = command.wait().unwrap();
            let ended = Instant::now();
            let mut stderr = String::new();
            std::io::Read::read_to_string(command.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            (status, ended, stderr)
        })
    };
    let first = follower.wait_for("tick 0", Duration::from_secs(30));
    let fifth = follower.wait_for("tick 5", Duration::from_secs(30));
    let (status, ended, tail) = invoke.join().unwrap();
    assert!(status.success(), "{tail}");
    follower.wait_for("REPORT RequestId", Duration::from_secs(30));
    // The lines arrived while the invocation ran, as they were printed
    // (a second apart), not all at its end.
    assert!(first < ended, "tick 0 arrived after the invocation ended");
    assert!(fifth < ended, "tick 5 arrived after the invocation ended");
    assert!(
        fifth.duration_since(first) >= Duration::from_secs(3),
        "ticks 0 and 5 arrived {:?} apart",
        fifth.duration_since(first)
    );
    // In order, each once; no old line (--follow starts at the end).
    let lines = follower.text();
    assert!(!lines.iter().any(|l| l.contains("old line")), "{lines:?}");
    let start = position(&lines, "START RequestId");
    let ticks: Vec<usize> = (0..10)
        .map(|i| position(&lines, &format!("tick {i}")))
        .collect();
    let end = position(&lines, "END RequestId");
    let report = position(&lines, "REPORT RequestId");
    assert!(start < ticks[0] && ticks.windows(2).all(|w| w[0] < w[1]));
    assert!(ticks[9] < end && end < report, "{lines:?}");
    assert_eq!(lines.iter().filter(|l| l.contains("tick 3")).count(), 1);

    // --log-tail: the last 4 KB, REPORT included (as Lambda's LogResult).
    assert!(tail.contains("tick 9\n"), "{tail}");
    assert!(tail.contains("END RequestId"), "{tail}");
    assert!(
        tail.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("REPORT RequestId"),
        "{tail}"
    );
    let quick = kumo.cli(&[
        "invoke",
        "ticker",
        "--payload",
        r#"{"old": true}"#,
        "--log-tail",
    ]);
    assert!(
        quick.stderr.contains("old line\n") && quick.stderr.contains("REPORT RequestId"),
        "{quick:?}"
    );

    // The stored log is the same: one START, the ticks, END, REPORT.
    let id = lines[start]
        .split_whitespace()
        .nth(2)
        .expect("START RequestId: <id>");
    let stored = kumo.cli(&["logs", "ticker", "--request-id", id]);
    assert_eq!(stored.code, 0, "{stored:?}");
    let stored: Vec<&str> = stored.stdout.lines().collect();
    assert_eq!(stored.iter().filter(|l| l.starts_with("START")).count(), 1);
    assert_eq!(stored.iter().filter(|l| l.starts_with("tick")).count(), 10);
    assert!(position(&stored, "tick 9") < position(&stored, "END RequestId"));
    assert!(
        stored.last().unwrap().starts_with("REPORT RequestId"),
        "{stored:?}"
    );

    // With --since, --follow prints the history first.
    let mut since = Follower::start(&kumo, &["logs", "ticker", "--follow", "--since", "1h"]);
    since.wait_for("old line", Duration::from_secs(10));
}

#[test]
fn a_streamed_100_mb_flood_stays_capped_and_the_agent_stays_healthy() {
    let Some(kumo) = start_with_ticker("flood") else {
        return;
    };
    let mut follower = Follower::start(&kumo, &["logs", "flood", "--follow"]);
    // 100 MB in 1 KB lines, then two ticks: streamed in batches while it runs.
    let started = Instant::now();
    assert_eq!(
        kumo.invoke_ok("flood", r#"{"flood_mb": 100, "n": 2, "every": 0.5}"#),
        "done"
    );
    eprintln!("100 MB of output took {:?}", started.elapsed());
    follower.wait_for("REPORT RequestId", Duration::from_secs(30));
    let followed: usize = follower.text().iter().map(|l| l.len() + 1).sum();
    assert!(followed < 2 << 20, "the follower got {followed} bytes");
    let lines = follower.text();
    assert!(position(&lines, "log truncated") < position(&lines, "END RequestId"));
    let stored = kumo.logs("flood");
    assert!(stored.len() < 2 << 20, "stored {} bytes", stored.len());
    assert_eq!(stored.matches("START RequestId").count(), 1);
    assert!(stored.contains("[kumo] log truncated"));
    // The agent and kumod still serve, the same instance too.
    assert_eq!(kumo.invoke_ok("flood", r#"{"n": 1, "every": 0}"#), "done");
    let agents = kumo.cli(&["agents", "--output", "json"]);
    assert_eq!(agents.code, 0, "{agents:?}");
}

#[test]
fn lines_sent_before_the_agent_died_are_kept() {
    if !root_or_skip() {
        return;
    }
    let mut kumo = Kumo::start_separate("");
    create_ticker(&kumo, "doomed");
    let invoke = kumo.spawn_cli(&[
        "invoke",
        "doomed",
        "--payload",
        r#"{"n": 100, "every": 0.2}"#,
    ]);
    wait_until("tick 3 is stored", Duration::from_secs(30), || {
        kumo.logs("doomed").contains("tick 3\n")
    });
    kumo.kill9_agent();
    let output = invoke.wait_with_output().unwrap();
    assert!(!output.status.success(), "the call fails: its agent died");
    let stored = kumo.logs("doomed");
    assert!(stored.starts_with("START RequestId"), "{stored}");
    for i in 0..=3 {
        assert!(stored.contains(&format!("tick {i}\n")), "{stored}");
    }
    assert!(!stored.contains("REPORT"), "it never ended: {stored}");
}
