//! Prometheus metrics of kumod, served as text at `/metrics`: counters and
//! histograms recorded as invocations happen, and gauges (concurrency,
//! queues, dead letters, agents) read when scraped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard};

/// Histogram bucket bounds in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct State {
    counters: BTreeMap<&'static str, BTreeMap<Labels, u64>>,
    histograms: BTreeMap<&'static str, BTreeMap<Labels, Histogram>>,
}

/// One metric family's description.
struct Family {
    name: &'static str,
    help: &'static str,
}

const INVOCATIONS: Family = Family {
    name: "kumo_invocations_total",
    help: "Invocations that reached an agent, by function, version, type and outcome.",
};
const ERRORS: Family = Family {
    name: "kumo_invocation_errors_total",
    help: "Failed invocations by function and error type.",
};
const THROTTLES: Family = Family {
    name: "kumo_throttles_total",
    help: "Synchronous calls refused over a concurrency limit, by function and reason.",
};
const COLD_STARTS: Family = Family {
    name: "kumo_cold_starts_total",
    help: "Invocations that started a new instance.",
};
const SCHEDULE_FIRES: Family = Family {
    name: "kumo_schedule_fires_total",
    help: "Events queued by schedule triggers.",
};
const INVOKE_REQUESTS: Family = Family {
    name: "kumo_invoke_requests_total",
    help: "Calls that reached the invoke front door, by entry point and invocation type.",
};
const DURATION: Family = Family {
    name: "kumo_invocation_duration_seconds",
    help: "Handler run time (REPORT Duration).",
};
const INIT_DURATION: Family = Family {
    name: "kumo_init_duration_seconds",
    help: "Cold-start time (REPORT Init Duration).",
};

/// A gauge value with its labels, computed at scrape time.
pub struct Gauge {
    /// Metric name.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Samples.
    pub samples: Vec<(Labels, f64)>,
}

/// kumod's metric registry.
#[derive(Clone, Default)]
pub struct Metrics {
    state: Arc<Mutex<State>>,
    series: crate::series::Series,
}

/// What one invocation reports.
pub struct InvocationSample<'a> {
    /// Function name.
    pub function: &'a str,
    /// Executed version.
    pub version: &'a str,
    /// `RequestResponse` or `Event`.
    pub invocation_type: &'static str,
    /// `success`, `error`, `timeout`, … (the agent's outcome).
    pub outcome: &'static str,
    /// errorType when it failed.
    pub error_type: &'a str,
    /// Handler time in milliseconds.
    pub duration_ms: f64,
    /// Cold-start time, when this was a cold start.
    pub init_duration_ms: Option<f64>,
}

