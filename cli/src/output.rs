//! Printing functions as text or as the stable JSON shape.

use kumo_proto::control::FunctionInfo;
use serde_json::{json, Value};

use crate::args::Output;

/// The stable JSON shape of a function.
pub fn function_json(info: &FunctionInfo) -> Value {
    let c = info.config.clone().unwrap_or_default();
    let queue = info.queue.unwrap_or_default();
    let mut value = json!({
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
        "dead_letter_target": c.dead_letter_target,
        "on_success_destination": c.on_success_destination,
        "credentials_profile": c.credentials_profile,
        "environment": c.environment,
        "network": c.network,
        "egress_allow": c.egress_allow,
        "layers": c.layers,
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
    });
    if !info.runtime_warning.is_empty() {
        value["runtime_warning"] = json!(info.runtime_warning);
    }
    value
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

/// Prints records as a JSON array, or as a table: one column per
/// `(header, key)`, each as wide as its widest cell (null and missing
/// cells as `-`, objects and arrays compact JSON).
pub fn print_table(rows: &[Value], columns: &[(&str, &str)], output: Output) {
    if output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&Value::Array(rows.to_vec())).unwrap_or_default()
        );
        return;
    }
    let cell = |row: &Value, key: &str| match row.get(key) {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) if s.is_empty() => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|(_, key)| cell(row, key)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (header, _))| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or_default()
        })
        .collect();
    let line = |values: Vec<&str>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(value, width)| format!("{value:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|(header, _)| *header).collect());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
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
            let rows: Vec<Value> = list
                .iter()
                .map(|info| {
                    let c = info.config.clone().unwrap_or_default();
                    json!({
                        "name": c.name,
                        "runtime": c.runtime,
                        "memory": format!("{}MB", c.memory_mb.unwrap_or_default()),
                        "timeout": format!("{}s", c.timeout_seconds.unwrap_or_default()),
                        "handler": c.handler,
                    })
                })
                .collect();
            print_table(
                &rows,
                &[
                    ("NAME", "name"),
                    ("RUNTIME", "runtime"),
                    ("MEMORY", "memory"),
                    ("TIMEOUT", "timeout"),
                    ("HANDLER", "handler"),
                ],
                output,
            );
        }
    }
}
