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
        "egress_allow": c.egress_allow,
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
    print_record(&function_json(info), output);
}

/// Prints a JSON record: pretty JSON, or one `key value` line per field
/// (objects as `k=v …`, arrays one item per line, null as `-`).
pub fn print_record(value: &Value, output: Output) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Text => {
            let Value::Object(map) = value else {
                println!("{value}");
                return;
            };
            for (key, v) in map {
                match v {
                    Value::Array(items)
                        if items.iter().all(Value::is_string) && !items.is_empty() =>
                    {
                        println!("{key}");
                        for item in items {
                            println!("  {}", item.as_str().unwrap_or_default());
                        }
                    }
                    Value::String(s) => println!("{key:<22} {s}"),
                    Value::Null => println!("{key:<22} -"),
                    Value::Object(fields) => {
                        let text: Vec<String> =
                            fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        println!("{key:<22} {}", text.join(" "));
                    }
                    other => println!("{key:<22} {other}"),
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
