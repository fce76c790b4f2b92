//! Three agents, each in its own network namespace with its own address,
//! and one kumod: work spreads across them; an agent killed with SIGKILL
//! under steady async load loses no accepted event, its synchronous
//! callers get a retryable error, the other two carry on, and the agent
//! takes work again when it comes back. A silent node is declared lost by
//! the heartbeat timeout; a drained node gets no new work and finishes
//! what it runs.

use std::process::Output;
use std::time::{Duration, Instant};

use kumo_tests::cluster::Cluster;
use kumo_tests::sink::Sink;
use kumo_tests::{fixture, root_or_skip};

/// Fast heartbeats so loss is detected in about a second.
const FAST_HEARTBEATS: &str = "[agents]\nheartbeat_interval_ms = 200\nlost_after_ms = 1500\n";

/// Creates `name` from the reporter fixture, reporting to `sink` (which
/// listens on all addresses; handlers reach it through their node's link).
fn create_worker(cluster: &Cluster, name: &str, sink: &Sink) {
    let port = sink.address.rsplit(':').next().unwrap();
    let env = format!("SINK={}:{port}", cluster.nets[0].host_ip);
    cluster.kumo.create(
        name,
        "python3",
        "lambda_function.lambda_handler",
        &fixture("reporter"),
        &["--network", "host", "--env", &env, "--timeout", "30"],
    );
}

