//! A TCP sink for handlers to report to from inside their sandbox (with
//! `--network host`): each connection sends one JSON line; the sink keeps
//! it and answers with how many earlier lines carried the same `"id"`, so
//! a handler can decide to fail on its first attempts.
//!
//! The fixture `tests/fixtures/reporter` is the handler side.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The listening sink; it stops with the test process.
#[derive(Clone)]
pub struct Sink {
    /// `127.0.0.1:<port>`, for the handler's `SINK` variable.
    pub address: String,
    records: Arc<Mutex<Vec<Value>>>,
}

impl Sink {
    /// Starts listening on a free loopback port.
    pub fn start() -> Sink {
        Self::start_on("127.0.0.1")
    }

    /// Starts listening on a free port of `ip` (e.g. `0.0.0.0` for handlers
    /// in other network namespaces; [`Sink::address`] then names `ip`).
    pub fn start_on(ip: &str) -> Sink {
        let listener = TcpListener::bind((ip, 0)).expect("binding the sink");
        let address = listener.local_addr().expect("sink address").to_string();
        let records: Arc<Mutex<Vec<Value>>> = Arc::default();
        let kept = records.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || serve(stream, &kept));
            }
        });
        Sink { address, records }
    }

    /// Every record so far.
    pub fn records(&self) -> Vec<Value> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records whose `field` equals `value`.
    pub fn matching(&self, field: &str, value: &str) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| r[field].as_str() == Some(value))
            .collect()
    }

    /// How many records carry each id.
    pub fn counts_by_id(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for record in self.records() {
            if let Some(id) = record["id"].as_str() {
                *counts.entry(id.to_string()).or_default() += 1;
            }
        }
        counts
    }

    /// Waits up to `timeout` until every id in `ids` has reported at least
    /// once. Returns the counts by id, or how many ids never reported.
    pub fn wait_all_ran(
        &self,
        ids: &[String],
        timeout: Duration,
    ) -> Result<HashMap<String, usize>, usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let counts = self.counts_by_id();
            let missing = ids.iter().filter(|id| !counts.contains_key(*id)).count();
            if missing == 0 {
                return Ok(counts);
            }
            if Instant::now() >= deadline {
                return Err(missing);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits up to `timeout` for `done` to hold over the records; returns
    /// whether it did.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Value]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.records()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn serve(stream: TcpStream, records: &Mutex<Vec<Value>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let Ok(record) = serde_json::from_str::<Value>(line.trim()) else {
        return;
    };
    let earlier = {
        let mut records = records.lock().unwrap_or_else(|p| p.into_inner());
        let earlier = records
            .iter()
            .filter(|r| r["id"] == record["id"] && !record["id"].is_null())
            .count();
        records.push(record);
        earlier
    };
    let mut writer = &stream;
    let _ = writeln!(writer, "{earlier}");
}
