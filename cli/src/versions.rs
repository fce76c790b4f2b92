//! `kumo version …`, `kumo alias …` and `kumo status`.

use crate::connect::Client;
use kumo_proto::control::*;
use serde_json::{json, Value};

use crate::args::{AliasCommand, AliasTarget, Output, VersionCommand};
use crate::commands::CliError;

fn version_json(v: &VersionInfo) -> Value {
    json!({
        "function": v.function_name,
        "version": v.version,
        "description": v.description,
        "code_sha256": v.code_sha256,
        "code_size": v.code_size,
        "function_arn": v.function_arn,
        "created_at": v.created_at,
    })
}

fn alias_json(a: &AliasInfo) -> Value {
    let c = a.config.clone().unwrap_or_default();
    let mut value = json!({
        "function": c.function_name,
        "name": c.name,
        "version": c.version,
        "description": c.description,
        "alias_arn": a.alias_arn,
    });
    if !c.extra_version.is_empty() {
        value["routing"] =
            json!({ "AdditionalVersionWeights": { c.extra_version: c.extra_weight } });
    }
    value
}

fn print(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// `kumo version …`.
pub async fn version(client: &mut Client, command: VersionCommand) -> Result<(), CliError> {
    match command {
        VersionCommand::Publish {
            name,
            description,
            expect_sha256,
            output,
        } => {
            let info = client
                .publish_version(PublishVersionRequest {
                    function_name: name,
                    description,
                    expect_code_sha256: expect_sha256.unwrap_or_default(),
                    expect_revision_id: String::new(),
                })
                .await?
                .into_inner();
            match output {
                Output::Json => print(&version_json(&info)),
                Output::Text => println!(
                    "{} {} {}",
                    info.function_arn, info.version, info.code_sha256
                ),
            }
        }
        VersionCommand::List { name, output } => {
            let list = client
                .list_versions(ListVersionsRequest {
                    function_name: name,
                })
                .await?
                .into_inner()
                .versions;
            match output {
                Output::Json => print(&Value::Array(list.iter().map(version_json).collect())),
                Output::Text => {
                    println!(
                        "{:<9} {:<45} {:<25} DESCRIPTION",
                        "VERSION", "CODE_SHA256", "CREATED"
                    );
                    for v in &list {
                        println!(
                            "{:<9} {:<45} {:<25} {}",
                            v.version, v.code_sha256, v.created_at, v.description
                        );
                    }
                }
            }
        }
        VersionCommand::Delete { name, version } => {
            client
                .delete_version(DeleteVersionRequest {
                    function_name: name.clone(),
                    version: version.clone(),
                })
                .await?;
            println!("deleted version {version} of {name}");
        }
    }
    Ok(())
}

fn alias_config(target: AliasTarget) -> AliasConfig {
    AliasConfig {
        function_name: target.name,
        name: target.alias,
        version: target.version,
        extra_version: target.extra_version.unwrap_or_default(),
        extra_weight: target.weight.unwrap_or_default(),
        description: target.description,
    }
}

/// `kumo alias …`.
pub async fn alias(client: &mut Client, command: AliasCommand) -> Result<(), CliError> {
    match command {
        AliasCommand::Create(target) => {
            let output = target.output;
            let info = client
                .create_alias(alias_config(target))
                .await?
                .into_inner();
            crate::output::print_record(&alias_json(&info), output);
        }
        AliasCommand::Update(target) => {
            let output = target.output;
            let info = client
                .update_alias(alias_config(target))
                .await?
                .into_inner();
            crate::output::print_record(&alias_json(&info), output);
        }
        AliasCommand::Get {
            name,
            alias,
            output,
        } => {
            let info = client
                .get_alias(GetAliasRequest {
                    function_name: name,
                    name: alias,
                })
                .await?
                .into_inner();
            crate::output::print_record(&alias_json(&info), output);
        }
        AliasCommand::List { name, output } => {
            let list = client
                .list_aliases(ListAliasesRequest {
                    function_name: name,
                })
                .await?
                .into_inner()
                .aliases;
            let rows: Vec<Value> = list.iter().map(alias_json).collect();
            crate::output::print_table(
                &rows,
                &[
                    ("NAME", "name"),
                    ("VERSION", "version"),
                    ("ROUTING", "routing"),
                    ("DESCRIPTION", "description"),
                ],
                output,
            );
        }
        AliasCommand::Delete { name, alias } => {
            client
                .delete_alias(DeleteAliasRequest {
                    function_name: name.clone(),
                    name: alias.clone(),
                })
                .await?;
            println!("deleted alias {alias} of {name}");
        }
    }
    Ok(())
}

/// `kumo status`.
pub async fn status(client: &mut Client, output: Output) -> Result<(), CliError> {
    let status = client.get_status(GetStatusRequest {}).await?.into_inner();
    let agents: Vec<Value> = status
        .agents
        .iter()
        .map(crate::agents::agent_json)
        .collect();
    let value = json!({
        "daemon_version": status.daemon_version,
        "started_at": status.started_at,
        "uptime_seconds": status.uptime_seconds.round(),
        "functions": status.functions,
        "triggers": status.triggers,
        "concurrency_limit": status.concurrency_limit,
        "running_invocations": status.running_invocations,
        "agents": agents,
    });
    match output {
        Output::Json => print(&value),
        Output::Text => {
            println!(
                "kumod {} up {:.0} s, {} functions, {} triggers, {} running (limit {})",
                status.daemon_version,
                status.uptime_seconds,
                status.functions,
                status.triggers,
                status.running_invocations,
                status.concurrency_limit
            );
            println!(
                "{:<20} {:<16} {:>8} {:>10} {:>12} {:>9}",
                "AGENT", "HOST", "RUNNING", "INSTANCES", "MEMORY_MB", "SEEN"
            );
            for a in &status.agents {
                println!(
                    "{:<20} {:<16} {:>8} {:>10} {:>12} {:>8.1}s",
                    a.agent_id,
                    a.hostname,
                    a.running_invocations,
                    a.instances,
                    format!("{}/{}", a.memory_reserved_mb, a.allocatable_memory_mb),
                    a.last_seen_seconds_ago
                );
            }
        }
    }
    Ok(())
}
