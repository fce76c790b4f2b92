//! Writing the results: a Markdown table with each figure beside its
//! baseline and target (docs/performance.md), the raw numbers as JSON, and
//! a link to the latency chart (chart.rs).

use std::fmt::Write;

use serde::Serialize;

use crate::scenarios::ingest::Ingest;
use crate::scenarios::latency::{Cold, Warm};
use crate::scenarios::load::{Density, Throughput};
use crate::scenarios::node::Node;
use crate::scenarios::state::StateScale;

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub struct Results {
    /// When.
    pub date: String,
    /// The command that produced it.
    pub command: String,
    /// Machine description.
    pub machine: String,
    /// Whether `--quick` was used.
    pub quick: bool,
    /// Cold start.
    pub cold: Cold,
    /// Warm latency.
    pub warm: Warm,
    /// The Node.js runtime, when `node` is installed.
    pub node: Option<Node>,
    /// Throughput.
    pub throughput: Vec<Throughput>,
    /// Density.
    pub density: Density,
    /// Event ingest.
    pub ingest: Ingest,
    /// State scale.
    pub state: StateScale,
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**not met**"
    }
}

/// The machine, from /proc.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {:.0} GB RAM, Linux {}",
        mem_kb as f64 / 1_048_576.0,
        kernel.trim()
    )
}