/// Starts `n` synchronous calls sleeping `sleep` seconds each.
fn call_in_parallel(
    cluster: &Cluster,
    name: &str,
    n: usize,
    sleep: f64,
) -> Vec<std::process::Child> {
    (0..n)
        .map(|i| {
            let payload = format!(r#"{{"tag":"sync-{i}","sleep":{sleep}}}"#);
            cluster
                .kumo
                .spawn_cli(&["invoke", name, "--payload", &payload])
        })
        .collect()
}

fn finish(children: Vec<std::process::Child>) -> Vec<Output> {
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

fn all_succeeded(outputs: &[Output]) {
    for out in outputs {
        assert!(out.status.success(), "{out:?}");
    }
}

#[test]
fn three_agents_share_work_and_survive_losing_one() {
    if !root_or_skip() {
        return;
    }
    let mut cluster = Cluster::start(3, FAST_HEARTBEATS);
    let sink = Sink::start_on("0.0.0.0");
    create_worker(&cluster, "work", &sink);

    // Spread: nine concurrent calls land on every node.
    all_succeeded(&finish(call_in_parallel(&cluster, "work", 9, 1.0)));
    let placed = cluster.placed();
    assert!(
        placed.iter().all(|n| *n >= 1),
        "work did not spread: {placed:?}"
    );
    assert_eq!(placed.iter().sum::<u64>(), 9, "{placed:?}");

    // Warm first: calls one at a time reuse the idle instance where it
    // waits instead of starting one on the node with the most free memory.
    create_worker(&cluster, "solo", &sink);
    let before = cluster.placed();
    for _ in 0..5 {
        let run = cluster.kumo.invoke("solo", "{}");
        assert_eq!(run.code, 0, "{run:?}");
    }
    let grew: Vec<u64> = cluster
        .placed()
        .iter()
        .zip(&before)
        .map(|(a, b)| a - b)
        .collect();
    assert!(
        grew.contains(&5),
        "sequential calls left their warm instance: {grew:?}"
    );

    // Steady async load plus long synchronous calls, then node-1 dies.
    let mut accepted = Vec::new();
    let sync_calls = call_in_parallel(&cluster, "work", 9, 3.0);
    let started = Instant::now();
    let mut killed = false;
    let mut batch = 0;
    while started.elapsed() < Duration::from_secs(5) {
        let children: Vec<_> = (0..8)
            .map(|i| {
                let payload = format!(r#"{{"tag":"async-{batch}-{i}","sleep":0.2}}"#);
                cluster
                    .kumo
                    .spawn_cli(&["invoke", "work", "--async", "--payload", &payload])
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "accept failed: {out:?}");
            let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            accepted.push(answer["RequestId"].as_str().unwrap().to_string());
        }
        batch += 1;
        if !killed && started.elapsed() > Duration::from_millis(1500) {
            cluster.kill9_agent(1);
            killed = true;
        }
    }
    assert!(killed);

    // Synchronous callers on node-1 got the retryable error; the rest ran.
    let outputs = finish(sync_calls);
    let failed: Vec<&Output> = outputs.iter().filter(|o| !o.status.success()).collect();
    assert!(
        !failed.is_empty(),
        "no synchronous call was running on the killed node"
    );
    assert!(
        failed.len() < outputs.len(),
        "every synchronous call failed"
    );
    for out in &failed {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("node-1") && stderr.contains("retry the call"),
            "not the retryable error: {stderr}"
        );
    }
    cluster.wait_state(|agents| {
        agents
            .iter()
            .any(|a| a["agent_id"] == "node-1" && a["state"] == "lost")
    });

    // No accepted event is lost (at-least-once).
    if let Err(missing) = sink.wait_all_ran(&accepted, Duration::from_secs(120)) {
        panic!(
            "{missing} of {} accepted events never ran\n{}",
            accepted.len(),
            cluster.kumo.log()
        );
    }

    // The cluster carries on with two nodes.
    let before = cluster.placed();
    all_succeeded(&finish(call_in_parallel(&cluster, "work", 6, 0.5)));
    let after = cluster.placed();
    assert_eq!(after[1], before[1], "work went to the lost node");
    assert_eq!(after[0] + after[2], before[0] + before[2] + 6);

    // node-1 comes back, re-registers and takes work again (a function
    // with no warm instance anywhere goes by free memory, so it spreads).
    cluster.start_agent(1);
    cluster.wait_state(|agents| agents.iter().all(|a| a["state"] == "ready"));
    create_worker(&cluster, "fresh", &sink);
    let before = cluster.placed();
    all_succeeded(&finish(call_in_parallel(&cluster, "fresh", 9, 1.0)));
    let after = cluster.placed();
    assert!(
        after[1] > before[1],
        "node-1 got no work after it came back: {before:?} → {after:?}"
    );
}

#[test]
fn a_silent_node_is_declared_lost_and_rejoins() {
    if !root_or_skip() {
        return;
    }
    let cluster = Cluster::start(2, FAST_HEARTBEATS);
    let code = fixture("division");
    cluster.kumo.create(
        "div",
        "python3",
        "lambda_function.myfunc01_handler",
        &code,
        &[],
    );
    let run = cluster.kumo.invoke("div", r#"{"x":6,"y":3}"#);
    assert_eq!(run.code, 0, "{run:?}");

    // Packets to and from node-0 are dropped silently: only the heartbeat
    // timeout can tell.
    cluster.nets[0].set_link(false);
    let cut = Instant::now();
    cluster.wait_state(|agents| {
        agents
            .iter()
            .any(|a| a["agent_id"] == "node-0" && a["state"] == "lost")
    });
    eprintln!(
        "node-0 declared lost {:.1} s after its link went down",
        cut.elapsed().as_secs_f64()
    );
    assert!(
        cluster.kumo.log().contains("no heartbeat for 1500 ms"),
        "{}",
        cluster.kumo.log()
    );
    for _ in 0..4 {
        let run = cluster.kumo.invoke("div", r#"{"x":6,"y":3}"#);
        assert_eq!(run.code, 0, "the remaining node must serve: {run:?}");
    }
    assert_eq!(cluster.agent(0)["state"], "lost");

    cluster.nets[0].set_link(true);
    cluster.wait_state(|agents| agents.iter().all(|a| a["state"] == "ready"));
}

#[test]
fn a_drained_node_gets_no_new_work_and_finishes_what_it_runs() {
    if !root_or_skip() {
        return;
    }
    let cluster = Cluster::start(2, FAST_HEARTBEATS);
    let sink = Sink::start_on("0.0.0.0");
    create_worker(&cluster, "work", &sink);
    let running = call_in_parallel(&cluster, "work", 4, 3.0);
    cluster.wait_state(|agents| {
        agents
            .iter()
            .all(|a| a["running_invocations"].as_u64() >= Some(1))
    });

    // Drain waits for node-0's running calls.
    let drain_started = Instant::now();
    let drain = cluster
        .kumo
        .spawn_cli(&["agent", "drain", "node-0", "--output", "json"]);
    cluster.wait_state(|agents| {
        agents
            .iter()
            .any(|a| a["agent_id"] == "node-0" && a["state"] == "draining")
    });
    let before = cluster.placed();
    let during = call_in_parallel(&cluster, "work", 4, 0.2);
    let drained = drain.wait_with_output().unwrap();
    assert!(drained.status.success(), "{drained:?}");
    let shown: serde_json::Value = serde_json::from_slice(&drained.stdout).unwrap();
    assert_eq!(shown[0]["state"], "drained", "{shown}");
    assert_eq!(shown[0]["running_invocations"], 0, "{shown}");
    assert!(
        drain_started.elapsed() >= Duration::from_secs(2),
        "drain did not wait"
    );
    all_succeeded(&finish(running));
    all_succeeded(&finish(during));
    let after = cluster.placed();
    assert_eq!(
        after[0], before[0],
        "a drained node got new work: {before:?} → {after:?}"
    );
    assert_eq!(after[1], before[1] + 4);

    // Unknown nodes are a clear error; undrain puts node-0 back.
    let unknown = cluster.kumo.cli(&["agent", "drain", "no-such-node"]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown.stderr.contains("no agent no-such-node is known"),
        "{unknown:?}"
    );
    let undrained = cluster
        .kumo
        .cli(&["agent", "undrain", "node-0", "--output", "json"]);
    assert_eq!(undrained.json()[0]["state"], "ready", "{undrained:?}");
    let before = cluster.placed();
    all_succeeded(&finish(call_in_parallel(&cluster, "work", 4, 1.0)));
    assert!(
        cluster.placed()[0] > before[0],
        "node-0 got no work after undrain"
    );
}

#[test]
fn an_agent_with_a_wrong_join_token_is_refused() {
    if !root_or_skip() {
        return;
    }
    let mut cluster = Cluster::start(1, FAST_HEARTBEATS);
    cluster.kill9_agent(0);
    cluster.wait_state(|agents| agents.iter().all(|a| a["state"] == "lost"));
    let wrong = cluster.kumo.dir.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-join-token-of-this-kumod\n").unwrap();
    cluster.start_agent_with_token(0, &wrong);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cluster.agent_log(0).contains("invalid bearer token") {
        assert!(
            Instant::now() < deadline,
            "no refusal logged:\n{}",
            cluster.agent_log(0)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(cluster.agent(0)["state"], "lost", "a wrong token attached");
    let run = cluster.kumo.invoke("anything", "{}");
    assert_ne!(run.code, 0);
    // With the right token it joins.
    cluster.kill9_agent(0);
    cluster.start_agent(0);
    cluster.wait_state(|agents| agents.iter().all(|a| a["state"] == "ready"));
}
