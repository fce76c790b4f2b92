//! kumo-bench: runs every benchmark scenario against a release Kumo and
//! writes docs/performance.md, docs/performance.json and docs/performance.png.
//! See bench/README.md.

mod chart;
mod cluster;
mod report;
mod scenarios;
mod stats;

use std::path::PathBuf;

use clap::Parser;

/// Benchmark Kumo against its baselines.
#[derive(Debug, Parser)]
#[command(name = "kumo-bench")]
struct Args {
    /// Fewer samples (under 2 minutes), for CI smoke runs.
    #[arg(long)]
    quick: bool,
    /// Where to write performance.md, performance.json and performance.png.
    #[arg(long, default_value = "docs")]
    out_dir: PathBuf,
    /// Run only the Node.js runtime scenario and print its rows (writes
    /// nothing).
    #[arg(long)]
    node_only: bool,
}

/// Agent settings of the kumod whose cold starts claim pre-started sandboxes.
const PREWARM_AGENT: &str = "prewarm_python_instances = 4\nprewarm_node_instances = 4\nprewarm_python_outbound_instances = 4";

/// The Node.js scenario on `kumo` and a kumod keeping pre-started sandboxes
/// (`None` when `node` is not installed).
async fn node_scenario(
    kumo: &mut cluster::Cluster,
    n_cold: usize,
    n_warm: usize,
) -> anyhow::Result<Option<scenarios::node::Node>> {
    if !std::path::Path::new(scenarios::node::NODE).exists() {
        eprintln!("no {}: skipping the Node.js runtime", scenarios::node::NODE);
        return Ok(None);
    }
    let mut prewarmed = cluster::start_with_agent("", PREWARM_AGENT, None).await?;
    let node = scenarios::node::node(kumo, &mut prewarmed, n_cold, n_warm).await?;
    Ok(Some(node))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let q = args.quick;
    let pick = |quick: usize, full: usize| if q { quick } else { full };
    eprintln!("kumo-bench: starting kumod (release)…");
    let mut kumo = cluster::start_with_agent("", cluster::OUTBOUND_AGENT, None).await?;
    if args.node_only {
        eprintln!("Node.js runtime…");
        if let Some(node) = node_scenario(&mut kumo, pick(15, 60), pick(500, 5000)).await? {
            let mut rows = String::new();
            report::node_rows(&mut rows, &node);
            println!("{rows}");
        }
        return Ok(());
    }
    eprintln!("cold start (network none, then outbound)…");
    let mut cold = scenarios::latency::cold(&mut kumo, pick(15, 60)).await?;
    eprintln!("warm latency…");
    let warm = scenarios::latency::warm(&mut kumo, pick(500, 5000)).await?;
    eprintln!("throughput…");
    let throughput =
        scenarios::load::throughput(&mut kumo, &[1, 8, 64], if q { 2.0 } else { 10.0 }).await?;
    eprintln!("density…");
    let density = scenarios::load::density(&mut kumo, pick(20, 100)).await?;
    eprintln!("event ingest…");
    let ingest = scenarios::ingest::ingest(&mut kumo, pick(2_000, 20_000), pick(0, 3)).await?;
    eprintln!("Node.js runtime…");
    let node = node_scenario(&mut kumo, pick(15, 60), pick(500, 5000)).await?;
    drop(kumo);
    eprintln!("cold start from pre-started sandboxes…");
    let agent = format!("{PREWARM_AGENT}\n{}", cluster::OUTBOUND_AGENT);
    let mut prewarmed = cluster::start_with_agent("", &agent, None).await?;
    cold.kumo_prewarmed =
        Some(scenarios::latency::cold_prewarmed(&mut prewarmed, "none", pick(15, 60)).await?);
    cold.kumo_prewarmed_outbound =
        Some(scenarios::latency::cold_prewarmed(&mut prewarmed, "outbound", pick(15, 60)).await?);
    drop(prewarmed);
    cluster::remove_outbound_network();
    eprintln!("state scale…");
    let state = scenarios::state::state_scale(pick(1_000, 10_000), pick(10_000, 100_000)).await?;
    let results = report::Results {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        command: format!("bench/run.sh{}", if q { " --quick" } else { "" }),
        machine: report::machine(),
        quick: q,
        cold,
        warm,
        node,
        throughput,
        density,
        ingest,
        state,
    };
    std::fs::create_dir_all(&args.out_dir)?;
    chart::write(&results, &args.out_dir.join("performance.png"))?;
    let markdown = report::markdown(&results);
    std::fs::write(args.out_dir.join("performance.md"), &markdown)?;
    std::fs::write(
        args.out_dir.join("performance.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    println!("{markdown}");
    Ok(())
}
