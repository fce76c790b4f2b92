//! Cold start and warm latency, each beside its baseline:
//! - cold: a new sandbox + interpreter + bootstrap + handler per call,
//!   against spawning `/usr/bin/python3 -c pass` directly and under
//!   `bwrap --unshare-all`; the same in the `outbound` network mode against
//!   mode `none` (the cost of the link to the bridge);
//! - warm: a gRPC invoke of a warm no-op, against the floor — the same
//!   bootstrap fed by an in-process Runtime API with nothing in between.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use kumo_agent::runtime_api::{PendingInvocation, RuntimeApi, RuntimeReply};
use kumo_proto::control::*;
use serde::Serialize;

use crate::cluster::Cluster;
use crate::stats::Summary;

/// The no-op handler every latency scenario runs.
pub const NOOP: &str = "def handler(event, context):\n    return None\n";
const PYTHON: &str = "/usr/bin/python3";
/// Pause between cold starts from pre-started sandboxes, so the pool refills.
pub(crate) const PREWARM_REFILL_PAUSE: Duration = Duration::from_millis(200);

/// Cold-start figures.
#[derive(Debug, Serialize)]
pub struct Cold {
    /// Invoke to response with a new instance each time.
    pub kumo: Summary,
    /// `python3 -c pass`.
    pub bare_python: Summary,
    /// The same under `bwrap --unshare-all`, when bubblewrap is installed.
    pub bwrap_python: Option<Summary>,
    /// Invoke to response with a new instance each time, claiming a
    /// pre-started sandbox (`prewarm_python_instances`), when measured.
    pub kumo_prewarmed: Option<Summary>,
    /// Like `kumo`, in the `outbound` network mode (same run), when
    /// measured.
    #[serde(default)]
    pub kumo_outbound: Option<Summary>,
    /// Like `kumo_prewarmed`, in the `outbound` network mode, claiming
    /// pre-started outbound sandboxes (`prewarm_python_outbound_instances`).
    #[serde(default)]
    pub kumo_prewarmed_outbound: Option<Summary>,
}

/// Warm-latency figures.
#[derive(Debug, Serialize)]
pub struct Warm {
    /// gRPC invoke of a warm no-op, end to end.
    pub kumo: Summary,
    /// The bootstrap fed by an in-process Runtime API.
    pub floor: Summary,
}

/// Runs `program args` `n` times; the spawn-to-exit times.
pub(crate) fn time_command(program: &str, args: &[&str], n: usize) -> anyhow::Result<Summary> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let status = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running {program}"))?;
        anyhow::ensure!(status.success(), "{program} {args:?} failed");
        samples.push(started.elapsed());
    }
    Ok(Summary::of(&samples))
}

/// One invoke of `name` with `{}`, to its answer (which must not be a
/// function error).
pub(crate) async fn invoke(cluster: &mut Cluster, name: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let answer = cluster
        .client
        .invoke(InvokeRequest {
            function_name: name.into(),
            payload: b"{}".to_vec(),
            ..Default::default()
        })
        .await?
        .into_inner();
    anyhow::ensure!(
        answer.function_error.is_empty(),
        "the no-op failed: {answer:?}"
    );
    Ok(started.elapsed())
}

/// `n` cold starts of the existing function `name`: each call after a
/// configuration change gets a new instance; `pause` lets background work
/// (a pre-started sandbox being refilled) finish before the next call.
pub(crate) async fn cold_starts(
    cluster: &mut Cluster,
    name: &str,
    n: usize,
    pause: Duration,
) -> anyhow::Result<Summary> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        cluster
            .client
            .update_function_configuration(UpdateFunctionConfigurationRequest {
                name: name.into(),
                description: Some(format!("cold start {i}")),
                ..Default::default()
            })
            .await?;
        tokio::time::sleep(pause).await;
        samples.push(invoke(cluster, name).await?);
    }
    Ok(Summary::of(&samples))
}

/// Cold starts claiming pre-started sandboxes of network mode `network`, on
/// a kumod whose agent keeps them (`prewarm_python_instances`,
/// `prewarm_python_outbound_instances`); the pool is given time to refill
/// between calls, as on a node whose cold starts do not come in bursts.
pub async fn cold_prewarmed(
    cluster: &mut Cluster,
    network: &str,
    n: usize,
) -> anyhow::Result<Summary> {
    let name = format!("cold-prewarmed-{network}");
    cluster
        .create(&name, NOOP, |c| c.network = network.into())
        .await?;
    cold_starts(cluster, &name, n, PREWARM_REFILL_PAUSE).await
}

