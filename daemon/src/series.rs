//! A small in-memory time-series ring per function for the web console's
//! graphs: one bucket per minute for the last day (invocations, errors,
//! throttles, handler durations, the most invocations running at once, and
//! the sampled async queue depth and dead letters). Fed from the invoke path through
//! [`crate::metrics::Metrics`] and by the console's gauge sampler; nothing
//! is kept across restarts.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Minutes kept per function (one day).
pub const MINUTES_KEPT: usize = 1440;
/// Durations kept per minute bucket for the percentiles (later ones in the
/// same minute are not sampled).
const DURATIONS_PER_MINUTE: usize = 256;

/// One minute of one function.
#[derive(Debug, Clone, Default)]
struct Bucket {
    minute: i64,
    invocations: u64,
    errors: u64,
    throttles: u64,
    durations_ms: Vec<f64>,
    concurrency: u32,
    queued: u64,
    dead_letters: u64,
}

/// One point of a graph: a step of one or more minutes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Point {
    /// Unix minute the step starts at.
    pub minute: i64,
    /// Invocations answered.
    pub invocations: u64,
    /// Of which failed.
    pub errors: u64,
    /// Calls refused by a concurrency limit.
    pub throttles: u64,
    /// Median handler duration (ms); 0 without invocations.
    pub p50_ms: f64,
    /// 99th percentile handler duration (ms); 0 without invocations.
    pub p99_ms: f64,
    /// Most invocations running at once (sampled).
    pub concurrency: u32,
    /// Most events waiting in the async queue (sampled).
    pub queued: u64,
    /// Dead letters held (last sample).
    pub dead_letters: u64,
}

/// The rings of every function.
#[derive(Clone, Default)]
pub struct Series {
    rings: Arc<Mutex<HashMap<String, VecDeque<Bucket>>>>,
}

/// The `p`th percentile (0..=1) of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

impl Series {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, VecDeque<Bucket>>> {
        self.rings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `change` to `function`'s bucket of the minute of `now_ms`.
    fn with_bucket(&self, function: &str, now_ms: i64, change: impl FnOnce(&mut Bucket)) {
        let minute = now_ms.div_euclid(60_000);
        let mut rings = self.lock();
        let ring = rings.entry(function.to_string()).or_default();
        if ring.back().is_none_or(|b| b.minute < minute) {
            ring.push_back(Bucket {
                minute,
                ..Bucket::default()
            });
        }
        while ring
            .front()
            .is_some_and(|b| b.minute <= minute - MINUTES_KEPT as i64)
        {
            ring.pop_front();
        }
        // A sample for an older minute (a clock step) lands in the newest bucket.
        if let Some(bucket) = ring.back_mut() {
            change(bucket);
        }
    }

    /// Records one answered invocation.
    pub fn invocation(&self, function: &str, now_ms: i64, failed: bool, duration_ms: f64) {
        self.with_bucket(function, now_ms, |b| {
            b.invocations += 1;
            b.errors += u64::from(failed);
            if b.durations_ms.len() < DURATIONS_PER_MINUTE {
                b.durations_ms.push(duration_ms);
            }
        });
    }

    /// Records one throttled call.
    pub fn throttle(&self, function: &str, now_ms: i64) {
        self.with_bucket(function, now_ms, |b| b.throttles += 1);
    }

    /// Records the invocations of `function` running as one starts (the
    /// minute keeps the most).
    pub fn concurrency(&self, function: &str, now_ms: i64, running: u32) {
        self.with_bucket(function, now_ms, |b| {
            b.concurrency = b.concurrency.max(running)
        });
    }

    /// Records sampled gauges: the minute keeps the highest concurrency and
    /// queue depth seen, and the latest dead-letter count.
    pub fn gauges(
        &self,
        function: &str,
        now_ms: i64,
        concurrency: u32,
        queued: u64,
        dead_letters: u64,
    ) {
        self.with_bucket(function, now_ms, |b| {
            b.concurrency = b.concurrency.max(concurrency);
            b.queued = b.queued.max(queued);
            b.dead_letters = dead_letters;
        });
    }

    /// Forgets every function not in `names` (deleted ones).
    pub fn retain(&self, names: &std::collections::HashSet<String>) {
        self.lock().retain(|name, _| names.contains(name));
    }