impl Metrics {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, family: &Family, labels: Labels, by: u64) {
        *self
            .lock()
            .counters
            .entry(family.name)
            .or_default()
            .entry(labels)
            .or_default() += by;
    }

    fn observe(&self, family: &Family, labels: Labels, seconds: f64) {
        self.lock()
            .histograms
            .entry(family.name)
            .or_default()
            .entry(labels)
            .or_default()
            .observe(seconds);
    }

    /// The per-function time series the web console draws.
    pub fn series(&self) -> &crate::series::Series {
        &self.series
    }

    /// Records one invocation that an agent answered.
    pub fn invocation(&self, s: &InvocationSample<'_>) {
        self.series.invocation(
            s.function,
            chrono::Utc::now().timestamp_millis(),
            s.outcome != "success",
            s.duration_ms,
        );
        let function = s.function.to_string();
        self.add(
            &INVOCATIONS,
            vec![
                ("function", function.clone()),
                ("version", s.version.to_string()),
                ("type", s.invocation_type.to_string()),
                ("outcome", s.outcome.to_string()),
            ],
            1,
        );
        if !s.error_type.is_empty() {
            self.add(
                &ERRORS,
                vec![
                    ("function", function.clone()),
                    ("error_type", s.error_type.to_string()),
                ],
                1,
            );
        }
        let fv = vec![
            ("function", function.clone()),
            ("version", s.version.to_string()),
        ];
        self.observe(&DURATION, fv.clone(), s.duration_ms / 1000.0);
        if let Some(init) = s.init_duration_ms {
            self.add(&COLD_STARTS, fv.clone(), 1);
            self.observe(&INIT_DURATION, fv, init / 1000.0);
        }
    }

    /// Records a refused synchronous call.
    pub fn throttle(&self, function: &str, reason: &str) {
        self.series
            .throttle(function, chrono::Utc::now().timestamp_millis());
        self.add(
            &THROTTLES,
            vec![
                ("function", function.to_string()),
                ("reason", reason.to_string()),
            ],
            1,
        );
    }

    /// Records a schedule fire.
    pub fn schedule_fire(&self, trigger: &str, function: &str) {
        self.add(
            &SCHEDULE_FIRES,
            vec![
                ("trigger", trigger.to_string()),
                ("function", function.to_string()),
            ],
            1,
        );
    }

    /// Records a call reaching the invoke front door from `source`.
    pub fn invoke_request(&self, source: &'static str, invocation_type: &'static str) {
        self.add(
            &INVOKE_REQUESTS,
            vec![
                ("source", source.to_string()),
                ("type", invocation_type.to_string()),
            ],
            1,
        );
    }

    /// The Prometheus text exposition of everything, with `gauges` added.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let state = self.lock();
        let mut out = String::new();
        for family in [
            &INVOCATIONS,
            &ERRORS,
            &THROTTLES,
            &COLD_STARTS,
            &SCHEDULE_FIRES,
            &INVOKE_REQUESTS,
        ] {
            let _ = writeln!(
                out,
                "# HELP {} {}\n# TYPE {} counter",
                family.name, family.help, family.name
            );
            for (labels, value) in state.counters.get(family.name).into_iter().flatten() {
                let _ = writeln!(out, "{}{} {value}", family.name, label_text(labels, None));
            }
        }
        for family in [&DURATION, &INIT_DURATION] {
            let _ = writeln!(
                out,
                "# HELP {} {}\n# TYPE {} histogram",
                family.name, family.help, family.name
            );
            for (labels, h) in state.histograms.get(family.name).into_iter().flatten() {
                for (bound, count) in BUCKETS.iter().zip(&h.counts) {
                    let _ = writeln!(
                        out,
                        "{}_bucket{} {count}",
                        family.name,
                        label_text(labels, Some(&bound.to_string()))
                    );
                }
                let _ = writeln!(
                    out,
                    "{}_bucket{} {}",
                    family.name,
                    label_text(labels, Some("+Inf")),
                    h.count
                );
                let _ = writeln!(
                    out,
                    "{}_sum{} {}",
                    family.name,
                    label_text(labels, None),
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "{}_count{} {}",
                    family.name,
                    label_text(labels, None),
                    h.count
                );
            }
        }
        for gauge in gauges {
            let _ = writeln!(
                out,
                "# HELP {} {}\n# TYPE {} gauge",
                gauge.name, gauge.help, gauge.name
            );
            for (labels, value) in &gauge.samples {
                let _ = writeln!(out, "{}{} {value}", gauge.name, label_text(labels, None));
            }
        }
        out
    }
}

/// `{a="x",b="y"}` with Prometheus escaping, plus `le` for buckets.
fn label_text(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histograms_and_gauges_render() {
        let metrics = Metrics::default();
        metrics.invocation(&InvocationSample {
            function: "f",
            version: "$LATEST",
            invocation_type: "RequestResponse",
            outcome: "error",
            error_type: "ValueError",
            duration_ms: 12.0,
            init_duration_ms: Some(40.0),
        });
        metrics.throttle("f\"x", "ReservedFunctionConcurrentInvocationLimitExceeded");
        let text = metrics.render(&[Gauge {
            name: "kumo_async_queue_depth",
            help: "Queued events.",
            samples: vec![(vec![("function", "f".to_string())], 3.0)],
        }]);
        assert!(text.contains(r#"kumo_invocations_total{function="f",version="$LATEST",type="RequestResponse",outcome="error"} 1"#), "{text}");
        assert!(text
            .contains(r#"kumo_invocation_errors_total{function="f",error_type="ValueError"} 1"#));
        assert!(
            text.contains(r#"kumo_throttles_total{function="f\"x","#),
            "{text}"
        );
        assert!(text.contains(r#"kumo_invocation_duration_seconds_bucket{function="f",version="$LATEST",le="0.025"} 1"#), "{text}");
        assert!(text.contains(r#"kumo_invocation_duration_seconds_bucket{function="f",version="$LATEST",le="0.01"} 0"#), "{text}");
        assert!(
            text.contains(r#"kumo_init_duration_seconds_count{function="f",version="$LATEST"} 1"#)
        );
        assert!(text.contains(r#"kumo_cold_starts_total{function="f",version="$LATEST"} 1"#));
        assert!(text.contains(
            "# TYPE kumo_async_queue_depth gauge\nkumo_async_queue_depth{function=\"f\"} 3"
        ));
    }
}
