//! Throughput (warm no-op calls per second at 1, 8 and 64 callers, with
//! machine CPU per call) and density (how long 100 instances take to come
//! up at once, and what idle instances cost in memory).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kumo_proto::control::*;
use serde::Serialize;

use crate::cluster::{busy_jiffies, rss_bytes, Cluster};
use crate::scenarios::latency::NOOP;

/// One throughput run.
#[derive(Debug, Serialize)]
pub struct Throughput {
    /// Concurrent callers.
    pub callers: usize,
    /// Completed calls per second.
    pub per_second: f64,
    /// Machine CPU time per call, milliseconds (all cores, everything).
    pub cpu_ms_per_call: f64,
}

/// Density figures.
#[derive(Debug, Serialize)]
pub struct Density {
    /// Instances started together.
    pub instances: usize,
    /// Seconds until all of them had started and answered (minus the
    /// handler's own sleep).
    pub startup_seconds: f64,
    /// Memory charged to the instances' cgroups while idle, per instance.
    pub instance_mb_each: f64,
    /// kumod (daemon + agent) resident memory growth per instance.
    pub agent_overhead_mb_each: f64,
}

/// Warm throughput at each caller count for `seconds`.
pub async fn throughput(
    cluster: &mut Cluster,
    callers: &[usize],
    seconds: f64,
) -> anyhow::Result<Vec<Throughput>> {
    cluster.create("busy", NOOP, |_| {}).await?;
    let mut results = Vec::new();
    for &n in callers {
        // Warm n instances first.
        let warmups: Vec<_> = (0..n)
            .map(|_| {
                let mut client = cluster.client.clone();
                tokio::spawn(async move {
                    client
                        .invoke(InvokeRequest {
                            function_name: "busy".into(),
                            ..Default::default()
                        })
                        .await
                })
            })
            .collect();
        for w in warmups {
            let _ = w.await;
        }
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let busy0 = busy_jiffies();
        let started = Instant::now();
        let workers: Vec<_> = (0..n)
            .map(|_| {
                let mut client = cluster.client.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let ok = client
                            .invoke(InvokeRequest {
                                function_name: "busy".into(),
                                ..Default::default()
                            })
                            .await
                            .is_ok();
                        if ok {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let busy1 = busy_jiffies();
        let calls = done.load(Ordering::Relaxed).max(1);
        let tick_ms = 1000.0 / 100.0;
        results.push(Throughput {
            callers: n,
            per_second: calls as f64 / elapsed,
            cpu_ms_per_call: (busy1 - busy0) as f64 * tick_ms / calls as f64,
        });
    }
    Ok(results)
}

fn cgroup_memory(parent: &str) -> u64 {
    std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/{parent}/memory.usage_in_bytes"
    ))
    .ok()
    .and_then(|s| s.trim().parse().ok())
    .unwrap_or(0)
}

/// Starts `n` instances at once (each call sleeps, so none is reused).
pub async fn density(cluster: &mut Cluster, n: usize) -> anyhow::Result<Density> {
    let sleep = 2.0;
    cluster
        .create(
            "dense",
            &format!("import time\ndef handler(event, context):\n    time.sleep({sleep})\n"),
            |c| {
                c.memory_mb = Some(128);
            },
        )
        .await?;
    let rss_before = rss_bytes(cluster.pid());
    let memory_before = cgroup_memory(&cluster.cgroup_parent);
    let started = Instant::now();
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let mut client = cluster.client.clone();
            tokio::spawn(async move {
                client
                    .invoke(InvokeRequest {
                        function_name: "dense".into(),
                        ..Default::default()
                    })
                    .await
            })
        })
        .collect();
    for call in calls {
        call.await??;
    }
    let startup = started.elapsed().as_secs_f64() - sleep;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let memory = cgroup_memory(&cluster.cgroup_parent).saturating_sub(memory_before);
    let rss = rss_bytes(cluster.pid()).saturating_sub(rss_before);
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    Ok(Density {
        instances: n,
        startup_seconds: startup,
        instance_mb_each: mb(memory) / n as f64,
        agent_overhead_mb_each: mb(rss) / n as f64,
    })
}
