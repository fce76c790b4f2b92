//! `kumo agents` and `kumo agent drain|undrain`.

use kumo_proto::control::{AgentStatus, DrainAgentRequest, ListAgentsRequest, UndrainAgentRequest};
use serde_json::{json, Value};

use crate::args::{AgentCommand, Output};
use crate::commands::CliError;
use crate::connect::Client;

/// The stable JSON shape of a node.
pub fn agent_json(a: &AgentStatus) -> Value {
    json!({
        "agent_id": a.agent_id,
        "hostname": a.hostname,
        "address": a.address,
        "state": a.state,
        "version": a.version,
        "allocatable_memory_mb": a.allocatable_memory_mb,
        "max_instances": a.max_instances,
        "running_invocations": a.running_invocations,
        "invocations_total": a.invocations_total,
        "instances": a.instances,
        "memory_reserved_mb": a.memory_reserved_mb,
        "last_seen_seconds_ago": (a.last_seen_seconds_ago * 10.0).round() / 10.0,
        "connected_at": a.connected_at,
    })
}

fn print_table(agents: &[AgentStatus]) {
    println!(
        "{:<20} {:<22} {:<9} {:>8} {:>10} {:>13} {:>8} {:>7}",
        "AGENT", "ADDRESS", "STATE", "RUNNING", "INSTANCES", "MEMORY_MB", "VERSION", "SEEN"
    );
    for a in agents {
        println!(
            "{:<20} {:<22} {:<9} {:>8} {:>10} {:>13} {:>8} {:>6.1}s",
            a.agent_id,
            a.address,
            a.state,
            a.running_invocations,
            a.instances,
            format!("{}/{}", a.memory_reserved_mb, a.allocatable_memory_mb),
            a.version,
            a.last_seen_seconds_ago
        );
    }
}

fn print(agents: &[AgentStatus], output: Output) {
    match output {
        Output::Json => {
            let list: Vec<Value> = agents.iter().map(agent_json).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&list).unwrap_or_default()
            );
        }
        Output::Text => print_table(agents),
    }
}

/// `kumo agents`.
pub async fn list(client: &mut Client, output: Output) -> Result<(), CliError> {
    let agents = client
        .list_agents(ListAgentsRequest {})
        .await?
        .into_inner()
        .agents;
    print(&agents, output);
    Ok(())
}

/// `kumo agent …`.
pub async fn run(client: &mut Client, command: AgentCommand) -> Result<(), CliError> {
    match command {
        AgentCommand::Drain {
            agent_id,
            wait_seconds,
            no_wait,
            output,
        } => {
            let wait_seconds = if no_wait { 0 } else { wait_seconds };
            let node = client
                .drain_agent(DrainAgentRequest {
                    agent_id,
                    wait_seconds,
                })
                .await?
                .into_inner();
            let still_running = node.running_invocations;
            print(std::slice::from_ref(&node), output);
            if !no_wait && still_running > 0 {
                return Err(CliError::Failed(format!(
                    "{} still runs {still_running} invocation(s) after {wait_seconds} s; it takes no new work",
                    node.agent_id
                )));
            }
            Ok(())
        }
        AgentCommand::Undrain { agent_id, output } => {
            let node = client
                .undrain_agent(UndrainAgentRequest { agent_id })
                .await?
                .into_inner();
            print(std::slice::from_ref(&node), output);
            Ok(())
        }
    }
}
