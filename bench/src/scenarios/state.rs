//! State scale: kumod's start-up time and memory with many functions and
//! triggers stored (written straight into a sled store first).

use std::collections::HashMap;
use std::time::Instant;

use kumo_daemon::store::{
    FunctionRecord, FunctionStore, SledStore, StoredConfig, TriggerRecord, TriggerSource,
    TriggerStore,
};
use serde::Serialize;

use crate::cluster::{self, rss_bytes};

/// State-scale figures.
#[derive(Debug, Serialize)]
pub struct StateScale {
    /// Functions stored.
    pub functions: usize,
    /// Triggers stored.
    pub triggers: usize,
    /// Seconds from spawning kumod until it answered with an agent attached.
    pub startup_seconds: f64,
    /// kumod's resident memory then, MB.
    pub rss_mb: f64,
    /// The same for an empty store, as the baseline.
    pub empty_startup_seconds: f64,
    /// Resident memory with an empty store, MB.
    pub empty_rss_mb: f64,
}

fn fill(dir: &std::path::Path, functions: usize, triggers: usize) -> anyhow::Result<()> {
    let store = SledStore::open(&dir.join("state"))?;
    for i in 0..functions {
        let name = format!("f{i}");
        store.put_function(&FunctionRecord {
            config: StoredConfig {
                name,
                description: String::new(),
                runtime: "python3".into(),
                handler: "lambda_function.handler".into(),
                memory_mb: 128,
                timeout_seconds: 3,
                environment: HashMap::new(),
                network: "none".into(),
                egress_allow: Vec::new(),
                tags: HashMap::new(),
                ephemeral_storage_mb: 512,
                max_retry_attempts: 2,
                max_event_age_seconds: 21_600,
                reserved_concurrency: None,
                on_failure_destination: String::new(),
                credentials_profile: String::new(),
                dead_letter_target: String::new(),
                on_success_destination: String::new(),
                role: String::new(),
                layers: Vec::new(),
            },
            package_digest: "0".repeat(64),
            code_sha256: String::new(),
            code_size: 0,
            revision: 1,
            last_modified: chrono::Utc::now().to_rfc3339(),
            published: 0,
        })?;
    }
    let now = chrono::Utc::now().timestamp_millis();
    for i in 0..triggers {
        store.put_trigger(&TriggerRecord {
            name: format!("t{i}"),
            function: format!("f{}", i % functions.max(1)),
            qualifier: None,
            enabled: true,
            created_ms: now,
            source: TriggerSource::Schedule {
                expression: "rate(1 day)".into(),
                input: None,
                last_due_ms: None,
            },
            fired: 0,
        })?;
    }
    Ok(())
}

async fn start_time(data: &std::path::Path) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let cluster = cluster::start("", Some(data)).await?;
    let seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let rss = rss_bytes(cluster.pid()) as f64 / (1024.0 * 1024.0);
    Ok((seconds, rss))
}

/// Start-up with `functions` and `triggers` stored, and with none.
pub async fn state_scale(functions: usize, triggers: usize) -> anyhow::Result<StateScale> {
    let empty = tempfile::tempdir()?;
    let (empty_startup_seconds, empty_rss_mb) = start_time(&empty.path().join("data")).await?;
    let full = tempfile::tempdir()?;
    let data = full.path().join("data");
    std::fs::create_dir_all(&data)?;
    fill(&data, functions, triggers)?;
    let (startup_seconds, rss_mb) = start_time(&data).await?;
    Ok(StateScale {
        functions,
        triggers,
        startup_seconds,
        rss_mb,
        empty_startup_seconds,
        empty_rss_mb,
    })
}