    /// `span_minutes` of `function` up to `now_ms` in steps of
    /// `step_minutes`, oldest first; steps without data are zero.
    pub fn points(
        &self,
        function: &str,
        now_ms: i64,
        span_minutes: i64,
        step_minutes: i64,
    ) -> Vec<Point> {
        let step = step_minutes.max(1);
        let steps = (span_minutes / step).max(1);
        let now_minute = now_ms.div_euclid(60_000);
        let first = now_minute - steps * step + 1;
        let mut points: Vec<Point> = (0..steps)
            .map(|i| Point {
                minute: first + i * step,
                ..Point::default()
            })
            .collect();
        let mut durations: Vec<Vec<f64>> = vec![Vec::new(); points.len()];
        let rings = self.lock();
        for bucket in rings.get(function).into_iter().flatten() {
            if bucket.minute < first || bucket.minute > now_minute {
                continue;
            }
            let i = usize::try_from((bucket.minute - first) / step).unwrap_or(0);
            let point = &mut points[i];
            point.invocations += bucket.invocations;
            point.errors += bucket.errors;
            point.throttles += bucket.throttles;
            point.concurrency = point.concurrency.max(bucket.concurrency);
            point.queued = point.queued.max(bucket.queued);
            point.dead_letters = bucket.dead_letters;
            durations[i].extend_from_slice(&bucket.durations_ms);
        }
        for (point, mut values) in points.iter_mut().zip(durations) {
            values.sort_by(f64::total_cmp);
            point.p50_ms = percentile(&values, 0.50);
            point.p99_ms = percentile(&values, 0.99);
        }
        points
    }

    /// Invocations and errors of `function` in the hour before `now_ms`.
    pub fn last_hour(&self, function: &str, now_ms: i64) -> (u64, u64) {
        self.points(function, now_ms, 60, 60)
            .iter()
            .fold((0, 0), |(i, e), p| (i + p.invocations, e + p.errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    #[test]
    fn counts_land_in_their_minute_and_steps_add_up() {
        let series = Series::default();
        let t0 = 1_000 * MINUTE;
        series.invocation("f", t0, false, 10.0);
        series.invocation("f", t0 + 1, true, 30.0);
        series.throttle("f", t0 + MINUTE);
        series.invocation("other", t0, false, 1.0);
        let points = series.points("f", t0 + MINUTE, 60, 1);
        assert_eq!(points.len(), 60);
        assert_eq!(points[58].invocations, 2);
        assert_eq!(points[58].errors, 1);
        assert_eq!(points[59].throttles, 1);
        assert_eq!(points[58].p50_ms, 30.0);
        let hourly = series.points("f", t0 + MINUTE, 60, 60);
        assert_eq!(hourly.len(), 1);
        assert_eq!((hourly[0].invocations, hourly[0].throttles), (2, 1));
        assert_eq!(series.last_hour("f", t0 + MINUTE), (2, 1));
        assert_eq!(series.last_hour("f", t0 + 61 * MINUTE), (0, 0));
    }

    #[test]
    fn percentiles_and_gauges() {
        let series = Series::default();
        let t0 = 5_000 * MINUTE;
        for ms in 1..=100 {
            series.invocation("f", t0, false, f64::from(ms));
        }
        series.gauges("f", t0, 3, 7, 2);
        series.gauges("f", t0, 1, 2, 4);
        series.concurrency("f", t0, 2);
        let point = series.points("f", t0, 1, 1).remove(0);
        assert_eq!(point.p50_ms, 51.0);
        assert_eq!(point.p99_ms, 99.0);
        assert_eq!(
            (point.concurrency, point.queued, point.dead_letters),
            (3, 7, 4)
        );
    }

    #[test]
    fn the_ring_keeps_one_day() {
        let series = Series::default();
        let t0 = 10_000 * MINUTE;
        for minute in 0..(MINUTES_KEPT as i64 + 10) {
            series.invocation("f", t0 + minute * MINUTE, false, 1.0);
        }
        assert_eq!(series.lock()["f"].len(), MINUTES_KEPT);
        series.retain(&std::collections::HashSet::new());
        assert!(series.lock().get("f").is_none());
    }
}
