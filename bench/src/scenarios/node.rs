//! The Node.js runtime (`nodejs20.x`): cold starts of a no-op handler, the
//! classic way and claiming pre-started node sandboxes
//! (`prewarm_node_instances`), and warm latency, beside spawning the bare
//! `node -e 0` that every cold start includes.

use std::time::Duration;

use serde::Serialize;

use super::latency::{cold_starts, time_command, warm_invokes, PREWARM_REFILL_PAUSE};
use crate::cluster::Cluster;
use crate::stats::Summary;

/// The no-op Node.js handler.
pub const NODE_NOOP: &str = "exports.handler = async () => null;\n";
/// The `node` binary the agent runs by default (`node_path`).
pub const NODE: &str = "/usr/bin/node";

/// Node.js runtime figures.
#[derive(Debug, Serialize)]
pub struct Node {
    /// Invoke to response with a new instance each time.
    pub cold: Summary,
    /// The same, claiming a pre-started node sandbox.
    pub cold_prewarmed: Summary,
    /// gRPC invoke of a warm no-op, end to end.
    pub warm: Summary,
    /// `node -e 0`.
    pub bare_node: Summary,
}

/// Measures on `cluster` (classic cold starts and warm calls) and on
/// `prewarmed` (whose agent keeps pre-started node sandboxes).
pub async fn node(
    cluster: &mut Cluster,
    prewarmed: &mut Cluster,
    n_cold: usize,
    n_warm: usize,
) -> anyhow::Result<Node> {
    cluster.create_node("node-cold", NODE_NOOP).await?;
    let cold = cold_starts(cluster, "node-cold", n_cold, Duration::ZERO).await?;
    cluster.create_node("node-warm", NODE_NOOP).await?;
    let warm = warm_invokes(cluster, "node-warm", n_warm).await?;
    prewarmed
        .create_node("node-cold-prewarmed", NODE_NOOP)
        .await?;
    let cold_prewarmed = cold_starts(
        prewarmed,
        "node-cold-prewarmed",
        n_cold,
        PREWARM_REFILL_PAUSE,
    )
    .await?;
    Ok(Node {
        cold,
        cold_prewarmed,
        warm,
        bare_node: time_command(NODE, &["-e", "0"], n_cold)?,
    })
}
