//! `kumo trigger …`: schedules, bucket notifications, HTTP routes and SQS
//! queues.

use crate::connect::Client;
use kumo_proto::control::{
    trigger_config, BucketSource, CreateTriggerRequest, DeleteTriggerRequest, GetTriggerRequest,
    HttpCors, HttpSource, ListTriggersRequest, ScheduleSource, SetTriggerEnabledRequest, SnsSource,
    SqsSource, TriggerConfig, TriggerInfo,
};
use serde_json::{json, Value};

use crate::args::{Output, TriggerCommand, TriggerCreateArgs};
use crate::commands::CliError;

/// The stable JSON shape of a trigger.
pub fn trigger_json(info: &TriggerInfo) -> Value {
    let config = info.config.clone().unwrap_or_default();
    let mut value = json!({
        "name": config.name,
        "function": config.function,
        "enabled": !config.disabled,
        "arn": info.arn,
        "created_at": info.created_at,
        "fired": info.fired,
    });
    match config.source {
        Some(trigger_config::Source::Schedule(s)) => {
            value["schedule"] = json!(s.expression);
            if !s.input.is_empty() {
                value["input"] = json!(s.input);
            }
            value["next_fires"] = json!(info.next_fires);
            value["last_fired_at"] = json!(info.last_fired_at);
        }
        Some(trigger_config::Source::Http(h)) => {
            value["http_path"] = json!(h.path);
            value["methods"] = json!(h.methods);
            value["payload_format"] = json!(h.payload_format);
            value["stage"] = json!(h.stage);
            value["api_id"] = json!(h.api_id);
            value["url_path"] = json!(info.url_path);
            if let Some(cors) = h.cors {
                value["cors"] = json!({
                    "allow_origins": cors.allow_origins,
                    "allow_methods": cors.allow_methods,
                    "allow_headers": cors.allow_headers,
                    "max_age_seconds": cors.max_age_seconds,
                });
            }
        }
        Some(trigger_config::Source::Sqs(q)) => {
            value["sqs_queue"] = json!(q.queue);
            value["queue_url"] = json!(q.queue_url);
            value["queue_arn"] = json!(q.queue_arn);
            value["fifo"] = json!(q.fifo);
            value["aws_profile"] = json!(q.profile);
            value["batch_size"] = json!(q.batch_size);
            value["batch_window"] = json!(q.batch_window_seconds);
            value["max_concurrency"] = if q.max_concurrency == 0 {
                Value::Null
            } else {
                json!(q.max_concurrency)
            };
            value["report_batch_item_failures"] = json!(q.report_batch_item_failures);
            value["filters"] = json!(q.filters);
            let state = info.queue_state.clone().unwrap_or_default();
            value["state"] = json!(state.state);
            value["in_flight_batches"] = json!(state.in_flight_batches);
            value["processed"] = json!(state.processed);
            value["failed"] = json!(state.failed);
            value["filtered"] = json!(state.filtered);
            value["throttled"] = json!(state.throttled);
            value["last_error"] = json!(state.last_error);
        }
        Some(trigger_config::Source::Sns(t)) => {
            value["sns_topic"] = json!(t.topic_arn);
            value["aws_profile"] = json!(t.profile);
            value["filter_policy"] = json!(t.filter_policy);
            value["subscription_arn"] = json!(t.subscription_arn);
            value["endpoint"] = json!(t.endpoint);
        }
        Some(trigger_config::Source::Bucket(b)) => {
            value["bucket"] = json!(b.bucket);
            value["events"] = json!(b.events);
            value["prefix"] = json!(b.prefix);
            value["suffix"] = json!(b.suffix);
            value["event_format"] = json!(b.event_format);
            value["configured_with"] = json!(info.configured_with);
        }
        None => {}
    }
    value
}

/// One line saying what starts the trigger: `schedule rate(5 minutes)`,
/// `http GET,POST /path`, `bucket images (s3:ObjectCreated:*)`.
fn source_summary(info: &TriggerInfo) -> String {
    let config = info.config.clone().unwrap_or_default();
    match config.source {
        Some(trigger_config::Source::Schedule(s)) => format!("schedule {}", s.expression),
        Some(trigger_config::Source::Http(h)) => {
            let methods = if h.methods.is_empty() {
                "ANY".to_string()
            } else {
                h.methods.join(",")
            };
            format!("http {methods} {}", info.url_path)
        }
        Some(trigger_config::Source::Sqs(q)) => format!("sqs {}", q.queue_arn),
        Some(trigger_config::Source::Sns(t)) => format!("sns {}", t.topic_arn),
        Some(trigger_config::Source::Bucket(b)) => {
            let mut line = format!("bucket {}", b.bucket);
            if !b.events.is_empty() {
                line.push_str(&format!(" ({})", b.events.join(",")));
            }
            line
        }
        None => "-".to_string(),
    }
}

