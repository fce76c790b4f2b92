//! `kumo dlq …`: a function's dead-letter queue.

use std::io::Write;

use crate::connect::Client;
use kumo_proto::control::{
    DeadLetter, GetDeadLetterRequest, ListDeadLettersRequest, PurgeDeadLettersRequest,
    ReplayDeadLettersRequest,
};
use serde_json::{json, Value};

use crate::args::{DlqCommand, Output};
use crate::commands::CliError;

/// The JSON shape of a dead letter; the payload and error document are
/// embedded as JSON when they parse, as text otherwise.
pub fn dead_letter_json(letter: &DeadLetter) -> Value {
    let embed = |bytes: &[u8]| {
        serde_json::from_slice::<Value>(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    };
    json!({
        "id": letter.id,
        "function": letter.function_name,
        "qualifier": letter.qualifier,
        "condition": letter.condition,
        "error_type": letter.error_type,
        "error_message": letter.error_message,
        "attempts": letter.attempts,
        "accepted_at": letter.accepted_at,
        "failed_at": letter.failed_at,
        "payload": embed(&letter.payload),
        "response": if letter.response_payload.is_empty() { Value::Null } else { embed(&letter.response_payload) },
    })
}

/// Runs a `kumo dlq` command.
pub async fn run(client: &mut Client, command: DlqCommand) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match command {
        DlqCommand::List { name, output } => {
            let letters = client
                .list_dead_letters(ListDeadLettersRequest {
                    function_name: name,
                })
                .await?
                .into_inner()
                .dead_letters;
            match output {
                Output::Json => {
                    let values: Vec<Value> = letters.iter().map(dead_letter_json).collect();
                    let _ = writeln!(
                        stdout,
                        "{}",
                        serde_json::to_string_pretty(&values).unwrap_or_default()
                    );
                }
                Output::Text => {
                    let _ = writeln!(
                        stdout,
                        "{:<36}  {:<24}  {:<8}  {:<24}  ERROR",
                        "ID", "FAILED", "ATTEMPTS", "CONDITION"
                    );
                    for l in &letters {
                        let _ = writeln!(
                            stdout,
                            "{:<36}  {:<24}  {:<8}  {:<24}  {}: {}",
                            l.id,
                            l.failed_at,
                            l.attempts,
                            l.condition,
                            l.error_type,
                            l.error_message.lines().next().unwrap_or_default()
                        );
                    }
                }
            }
        }
        DlqCommand::Show { name, id } => {
            let letter = client
                .get_dead_letter(GetDeadLetterRequest {
                    function_name: name,
                    id,
                })
                .await?
                .into_inner();
            let text = serde_json::to_string_pretty(&dead_letter_json(&letter)).unwrap_or_default();
            let _ = writeln!(stdout, "{text}");
        }
        DlqCommand::Replay { name, ids, all } => {
            let replayed = client
                .replay_dead_letters(ReplayDeadLettersRequest {
                    function_name: name.clone(),
                    ids,
                    all,
                })
                .await?
                .into_inner()
                .event_ids;
            let _ = writeln!(stdout, "{}", json!({ "replayed": replayed }));
        }
        DlqCommand::Purge { name } => {
            let purged = client
                .purge_dead_letters(PurgeDeadLettersRequest {
                    function_name: name,
                })
                .await?
                .into_inner()
                .purged;
            let _ = writeln!(stdout, "{}", json!({ "purged": purged }));
        }
    }
    Ok(())
}
