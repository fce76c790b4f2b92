//! Lambda's SQS event (docs/wire-formats.md §9): the record of each
//! message, the view filter patterns see, and the reading of the
//! function's `batchItemFailures` answer.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::broker::Received;

/// Lambda's record of one message.
pub fn record(message: &Received, queue_arn: &str, region: &str) -> Value {
    json!({
        "messageId": message.id,
        "receiptHandle": message.receipt,
        "body": message.body,
        "attributes": message.attributes,
        "messageAttributes": message.message_attributes,
        "md5OfBody": message.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    })
}

/// What filter patterns match against: the record with a JSON body
/// parsed (a body that is not JSON stays a string).
pub fn filter_view(record: &Value) -> Value {
    let mut view = record.clone();
    if let Some(body) = record["body"].as_str() {
        if let Ok(parsed) = serde_json::from_str::<Value>(body) {
            view["body"] = parsed;
        }
    }
    view
}

/// `{"Records":[…]}` as bytes.
pub fn event(records: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "Records": records })).unwrap_or_default()
}

/// The function's answer read as `batchItemFailures`: the ids that stay
/// in the queue. `Err` = the whole batch failed (an identifier not in the
/// batch, or a malformed answer), with the reason.
pub fn failed_items(payload: &[u8], batch: &[Received]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(payload).map_err(|_| "the answer is not UTF-8".to_string())?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let failures = match &value {
        Value::Null => return Ok(Vec::new()),
        Value::Object(o) => match o.get("batchItemFailures") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err("batchItemFailures is not a list".into()),
        },
        _ => return Err("the answer is neither an object nor null".into()),
    };
    let ids: HashSet<&str> = batch.iter().map(|m| m.id.as_str()).collect();
    let mut failed = Vec::with_capacity(failures.len());
    for item in failures {
        match item.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if ids.contains(id) => failed.push(id.to_string()),
            Some(id) => return Err(format!("itemIdentifier {id:?} is not in the batch")),
            None => return Err(format!("{item} has no string itemIdentifier")),
        }
    }
    Ok(failed)
}

/// The messages to keep given the failed ids: on a FIFO queue, a failed
/// message also keeps every later message of its group (order holds).
pub fn kept(batch: &[Received], failed: &[String], fifo: bool) -> HashSet<String> {
    let mut kept: HashSet<String> = failed.iter().cloned().collect();
    if fifo {
        let mut stopped: HashSet<&str> = HashSet::new();
        for message in batch {
            let group = message.group.as_deref().unwrap_or("");
            if stopped.contains(group) || kept.contains(&message.id) {
                stopped.insert(group);
                kept.insert(message.id.clone());
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn message(id: &str, group: Option<&str>, body: &str) -> Received {
        Received {
            id: id.into(),
            receipt: format!("r-{id}"),
            body: body.into(),
            md5_of_body: String::new(),
            attributes: Map::new(),
            message_attributes: Map::new(),
            group: group.map(str::to_string),
        }
    }

    #[test]
    fn answers_follow_lambda() {
        let batch = [message("a", None, "1"), message("b", None, "2")];
        for ok in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":null}"#,
            r#"{"batchItemFailures":[]}"#,
        ] {
            assert_eq!(failed_items(ok.as_bytes(), &batch), Ok(vec![]), "{ok}");
        }
        assert_eq!(
            failed_items(br#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#, &batch),
            Ok(vec!["b".to_string()])
        );
        for bad in [
            r#"{"batchItemFailures":[{"itemIdentifier":"zzz"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"id":"a"}]}"#,
            r#"{"batchItemFailures":"a"}"#,
            r#""done""#,
            "not json",
        ] {
            assert!(failed_items(bad.as_bytes(), &batch).is_err(), "{bad}");
        }
    }

    #[test]
    fn fifo_keeps_the_rest_of_a_failed_group() {
        let batch = [
            message("1", Some("g"), ""),
            message("2", Some("h"), ""),
            message("3", Some("g"), ""),
            message("4", Some("h"), ""),
        ];
        let kept_fifo = kept(&batch, &["1".to_string()], true);
        assert_eq!(kept_fifo.len(), 2);
        assert!(kept_fifo.contains("1") && kept_fifo.contains("3"));
        assert_eq!(kept(&batch, &["1".to_string()], false).len(), 1);
    }

    #[test]
    fn filters_see_parsed_bodies_and_plain_strings() {
        let json_body = record(&message("a", None, r#"{"k":1}"#), "arn", "r");
        assert_eq!(filter_view(&json_body)["body"]["k"], 1);
        let text = record(&message("a", None, "hello"), "arn", "r");
        assert_eq!(filter_view(&text)["body"], "hello");
        assert_eq!(text["body"], "hello");
        assert_eq!(text["eventSource"], "aws:sqs");
    }
}
