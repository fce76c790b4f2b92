//! Running each command against kumod.

use std::collections::HashMap;
use std::io::Write;

use kumo_proto::control::*;
use kumo_proto::model;

use crate::args::{CreateArgs, FunctionCommand, InvokeArgs, LogsArgs, Output, UpdateArgs};
use crate::connect::Client;
use crate::output;

/// How a command failed; decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The function ran and failed (exit 1; its error JSON is on stdout).
    #[error("function error")]
    FunctionFailed,
    /// Anything else (exit 2).
    #[error("{0}")]
    Failed(String),
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        CliError::Failed(status.message().to_string())
    }
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        CliError::Failed(message)
    }
}

fn parse_env(pairs: &[String]) -> Result<HashMap<String, String>, CliError> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| CliError::Failed(format!("--env {pair:?} must be KEY=VALUE")))
        })
        .collect()
}

/// `kumo function …`.
pub async fn function(client: &mut Client, command: FunctionCommand) -> Result<(), CliError> {
    match command {
        FunctionCommand::Create(args) => create(client, *args).await,
        FunctionCommand::Update(args) => update(client, *args).await,
        FunctionCommand::Get { name, output } => {
            let info = client
                .get_function(GetFunctionRequest { name })
                .await?
                .into_inner();
            output::function(&info, output);
            Ok(())
        }
        FunctionCommand::List { output } => {
            let list = client
                .list_functions(ListFunctionsRequest {})
                .await?
                .into_inner();
            output::functions(&list.functions, output);
            Ok(())
        }
        FunctionCommand::Delete { name } => {
            client
                .delete_function(DeleteFunctionRequest { name: name.clone() })
                .await?;
            println!("deleted {name}");
            Ok(())
        }
    }
}

async fn create(client: &mut Client, args: CreateArgs) -> Result<(), CliError> {
    let settings = args.settings;
    let mut config = FunctionConfig {
        name: args.name,
        description: args.description,
        runtime: args.runtime.clone(),
        handler: args.handler,
        memory_mb: settings.memory,
        timeout_seconds: settings.timeout,
        environment: parse_env(&settings.env)?,
        network: settings.network.unwrap_or_default().to_string(),
        tags: HashMap::new(),
        ephemeral_storage_mb: settings.tmp_size,
        max_retry_attempts: settings.async_settings.max_retry_attempts,
        max_event_age_seconds: settings.async_settings.max_event_age,
        reserved_concurrency: settings.async_settings.concurrency,
        on_failure_destination: settings.async_settings.on_failure.unwrap_or_default(),
        dead_letter_target: settings
            .async_settings
            .dead_letter_target
            .unwrap_or_default(),
        on_success_destination: settings.async_settings.on_success.unwrap_or_default(),
        credentials_profile: settings.credentials.unwrap_or_default(),
        egress_allow: settings.egress_allow,
        role: String::new(),
        layers: settings.layers,
    };
    // The same rules kumod applies, checked before uploading anything.
    model::normalize_config(&mut config).map_err(|e| CliError::Failed(e.to_string()))?;
    let (zip, code_s3) = crate::package::source(&args.code, settings.s3_profile.as_deref())?;
    let bar = crate::upload_progress::bar_for(zip.len(), &config.name);
    let request = crate::upload_progress::with_bar(
        CreateFunctionRequest {
            config: Some(config),
            zip,
            code_s3,
        },
        bar,
    );
    let info = client.create_function(request).await?.into_inner();
    if !info.runtime_warning.is_empty() {
        eprintln!("warning: {}", info.runtime_warning);
    }
    output::function(&info, args.output);
    Ok(())
}

async fn update(client: &mut Client, args: UpdateArgs) -> Result<(), CliError> {
    let settings = args.settings;
    let mut info = None;
    if let Some(code) = &args.code {
        let (zip, code_s3) = crate::package::source(code, settings.s3_profile.as_deref())?;
        let bar = crate::upload_progress::bar_for(zip.len(), &args.name);
        let request = crate::upload_progress::with_bar(
            UpdateFunctionCodeRequest {
                name: args.name.clone(),
                zip,
                code_s3,
                expect_revision_id: String::new(),
            },
            bar,
        );
        info = Some(client.update_function_code(request).await?.into_inner());
    }
    let set_environment = args.clear_env || !settings.env.is_empty();
    let set_egress_allow = args.clear_egress_allow || !settings.egress_allow.is_empty();
    let set_layers = args.clear_layers || !settings.layers.is_empty();
    let changes_config = args.runtime.is_some()
        || args.handler.is_some()
        || args.description.is_some()
        || args.no_concurrency
        || set_environment
        || settings.memory.is_some()
        || settings.timeout.is_some()
        || settings.network.is_some()
        || settings.tmp_size.is_some()
        || settings.async_settings.concurrency.is_some()
        || settings.async_settings.max_retry_attempts.is_some()
        || settings.async_settings.max_event_age.is_some()
        || settings.async_settings.on_failure.is_some()
        || settings.async_settings.dead_letter_target.is_some()
        || settings.async_settings.on_success.is_some()
        || settings.credentials.is_some()
        || set_egress_allow
        || set_layers;
    if changes_config {
        let request = UpdateFunctionConfigurationRequest {
            name: args.name.clone(),
            description: args.description,
            runtime: args.runtime.clone(),
            handler: args.handler,
            memory_mb: settings.memory,
            timeout_seconds: settings.timeout,
            set_environment,
            environment: parse_env(&settings.env)?,
            network: settings.network.map(|n| n.to_string()),
            ephemeral_storage_mb: settings.tmp_size,
            max_retry_attempts: settings.async_settings.max_retry_attempts,
            max_event_age_seconds: settings.async_settings.max_event_age,
            reserved_concurrency: settings.async_settings.concurrency,
            clear_reserved_concurrency: args.no_concurrency,
            on_failure_destination: settings.async_settings.on_failure,
            dead_letter_target: settings.async_settings.dead_letter_target,
            on_success_destination: settings.async_settings.on_success,
            credentials_profile: settings.credentials,
            set_egress_allow,
            egress_allow: settings.egress_allow,
            role: None,
            set_layers,
            layers: settings.layers,
            expect_revision_id: String::new(),
        };
        info = Some(
            client
                .update_function_configuration(request)
                .await?
                .into_inner(),
        );
    }
    let info =
        info.ok_or_else(|| CliError::Failed("nothing to update: give --code or a setting".into()))?;
    output::function(&info, args.output);
    Ok(())
}

