//! The Test tab: invoke a function with a JSON event typed in the page or
//! taken from the built-in templates of the events Kumo delivers
//! (docs/wire-formats.md §5a–5d, §9, §10), and show the result or error
//! document, the REPORT figures and the log tail as Lambda's console does.

use hyper::Response;
use kumo_proto::control::control_server::Control;
use kumo_proto::control::{InvocationType, InvokeRequest, InvokeResponse};

use super::html::{self, csrf_field, esc, url, Body};
use super::saved_events::script_json;
use super::{get_function, status_message, Call};

/// The templates, keyed by id.
const TEMPLATES: &str = include_str!("templates.json");
/// Each template's id and label, in menu order.
const TEMPLATE_LABELS: &[(&str, &str)] = &[
    ("s3-put", "S3 put"),
    ("minio-webhook", "MinIO webhook"),
    ("scheduled-event", "Scheduled Event"),
    ("apigateway-v1", "API Gateway v1 (REST)"),
    ("apigateway-v2", "API Gateway v2 (HTTP)"),
    ("sqs", "SQS"),
    ("sns", "SNS"),
];

/// The REPORT line's figures: (label, value) pairs.
pub(super) fn report_fields(log: &str) -> Vec<(String, String)> {
    let Some(line) = log.lines().rev().find(|l| l.starts_with("REPORT ")) else {
        return Vec::new();
    };
    line.trim_start_matches("REPORT ")
        .split('\t')
        .filter_map(|field| field.split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The invocation's log text: Lambda's `LogResult` is base64, the control
/// API's log tail may be plain.
fn log_text(tail: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(tail.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|text| text.contains("RequestId"))
        .unwrap_or_else(|| tail.to_string())
}

fn result_section(answer: &InvokeResponse) -> String {
    let payload = String::from_utf8_lossy(&answer.payload);
    let pretty = serde_json::from_str::<serde_json::Value>(&payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| payload.into_owned());
    let log = log_text(&answer.log_tail);
    let report: String = report_fields(&log)
        .iter()
        .map(|(k, v)| format!("<dt>{}</dt><dd>{}</dd>", esc(k), esc(v)))
        .collect();
    let (class, heading) = if !answer.function_error.is_empty() {
        (
            "failed",
            format!("Execution result: failed ({})", answer.error_type),
        )
    } else if answer.status_code == 202 {
        ("queued", "Queued (asynchronous invocation)".to_string())
    } else {
        ("succeeded", "Execution result: succeeded".to_string())
    };
    format!(
        "<section id=\"result\" class=\"{class}\"><h2 id=\"result-status\">{}</h2>\
         <p>Request id <code id=\"request-id\">{}</code>, version {}, status {}</p>\
         <h3>{}</h3><pre id=\"result-payload\">{}</pre>\
         <h3>Summary</h3><dl id=\"report\">{report}</dl>\
         <h3>Log output</h3><pre id=\"log-tail\">{}</pre></section>",
        esc(&heading),
        esc(&answer.request_id),
        esc(&answer.executed_version),
        answer.status_code,
        if answer.function_error.is_empty() {
            "Response"
        } else {
            "Error document"
        },
        esc(&pretty),
        esc(&log),
    )
}

/// `GET /console/fn/{name}/test` (and the page after an invoke, with its
/// `result` section).
pub(super) async fn page(
    call: &Call<'_>,
    name: &str,
    result: Option<String>,
    notice: Option<&str>,
) -> Response<Body> {
    if let Err(response) = get_function(call, name).await {
        return response;
    }
    let events = call.console.test_events.clone();
    let function = name.to_string();
    let saved = tokio::task::spawn_blocking(move || events.list(&function))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let (saved, saved_error) = match saved {
        Ok(saved) => (saved, None),
        Err(message) => (Vec::new(), Some(message)),
    };
    let saved_options: String = saved
        .iter()
        .map(|e| format!("<option value=\"{0}\">{0}</option>", esc(&e.name)))
        .collect();
    let saved_json = script_json(&serde_json::Value::Object(
        saved
            .iter()
            .map(|e| (e.name.clone(), serde_json::Value::String(e.event.clone())))
            .collect(),
    ));
    let notice = notice.map(str::to_string).or(saved_error);
    let options: String = TEMPLATE_LABELS
        .iter()
        .map(|(id, label)| format!("<option value=\"{id}\">{label}</option>"))
        .collect();
    let event = call.arg("event");
    let event = if event.is_empty() {
        "{\n  \"key\": \"value\"\n}"
    } else {
        event
    };
    let event_type = call.arg("invocation_type");
    let body = format!(
        "<p class=\"actions\"><a href=\"/console/fn/{u}\">Back to {n}</a> <a href=\"/console/fn/{u}/logs\">Logs</a></p>\
         {result}<script type=\"application/json\" id=\"templates\">{templates}</script>\
         <script type=\"application/json\" id=\"saved-events\">{saved_json}</script>\
         <form method=\"post\" action=\"/console/fn/{u}/test\" class=\"card\" id=\"test-form\">{csrf}\
         <label>Template <select id=\"template\"><option value=\"\">(choose an event template)</option>{options}</select></label>\
         <label>Saved event <select id=\"saved\" name=\"saved\"><option value=\"\">(choose a saved event)</option>{saved_options}</select></label>\
         <label>Event JSON <textarea name=\"event\" id=\"event\" rows=\"14\" spellcheck=\"false\">{event}</textarea></label>\
         <label>Qualifier (version or alias) <input name=\"qualifier\" id=\"qualifier\" value=\"{q}\"></label>\
         <label>Invocation <select name=\"invocation_type\" id=\"invocation-type\">\
         <option value=\"RequestResponse\">RequestResponse (wait for the result)</option>\
         <option value=\"Event\"{ev}>Event (asynchronous)</option></select></label>\
         <button type=\"submit\" id=\"invoke\" name=\"action\" value=\"invoke\">Test</button>\
         <label>Save this event as <input name=\"save_as\" id=\"save-as\" placeholder=\"name (letters, digits, - _)\"></label>\
         <p><button type=\"submit\" id=\"save-event\" name=\"action\" value=\"save\">Save event</button> \
         <button type=\"submit\" id=\"delete-event\" name=\"action\" value=\"delete\">Delete the chosen saved event</button></p></form>",
        u = url(name),
        n = esc(name),
        templates = script_json(&serde_json::from_str(TEMPLATES).unwrap_or_default()),
        csrf = csrf_field(call.csrf()),
        event = esc(event),
        q = esc(call.arg("qualifier")),
        ev = if event_type == "Event" { " selected" } else { "" },
        result = result.unwrap_or_default(),
    );
    html::html(html::page(
        &format!("Test {name}"),
        Some(call.csrf()),
        notice.as_deref(),
        &body,
    ))
}

/// `POST /console/fn/{name}/test`: invokes through the control service.
pub(super) async fn invoke(call: &Call<'_>, name: &str) -> Response<Body> {
    let invocation_type = if call.arg("invocation_type") == "Event" {
        InvocationType::Event
    } else {
        InvocationType::RequestResponse
    };
    let answer = call
        .control()
        .invoke(tonic::Request::new(InvokeRequest {
            function_name: name.to_string(),
            qualifier: call.arg("qualifier").trim().to_string(),
            payload: call.arg("event").as_bytes().to_vec(),
            invocation_type: invocation_type as i32,
            log_tail: true,
            client_context: String::new(),
        }))
        .await;
    let result = match answer {
        Ok(answer) => result_section(&answer.into_inner()),
        Err(status) => format!(
            "<section id=\"result\" class=\"failed\"><h2 id=\"result-status\">Invoke refused</h2>\
             <pre id=\"result-payload\">{}</pre></section>",
            esc(&status_message(&status))
        ),
    };
    page(call, name, Some(result), None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_figures_and_templates() {
        let log = "START RequestId: a Version: $LATEST\nhi\nEND RequestId: a\n\
                   REPORT RequestId: a\tDuration: 3.01 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\tMax Memory Used: 36 MB\t\n";
        let fields = report_fields(log);
        assert_eq!(fields[1], ("Duration".to_string(), "3.01 ms".to_string()));
        assert_eq!(fields[3], ("Memory Size".to_string(), "128 MB".to_string()));
        assert!(report_fields("no report").is_empty());
        let templates: serde_json::Value = serde_json::from_str(TEMPLATES).unwrap();
        for (id, _) in TEMPLATE_LABELS {
            assert!(templates[id].is_object(), "{id}");
        }
        assert_eq!(templates["s3-put"]["Records"][0]["eventSource"], "aws:s3");
        assert_eq!(
            templates["scheduled-event"]["detail-type"],
            "Scheduled Event"
        );
    }
}
