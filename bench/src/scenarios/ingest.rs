//! Event ingest: durable asynchronous enqueues per second, MinIO webhook
//! events accepted per second, and how late cron fires run.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kumo_proto::control::*;
use serde::Serialize;

use crate::cluster::Cluster;
use crate::stats::Summary;

/// Ingest figures.
#[derive(Debug, Serialize)]
pub struct Ingest {
    /// Asynchronous events accepted (flushed) per second, 64 callers.
    pub async_per_second: f64,
    /// MinIO webhook events accepted per second, 64 connections.
    pub webhook_per_second: f64,
    /// How late `cron(* * * * ? *)` fires started the handler (warm), when
    /// measured.
    pub cron_lateness: Option<Summary>,
}

const CALLERS: usize = 64;

/// Events pile up behind reserved concurrency 1, so dispatch stays out of
/// the way of ingest.
async fn sink_function(cluster: &mut Cluster) -> anyhow::Result<()> {
    cluster
        .create(
            "ingest",
            "def handler(event, context):\n    return None\n",
            |c| {
                c.reserved_concurrency = Some(1);
            },
        )
        .await
}

async fn async_rate(cluster: &mut Cluster, events: usize) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let mut client = cluster.client.clone();
            let next = next.clone();
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < events {
                    client
                        .invoke(InvokeRequest {
                            function_name: "ingest".into(),
                            payload: br#"{"k": 1}"#.to_vec(),
                            invocation_type: InvocationType::Event as i32,
                            ..Default::default()
                        })
                        .await?;
                }
                Ok::<(), tonic::Status>(())
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

fn post(address: &str, body: &str) -> std::io::Result<bool> {
    let mut stream = std::net::TcpStream::connect(address)?;
    write!(
        stream,
        "POST /webhooks/minio HTTP/1.1\r\nHost: kumo\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        crate::cluster::WEBHOOK_TOKEN,
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.starts_with("HTTP/1.1 200"))
}

async fn webhook_rate(cluster: &mut Cluster, events: usize) -> anyhow::Result<f64> {
    cluster
        .client
        .create_trigger(CreateTriggerRequest {
            config: Some(TriggerConfig {
                name: "bench-bucket".into(),
                function: "ingest".into(),
                disabled: false,
                source: Some(trigger_config::Source::Bucket(BucketSource {
                    bucket: "bench".into(),
                    ..Default::default()
                })),
            }),
            configure_bucket_profile: String::new(),
        })
        .await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let next = next.clone();
            let address = cluster.http.clone();
            tokio::task::spawn_blocking(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= events {
                        return Ok::<(), anyhow::Error>(());
                    }
                    let body = format!(
                        r#"{{"EventName":"s3:ObjectCreated:Put","Key":"bench/k{i}","Records":[{{"eventVersion":"2.0","eventSource":"minio:s3","eventName":"s3:ObjectCreated:Put","s3":{{"bucket":{{"name":"bench"}},"object":{{"key":"k{i}","size":1,"sequencer":"{i}"}}}}}}]}}"#
                    );
                    anyhow::ensure!(post(&address, &body)?, "webhook post {i} was refused");
                }
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

/// Functions, each with its own `cron(* * * * ? *)` trigger: they all fall
/// due at the same second, so every minute gives this many samples and
/// measures fires that are due together (the common case for crons).
const CRON_FUNCTIONS: usize = 4;

/// The handler prints its lateness for a Scheduled Event and does nothing
/// for the warm-up call (which has no `time`).
const TICK_HANDLER: &str = "import calendar, time\ndef handler(event, context):\n    if 'time' not in event:\n        return None\n    due = calendar.timegm(time.strptime(event['time'], '%Y-%m-%dT%H:%M:%SZ'))\n    print('LATENESS', time.time() - due)\n";

/// Fires of [`CRON_FUNCTIONS`] `cron(* * * * ? *)` triggers for `fires`
/// minutes; lateness from the handler's clock against the Scheduled
/// Event's due time. Each function is invoked once before its trigger
/// exists, so the samples measure the scheduler and the queue, not the
/// first call's cold start (the cold start scenario measures that).
async fn cron_lateness(cluster: &mut Cluster, fires: usize) -> anyhow::Result<Summary> {
    let names: Vec<String> = (0..CRON_FUNCTIONS).map(|i| format!("tick-{i}")).collect();
    for name in &names {
        cluster.create(name, TICK_HANDLER, |_| {}).await?;
        cluster
            .client
            .invoke(InvokeRequest {
                function_name: name.clone(),
                payload: b"{}".to_vec(),
                ..Default::default()
            })
            .await?;
        cluster
            .client
            .create_trigger(CreateTriggerRequest {
                config: Some(TriggerConfig {
                    name: format!("bench-cron-{name}"),
                    function: name.clone(),
                    disabled: false,
                    source: Some(trigger_config::Source::Schedule(ScheduleSource {
                        expression: "cron(* * * * ? *)".into(),
                        input: String::new(),
                    })),
                }),
                configure_bucket_profile: String::new(),
            })
            .await?;
    }
    let wanted = fires * CRON_FUNCTIONS;
    let deadline = Instant::now() + Duration::from_secs(65 * fires as u64 + 10);
    loop {
        let mut samples = Vec::new();
        for name in &names {
            samples.extend(lateness_samples(cluster, name).await?);
        }
        if samples.len() >= wanted || Instant::now() > deadline {
            return Ok(Summary::of(&samples));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// The `LATENESS` lines in a function's logs.
async fn lateness_samples(cluster: &mut Cluster, function: &str) -> anyhow::Result<Vec<Duration>> {
    let mut stream = cluster
        .client
        .get_logs(GetLogsRequest {
            function_name: function.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut samples = Vec::new();
    while let Some(event) = stream.message().await? {
        for line in event.text.lines() {
            if let Some(value) = line
                .split("LATENESS ")
                .nth(1)
                .and_then(|v| v.trim().parse::<f64>().ok())
            {
                samples.push(Duration::from_secs_f64(value.max(0.0)));
            }
        }
    }
    Ok(samples)
}

/// All ingest measurements; cron only when `cron_fires` > 0.
pub async fn ingest(
    cluster: &mut Cluster,
    events: usize,
    cron_fires: usize,
) -> anyhow::Result<Ingest> {
    sink_function(cluster).await?;
    let async_per_second = async_rate(cluster, events).await?;
    let webhook_per_second = webhook_rate(cluster, events).await?;
    let cron_lateness = if cron_fires > 0 {
        Some(cron_lateness(cluster, cron_fires).await?)
    } else {
        None
    };
    Ok(Ingest {
        async_per_second,
        webhook_per_second,
        cron_lateness,
    })
}