/// `kumo invoke`.
pub async fn invoke(client: &mut Client, args: InvokeArgs) -> Result<(), CliError> {
    let payload = match (&args.payload, &args.payload_file) {
        (Some(p), _) => p.clone().into_bytes(),
        (None, Some(file)) => {
            std::fs::read(file).map_err(|e| format!("reading {}: {e}", file.display()))?
        }
        (None, None) => b"{}".to_vec(),
    };
    let invocation_type = if args.async_ {
        InvocationType::Event
    } else if args.dry_run {
        InvocationType::DryRun
    } else {
        InvocationType::RequestResponse
    };
    let response = client
        .invoke(InvokeRequest {
            function_name: args.name,
            qualifier: args.qualifier.unwrap_or_default(),
            payload,
            invocation_type: invocation_type as i32,
            log_tail: args.log_tail,
            client_context: args.client_context.unwrap_or_default(),
        })
        .await?
        .into_inner();
    if invocation_type != InvocationType::RequestResponse {
        let answer = serde_json::json!({
            "StatusCode": response.status_code,
            "RequestId": response.request_id,
        });
        println!("{answer}");
        return Ok(());
    }
    if args.log_tail {
        eprint!("{}", response.log_tail);
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&response.payload);
    let _ = stdout.write_all(b"\n");
    if response.function_error.is_empty() {
        Ok(())
    } else {
        Err(CliError::FunctionFailed)
    }
}

/// `kumo logs`.
pub async fn logs(client: &mut Client, args: LogsArgs) -> Result<(), CliError> {
    let since_unix_ms = match &args.since {
        Some(since) => parse_since(since, chrono::Utc::now())?,
        None => 0,
    };
    // --follow starts at the end, like tail -f, unless told where to start.
    let skip_history = args.follow && args.since.is_none() && args.request_id.is_none();
    let mut stream = client
        .get_logs(GetLogsRequest {
            function_name: args.name,
            follow: args.follow,
            since_unix_ms,
            request_id: args.request_id.unwrap_or_default(),
            version: args.version.unwrap_or_default(),
            skip_history,
        })
        .await?
        .into_inner();
    while let Some(event) = stream.message().await? {
        let mut stdout = std::io::stdout().lock();
        match args.output {
            Output::Text => {
                let _ = stdout.write_all(event.text.as_bytes());
            }
            Output::Json => {
                for line in log_lines_json(&event) {
                    let _ = writeln!(stdout, "{line}");
                }
            }
        }
        let _ = stdout.flush();
    }
    Ok(())
}

/// One JSON object per log line of `event` (JSON lines).
fn log_lines_json(event: &LogEvent) -> Vec<serde_json::Value> {
    event
        .text
        .lines()
        .map(|line| {
            serde_json::json!({
                "timestamp_unix_ms": event.timestamp_unix_ms,
                "function": event.function_name,
                "version": event.version,
                "request_id": event.request_id,
                "message": line,
            })
        })
        .collect()
}

/// `30s`, `10m`, `2h`, `1d` ago, or an RFC 3339 time, as epoch milliseconds.
pub fn parse_since(since: &str, now: chrono::DateTime<chrono::Utc>) -> Result<i64, CliError> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(since) {
        return Ok(time.timestamp_millis());
    }
    let bad = || {
        CliError::Failed(format!(
            "--since {since:?}: use e.g. 30s, 10m, 2h, 1d or an RFC 3339 time"
        ))
    };
    let (number, unit) = since.split_at(since.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    Ok(now.timestamp_millis() - seconds * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_events_become_one_json_object_per_line() {
        let event = LogEvent {
            timestamp_unix_ms: 1_700_000_000_000,
            function_name: "divide".into(),
            request_id: "r-1".into(),
            version: "$LATEST".into(),
            text: "START RequestId: r-1 Version: $LATEST\nhello \"there\"\n".into(),
        };
        let lines = log_lines_json(&event);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["message"], "hello \"there\"");
        assert_eq!(lines[1]["request_id"], "r-1");
        assert_eq!(lines[0]["timestamp_unix_ms"], 1_700_000_000_000_i64);
    }

    #[test]
    fn since_forms() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:10:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_since("10m", now).unwrap(),
            now.timestamp_millis() - 600_000
        );
        assert_eq!(
            parse_since("2026-01-01T00:00:00Z", now).unwrap(),
            now.timestamp_millis() - 600_000
        );
        assert!(parse_since("ten minutes", now).is_err());
    }

    #[test]
    fn env_pairs() {
        assert_eq!(parse_env(&["A_B=x=y".into()]).unwrap()["A_B"], "x=y");
        assert!(parse_env(&["NOEQUALS".into()]).is_err());
    }
}