/// The Markdown report.
pub fn markdown(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Kumo performance\n");
    let _ = writeln!(out, "Measured {} on {}.", r.date, r.machine);
    let _ = writeln!(
        out,
        "Command: `{}`{}.\n",
        r.command,
        if r.quick {
            " (quick mode: fewer samples)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "Every figure is measured in the same run as its baseline on the same machine; timings on this shared machine are noisy, so compare ratios. Release build, `kumod --all-in-one`, gRPC client in the harness process.\n");
    let _ = writeln!(
        out,
        "| scenario | Kumo | baseline | ratio | target | |\n|---|---|---|---|---|---|"
    );
    let c = &r.cold;
    let ratio = c.kumo.p50 / c.bare_python.p50;
    let _ = writeln!(
        out,
        "| cold start p50 (n={}) | {} | `python3 -c pass` {} | {ratio:.1}× | ≤ 1.5× | {} |",
        c.kumo.n,
        ms(c.kumo.p50),
        ms(c.bare_python.p50),
        verdict(ratio <= 1.5)
    );
    let _ = writeln!(
        out,
        "| cold start p90 / p99 | {} / {} | {} / {} | | | |",
        ms(c.kumo.p90),
        ms(c.kumo.p99),
        ms(c.bare_python.p90),
        ms(c.bare_python.p99)
    );
    if let Some(p) = &c.kumo_prewarmed {
        let ratio = p.p50 / c.bare_python.p50;
        let _ = writeln!(
            out,
            "| cold start p50, pre-started sandbox (n={}) | {} | `python3 -c pass` {} | {ratio:.1}× | ≤ 1.5×, < 5 ms | {} |",
            p.n,
            ms(p.p50),
            ms(c.bare_python.p50),
            verdict(ratio <= 1.5 && p.p50 < 5.0)
        );
        let _ = writeln!(
            out,
            "| cold start p90 / p99, pre-started sandbox | {} / {} | | | | |",
            ms(p.p90),
            ms(p.p99)
        );
    }
    if let Some(o) = &c.kumo_outbound {
        let _ = writeln!(
            out,
            "| cold start p50, `outbound` network (n={}) | {} | `none` network {} | {:.2}× | | |",
            o.n,
            ms(o.p50),
            ms(c.kumo.p50),
            o.p50 / c.kumo.p50
        );
    }
    if let (Some(o), Some(p)) = (&c.kumo_prewarmed_outbound, &c.kumo_prewarmed) {
        let _ = writeln!(
            out,
            "| cold start p50, `outbound`, pre-started sandbox (n={}) | {} | `none` pre-started {} | {:.2}× | | |",
            o.n,
            ms(o.p50),
            ms(p.p50),
            o.p50 / p.p50
        );
    }
    if let Some(b) = &c.bwrap_python {
        let _ = writeln!(out, "| cold start p50 vs bubblewrap | {} | `bwrap --unshare-all python3 -c pass` {} | {:.1}× | | |", ms(c.kumo.p50), ms(b.p50), c.kumo.p50 / b.p50);
    }
    let w = &r.warm;
    let floor_ratio = w.kumo.p50 / w.floor.p50;
    let _ = writeln!(
        out,
        "| warm p50 (n={}) | {} | floor {} | {floor_ratio:.1}× | ≤ 1 ms, ≤ 2× floor | {} |",
        w.kumo.n,
        ms(w.kumo.p50),
        ms(w.floor.p50),
        verdict(w.kumo.p50 <= 1.0 && floor_ratio <= 2.0)
    );
    let _ = writeln!(
        out,
        "| warm p99 / p99.9 | {} / {} | floor {} / {} | | p99 ≤ 5 ms | {} |",
        ms(w.kumo.p99),
        ms(w.kumo.p999),
        ms(w.floor.p99),
        ms(w.floor.p999),
        verdict(w.kumo.p99 <= 5.0)
    );
    if let Some(n) = &r.node {
        node_rows(&mut out, n);
    }
    for t in &r.throughput {
        let target = if t.callers >= 8 { "≥ 3,000/s" } else { "" };
        let met = if t.callers >= 8 {
            verdict(t.per_second >= 3000.0)
        } else {
            ""
        };
        let _ = writeln!(out, "| throughput, {} caller(s) | {:.0} calls/s, {:.2} ms CPU/call | | | {target} | {met} |", t.callers, t.per_second, t.cpu_ms_per_call);
    }
    let d = &r.density;
    let _ = writeln!(out, "| density: {} instances at once | {:.2} s to start all; {:.1} MB per idle instance | agent overhead {:.2} MB per instance | | ≤ 1 MB overhead | {} |", d.instances, d.startup_seconds, d.instance_mb_each, d.agent_overhead_mb_each, verdict(d.agent_overhead_mb_each <= 1.0));
    let i = &r.ingest;
    let _ = writeln!(
        out,
        "| async events accepted durably | {:.0}/s | | | ≥ 10,000/s | {} |",
        i.async_per_second,
        verdict(i.async_per_second >= 10_000.0)
    );
    let _ = writeln!(
        out,
        "| MinIO webhook events accepted | {:.0}/s | | | ≥ 5,000/s | {} |",
        i.webhook_per_second,
        verdict(i.webhook_per_second >= 5_000.0)
    );
    match &i.cron_lateness {
        Some(l) => {
            let _ = writeln!(
                out,
                "| cron lateness p50 / p99 (n={}) | {} / {} | | | p99 ≤ 50 ms | {} |",
                l.n,
                ms(l.p50),
                ms(l.p99),
                verdict(l.p99 <= 50.0)
            );
        }
        None => {
            let _ = writeln!(out, "| cron lateness | not measured in quick mode (needs minutes) | | | p99 ≤ 50 ms | |");
        }
    }
    let s = &r.state;
    let _ = writeln!(out, "| start-up with {} functions, {} triggers | {:.2} s, {:.0} MB RSS | empty store {:.2} s, {:.0} MB | | ≤ 2 s | {} |", s.functions, s.triggers, s.startup_seconds, s.rss_mb, s.empty_startup_seconds, s.empty_rss_mb, verdict(s.startup_seconds <= 2.0));
    let _ = writeln!(out, "\n![Latency distributions](performance.png)");
    let _ = writeln!(
        out,
        "\nRaw numbers: `docs/performance.json`. Scenario definitions: `bench/README.md`."
    );
    out
}

/// The Node.js rows: cold (classic and pre-started) against `node -e 0`,
/// and warm latency.
pub fn node_rows(out: &mut String, n: &Node) {
    let bare = &n.bare_node;
    for (label, s) in [
        ("nodejs20.x cold start", &n.cold),
        (
            "nodejs20.x cold start, pre-started sandbox",
            &n.cold_prewarmed,
        ),
    ] {
        let _ = writeln!(
            out,
            "| {label} p50 (n={}) | {} (p90 {}) | `node -e 0` {} | {:.1}× | | |",
            s.n,
            ms(s.p50),
            ms(s.p90),
            ms(bare.p50),
            s.p50 / bare.p50
        );
    }
    let w = &n.warm;
    let _ = writeln!(
        out,
        "| nodejs20.x warm p50 / p99 (n={}) | {} / {} | | | | |",
        w.n,
        ms(w.p50),
        ms(w.p99)
    );
}