/// Cold starts: each call after a configuration change gets a new instance;
/// in mode `none`, then in mode `outbound` (the cluster's agent needs an
/// outbound bridge, see `cluster::OUTBOUND_AGENT`).
pub async fn cold(cluster: &mut Cluster, n: usize) -> anyhow::Result<Cold> {
    cluster.create("cold", NOOP, |_| {}).await?;
    let kumo = cold_starts(cluster, "cold", n, Duration::ZERO).await?;
    cluster
        .create("cold-outbound", NOOP, |c| c.network = "outbound".into())
        .await?;
    let kumo_outbound = Some(cold_starts(cluster, "cold-outbound", n, Duration::ZERO).await?);
    let bwrap = Path::new("/usr/bin/bwrap").exists();
    Ok(Cold {
        kumo,
        kumo_prewarmed: None,
        kumo_outbound,
        kumo_prewarmed_outbound: None,
        bare_python: time_command(PYTHON, &["-c", "pass"], n)?,
        bwrap_python: if bwrap {
            Some(time_command(
                "/usr/bin/bwrap",
                &[
                    "--unshare-all",
                    "--ro-bind",
                    "/",
                    "/",
                    "--dev",
                    "/dev",
                    "--proc",
                    "/proc",
                    PYTHON,
                    "-c",
                    "pass",
                ],
                n,
            )?)
        } else {
            None
        },
    })
}

/// Warm latency against the floor.
pub async fn warm(cluster: &mut Cluster, n: usize) -> anyhow::Result<Warm> {
    cluster.create("warm", NOOP, |_| {}).await?;
    Ok(Warm {
        kumo: warm_invokes(cluster, "warm", n).await?,
        floor: floor(n).await?,
    })
}

/// `n` warm invokes of the existing function `name` (after one to warm it).
pub(crate) async fn warm_invokes(
    cluster: &mut Cluster,
    name: &str,
    n: usize,
) -> anyhow::Result<Summary> {
    invoke(cluster, name).await?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        samples.push(invoke(cluster, name).await?);
    }
    Ok(Summary::of(&samples))
}

/// The bootstrap and an in-process Runtime API, no daemon, agent or sandbox.
async fn floor(n: usize) -> anyhow::Result<Summary> {
    let task_root = tempfile::tempdir()?;
    std::fs::write(task_root.path().join("lambda_function.py"), NOOP)?;
    let runtime_dir = tempfile::tempdir()?;
    let bootstrap = kumo_agent::bootstrap::install(runtime_dir.path())?;
    kumo_agent::bootstrap::precompile_once(runtime_dir.path(), Path::new(PYTHON));
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let api = RuntimeApi::serve(listener)?;
    let env = [
        ("AWS_LAMBDA_RUNTIME_API", addr.to_string()),
        ("LAMBDA_TASK_ROOT", task_root.path().display().to_string()),
        ("_HANDLER", "lambda_function.handler".into()),
        ("AWS_LAMBDA_FUNCTION_NAME", "floor".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/floor".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2024/01/01/[$LATEST]0".into()),
        ("AWS_REGION", "us-east-1".into()),
    ];
    let mut child = tokio::process::Command::new(PYTHON)
        .args(kumo_agent::bootstrap::PYTHON_FLAGS)
        .arg(&bootstrap)
        .env_clear()
        .envs(env)
        .current_dir(task_root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("spawning the floor's bootstrap")?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..=n {
        let invocation = PendingInvocation {
            request_id: uuid::Uuid::new_v4().to_string(),
            payload: Bytes::from_static(b"{}"),
            timeout: Duration::from_secs(30),
            invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:floor".into(),
            trace_id: String::new(),
            client_context: None,
            cognito_identity: None,
        };
        let started = Instant::now();
        let reply = api
            .deliver(invocation)
            .await
            .context("the floor's runtime went away")?;
        anyhow::ensure!(
            matches!(reply, RuntimeReply::Response(_)),
            "floor reply {reply:?}"
        );
        if i > 0 {
            samples.push(started.elapsed());
        }
    }
    let _ = child.kill().await;
    Ok(Summary::of(&samples))
}
