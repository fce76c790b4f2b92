//! Printing functions as text or as the stable JSON shape.

use kumo_proto::control::FunctionInfo;
use serde_json::{json, Value};

use crate::args::Output;

/// The stable JSON shape of a function.
pub fn function_json(info: &FunctionInfo) -> Value {
    let c = info.config.clone().unwrap_or_default();
    let queue = info.queue.unwrap_or_default();
    json!({
        "name": c.name,
        "description": c.description,
        "runtime": c.runtime,
        "handler": c.handler,
        "memory_mb": c.memory_mb,
        "timeout_seconds": c.timeout_seconds,
        "ephemeral_storage_mb": c.ephemeral_storage_mb,
        "reserved_concurrency": c.reserved_concurrency,
        "max_retry_attempts": c.max_retry_attempts,
        "max_event_age_seconds": c.max_event_age_seconds,
        "on_failure_destination": c.on_failure_destination,
        "credentials_profile": c.credentials_profile,
        "environment": c.environment,
        "network": c.network,
        "tags": c.tags,
        "code_sha256": info.code_sha256,
        "package_digest": info.package_digest,
        "code_size": info.code_size,
        "version": info.version,
        "function_arn": info.function_arn,
        "last_modified": info.last_modified,
        "revision": info.revision,
        "queue": {
            "queued": queue.queued,
            "in_flight": queue.in_flight,
            "dead_letters": queue.dead_letters,
            "redeliveries": queue.redeliveries,
        },
    })
}

/// Prints one function.
pub fn function(info: &FunctionInfo, output: Output) {
    let value = function_json(info);
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ),
        Output::Text => {
            if let Value::Object(map) = value {
                for (key, v) in map {
                    let text = match v {
                        Value::String(s) => s,
                        Value::Null => "-".to_string(),
                        Value::Object(fields) => fields
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                        other => other.to_string(),
                    };
                    println!("{key:<22} {text}");
                }
            }
        }
    }
}

/// Prints a list of functions.
pub fn functions(list: &[FunctionInfo], output: Output) {
    match output {
        Output::Json => {
            let values: Vec<Value> = list.iter().map(function_json).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&values).unwrap_or_default()
            );
        }
        Output::Text => {
            println!(
                "{:<32} {:<9} {:>7} {:>8}  HANDLER",
                "NAME", "RUNTIME", "MEMORY", "TIMEOUT"
            );
            for info in list {
                let c = info.config.clone().unwrap_or_default();
                println!(
                    "{:<32} {:<9} {:>7} {:>8}  {}",
                    c.name,
                    c.runtime,
                    format!("{}MB", c.memory_mb.unwrap_or_default()),
                    format!("{}s", c.timeout_seconds.unwrap_or_default()),
                    c.handler
                );
            }
        }
    }
}