fn print(info: &TriggerInfo, output: Output) {
    crate::output::print_record(&trigger_json(info), output);
}

fn create_request(args: TriggerCreateArgs) -> CreateTriggerRequest {
    let source = match (args.schedule, args.http_path, args.bucket) {
        (None, None, None) if args.sns_topic.is_some() => trigger_config::Source::Sns(SnsSource {
            topic_arn: args.sns_topic.unwrap_or_default(),
            profile: args.aws_profile.clone().unwrap_or_default(),
            filter_policy: args.filter_policy.unwrap_or_default(),
            ..Default::default()
        }),
        (None, None, None) if args.sqs_queue.is_some() => trigger_config::Source::Sqs(SqsSource {
            queue: args.sqs_queue.unwrap_or_default(),
            profile: args.aws_profile.clone().unwrap_or_default(),
            batch_size: args.batch_size.unwrap_or_default(),
            batch_window_seconds: args.batch_window.unwrap_or_default(),
            max_concurrency: args.max_concurrency.unwrap_or_default(),
            report_batch_item_failures: args.report_batch_item_failures,
            filters: args.filter,
            ..Default::default()
        }),
        (Some(expression), _, _) => trigger_config::Source::Schedule(ScheduleSource {
            expression,
            input: args.input.unwrap_or_default(),
        }),
        (None, Some(path), _) => trigger_config::Source::Http(HttpSource {
            path,
            methods: args.methods,
            payload_format: args.payload_format.unwrap_or_default(),
            stage: args.stage.unwrap_or_default(),
            api_id: args.api_id.unwrap_or_default(),
            cors: (!args.cors_origin.is_empty()).then(|| HttpCors {
                allow_origins: args.cors_origin,
                allow_methods: args.cors_methods,
                allow_headers: args.cors_headers,
                max_age_seconds: args.cors_max_age.unwrap_or_default(),
            }),
        }),
        (None, None, bucket) => trigger_config::Source::Bucket(BucketSource {
            bucket: bucket.unwrap_or_default(),
            events: args.events,
            prefix: args.prefix,
            suffix: args.suffix,
            event_format: args.event_format.unwrap_or_default(),
        }),
    };
    CreateTriggerRequest {
        config: Some(TriggerConfig {
            name: args.name,
            function: args.function,
            disabled: args.disabled,
            source: Some(source),
        }),
        configure_bucket_profile: if args.configure_bucket {
            args.aws_profile.unwrap_or_default()
        } else {
            String::new()
        },
    }
}

/// Runs a `kumo trigger` command.
pub async fn run(client: &mut Client, command: TriggerCommand) -> Result<(), CliError> {
    match command {
        TriggerCommand::Create(args) => {
            let output = args.output;
            let info = client
                .create_trigger(create_request(*args))
                .await?
                .into_inner();
            print(&info, output);
        }
        TriggerCommand::Get { name, output } => {
            let info = client
                .get_trigger(GetTriggerRequest { name })
                .await?
                .into_inner();
            print(&info, output);
        }
        TriggerCommand::List { output } => {
            let list = client
                .list_triggers(ListTriggersRequest {})
                .await?
                .into_inner()
                .triggers;
            match output {
                Output::Json => {
                    let values: Vec<Value> = list.iter().map(trigger_json).collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&values).unwrap_or_default()
                    );
                }
                Output::Text => {
                    println!("{:<24} {:<8} {:<24} SOURCE", "NAME", "ENABLED", "FUNCTION");
                    for info in &list {
                        let config = info.config.clone().unwrap_or_default();
                        println!(
                            "{:<24} {:<8} {:<24} {}",
                            config.name,
                            if config.disabled { "no" } else { "yes" },
                            config.function,
                            source_summary(info)
                        );
                    }
                }
            }
        }
        TriggerCommand::Enable { name } => {
            let info = client
                .set_trigger_enabled(SetTriggerEnabledRequest {
                    name,
                    enabled: true,
                })
                .await?
                .into_inner();
            print(&info, Output::Text);
        }
        TriggerCommand::Disable { name } => {
            let info = client
                .set_trigger_enabled(SetTriggerEnabledRequest {
                    name,
                    enabled: false,
                })
                .await?
                .into_inner();
            print(&info, Output::Text);
        }
        TriggerCommand::Delete { name } => {
            client
                .delete_trigger(DeleteTriggerRequest { name: name.clone() })
                .await?;
            println!("deleted trigger {name}");
        }
    }
    Ok(())
}
