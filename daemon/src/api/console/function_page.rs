//! A function's page: configuration (memory, timeout, environment,
//! concurrency, retries), code, triggers, then the versions, aliases and
//! dead letters ([`super::versions`]) and a small invocation graph.

use std::collections::HashMap;

use hyper::Response;
use kumo_proto::control::control_server::Control;
use kumo_proto::control::trigger_config::Source;
use kumo_proto::control::{
    FunctionInfo, ListTriggersRequest, UpdateFunctionCodeRequest,
    UpdateFunctionConfigurationRequest,
};

use super::functions::{number, package_of};
use super::html::{self, csrf_field, esc, page, url, Body};
use super::{get_function, redirect_notice, status_message, versions, Call};

/// `GET /console/fn/{name}`.
pub(super) async fn show(call: &Call<'_>, name: &str) -> Response<Body> {
    let info = match get_function(call, name).await {
        Ok(info) => info,
        Err(response) => return response,
    };
    let base = format!("/console/fn/{}", url(name));
    let mut body = format!(
        "<p class=\"actions\"><a id=\"test-link\" href=\"{base}/test\">Test</a> \
         <a id=\"logs-link\" href=\"{base}/logs\">Logs</a> <a id=\"graphs-link\" href=\"{base}/graphs\">Graphs</a></p>\
         <section id=\"summary\">{}</section>",
        summary(&info)
    );
    body.push_str(&super::graphs::invocations_svg(call, name));
    body.push_str(&config_form(call, &info, &base));
    body.push_str(&code_form(call, &info, &base).await);
    body.push_str(&triggers(call, name).await);
    body.push_str(&versions::section(call, name, &base).await);
    body.push_str(&versions::dead_letter_section(call, name, &base).await);
    html::html(page(
        name,
        Some(call.csrf()),
        call.notice().as_deref(),
        &body,
    ))
}

fn summary(info: &FunctionInfo) -> String {
    let config = info.config.clone().unwrap_or_default();
    let queue = info.queue.unwrap_or_default();
    let mut out = format!(
        "<dl><dt>ARN</dt><dd>{}</dd><dt>Runtime</dt><dd>{}</dd><dt>Handler</dt><dd>{}</dd>\
         <dt>Memory</dt><dd id=\"memory-value\">{} MB</dd><dt>Timeout</dt><dd>{} s</dd>\
         <dt>Code</dt><dd>{} bytes, sha256 {}</dd><dt>Last modified</dt><dd>{}</dd>\
         <dt>Async queue</dt><dd>{} queued, {} in flight, {} dead letters</dd></dl>",
        esc(&info.function_arn),
        esc(&config.runtime),
        esc(&config.handler),
        config.memory_mb.unwrap_or_default(),
        config.timeout_seconds.unwrap_or_default(),
        info.code_size,
        esc(&info.code_sha256),
        esc(&info.last_modified),
        queue.queued,
        queue.in_flight,
        queue.dead_letters,
    );
    if !info.runtime_warning.is_empty() {
        out.push_str(&format!(
            "<p class=\"notice\">{}</p>",
            esc(&info.runtime_warning)
        ));
    }
    out
}

fn config_form(call: &Call<'_>, info: &FunctionInfo, base: &str) -> String {
    let config = info.config.clone().unwrap_or_default();
    let mut env: Vec<_> = config.environment.iter().collect();
    env.sort();
    let env: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let opt = |v: Option<String>| esc(&v.unwrap_or_default());
    format!(
        "<h2>Configuration</h2><form method=\"post\" action=\"{base}/config\" class=\"card\" id=\"config-form\">{}\
         <input type=\"hidden\" name=\"revision\" value=\"{}\">\
         <label>Description <input name=\"description\" value=\"{}\"></label>\
         <label>Memory (MB) <input name=\"memory_mb\" id=\"config-memory\" value=\"{}\"></label>\
         <label>Timeout (s) <input name=\"timeout_seconds\" id=\"config-timeout\" value=\"{}\"></label>\
         <label>Reserved concurrency (blank: none) <input name=\"reserved_concurrency\" value=\"{}\"></label>\
         <label>Async retry attempts <input name=\"max_retry_attempts\" id=\"config-retries\" value=\"{}\"></label>\
         <label>Max event age (s) <input name=\"max_event_age_seconds\" value=\"{}\"></label>\
         <label>Environment (KEY=value per line) <textarea name=\"environment\" id=\"config-env\" rows=\"4\">{}</textarea></label>\
         <button type=\"submit\" id=\"save-config\">Save configuration</button></form>",
        csrf_field(call.csrf()),
        esc(&info.revision.to_string()),
        esc(&config.description),
        opt(config.memory_mb.map(|v| v.to_string())),
        opt(config.timeout_seconds.map(|v| v.to_string())),
        opt(config.reserved_concurrency.map(|v| v.to_string())),
        opt(config.max_retry_attempts.map(|v| v.to_string())),
        opt(config.max_event_age_seconds.map(|v| v.to_string())),
        esc(&env),
    )
}

/// Largest single file shown for editing in the page.
const EDITABLE_BYTES: usize = 64 * 1024;

/// The package's only file and its text, when it is one small UTF-8 file
/// (a function small enough to edit in the browser).
fn single_file(zip: &[u8]) -> Option<(String, String)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).ok()?;
    let files: Vec<usize> = (0..archive.len())
        .filter(|&i| archive.by_index(i).is_ok_and(|f| f.is_file()))
        .collect();
    let [only] = files.as_slice() else {
        return None;
    };
    let mut file = archive.by_index(*only).ok()?;
    if file.size() > EDITABLE_BYTES as u64 {
        return None;
    }
    let name = file.name().ok()?.to_string();
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(&mut file, EDITABLE_BYTES as u64),
        &mut text,
    )
    .ok()?;
    Some((name, text))
}

async fn code_form(call: &Call<'_>, info: &FunctionInfo, base: &str) -> String {
    let packages = call.console.functions.clone();
    let digest = info.package_digest.clone();
    let current = tokio::task::spawn_blocking(move || packages.packages().get(&digest).ok())
        .await
        .ok()
        .flatten()
        .and_then(|zip| single_file(&zip));
    let (file_name, source, hint) = match current {
        Some((name, text)) => (name, text, "or edit its only file:"),
        None => (
            "lambda_function.py".to_string(),
            String::new(),
            "or replace it with a single file:",
        ),
    };
    format!(
        "<h2>Code</h2><form method=\"post\" action=\"{base}/code\" class=\"card\" data-zip-upload id=\"code-form\">{}\
         <label>Upload a .zip <input type=\"file\" accept=\".zip\"></label><input type=\"hidden\" name=\"zip_b64\">\
         <p>{hint}</p>\
         <label>File name <input name=\"file_name\" id=\"code-file-name\" value=\"{}\"></label>\
         <textarea name=\"source\" id=\"code-source\" rows=\"10\" spellcheck=\"false\">{}</textarea>\
         <button type=\"submit\" id=\"deploy-code\">Deploy code</button></form>",
        csrf_field(call.csrf()),
        esc(&file_name),
        esc(&source),
    )
}

async fn triggers(call: &Call<'_>, name: &str) -> String {
    let listed = call
        .control()
        .list_triggers(tonic::Request::new(ListTriggersRequest {}))
        .await;
    let triggers = match listed {
        Ok(list) => list.into_inner().triggers,
        Err(status) => {
            return format!(
                "<h2>Triggers</h2><p class=\"notice\">{}</p>",
                esc(&status_message(&status))
            )
        }
    };
    let rows: Vec<Vec<String>> = triggers
        .iter()
        .filter_map(|t| t.config.as_ref().map(|c| (t, c)))
        .filter(|(_, c)| c.function == name)
        .map(|(t, c)| {
            let source = c.source.as_ref().map(describe).unwrap_or_default();
            let detail = if t.url_path.is_empty() {
                t.next_fires.join(", ")
            } else {
                t.url_path.clone()
            };
            vec![
                esc(&c.name),
                esc(&source),
                if c.disabled {
                    "disabled".into()
                } else {
                    "enabled".into()
                },
                esc(&detail),
                t.fired.to_string(),
            ]
        })
        .collect();
    format!(
        "<h2>Triggers</h2>{}<p class=\"hint\">Create triggers with <code>kumo trigger create</code>.</p>",
        html::table("triggers", &["Name", "Source", "State", "Next fires / URL", "Fired"], &rows)
    )
}

/// A trigger's source in one line.
fn describe(source: &Source) -> String {
    match source {
        Source::Schedule(s) => format!("schedule {}", s.expression),
        Source::Bucket(b) => format!(
            "bucket {} ({}) prefix {:?} suffix {:?}",
            b.bucket,
            b.events.join(", "),
            b.prefix,
            b.suffix
        ),
        Source::Http(h) => format!("HTTP {} {}", h.methods.join(","), h.path),
        Source::Sqs(q) => format!(
            "SQS {} (batch {}, window {} s{})",
            if q.queue_arn.is_empty() {
                &q.queue
            } else {
                &q.queue_arn
            },
            q.batch_size,
            q.batch_window_seconds,
            if q.fifo { ", FIFO" } else { "" }
        ),
        Source::Sns(t) => format!("SNS {}", t.topic_arn),
    }
}

/// `KEY=value` lines into a map; a line without `=` is an error.
fn environment(text: &str) -> Result<HashMap<String, String>, String> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            line.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| format!("environment line {line:?} has no '='"))
        })
        .collect()
}

/// `POST /console/fn/{name}/config`.
pub(super) async fn update_config(call: &Call<'_>, name: &str) -> Response<Body> {
    let base = format!("/console/fn/{}", url(name));
    let request = (|| -> Result<UpdateFunctionConfigurationRequest, String> {
        let reserved: Option<i32> = number(call, "reserved_concurrency")?;
        Ok(UpdateFunctionConfigurationRequest {
            name: name.to_string(),
            description: Some(call.arg("description").to_string()),
            memory_mb: number(call, "memory_mb")?,
            timeout_seconds: number(call, "timeout_seconds")?,
            max_retry_attempts: number(call, "max_retry_attempts")?,
            max_event_age_seconds: number(call, "max_event_age_seconds")?,
            reserved_concurrency: reserved,
            clear_reserved_concurrency: reserved.is_none(),
            set_environment: true,
            environment: environment(call.arg("environment"))?,
            ..UpdateFunctionConfigurationRequest::default()
        })
    })();
    let request = match request {
        Ok(request) => request,
        Err(message) => return redirect_notice(call, &base, &message),
    };
    match call
        .control()
        .update_function_configuration(tonic::Request::new(request))
        .await
    {
        Ok(_) => redirect_notice(call, &base, "Configuration saved."),
        Err(status) => redirect_notice(call, &base, &status_message(&status)),
    }
}

/// `POST /console/fn/{name}/code`.
pub(super) async fn update_code(call: &Call<'_>, name: &str) -> Response<Body> {
    let base = format!("/console/fn/{}", url(name));
    let zip = match package_of(call) {
        Ok(zip) => zip,
        Err(message) => return redirect_notice(call, &base, &message),
    };
    let updated = call
        .control()
        .update_function_code(tonic::Request::new(UpdateFunctionCodeRequest {
            name: name.to_string(),
            zip,
            code_s3: None,
            expect_revision_id: String::new(),
        }))
        .await;
    match updated {
        Ok(_) => redirect_notice(call, &base, "Code deployed."),
        Err(status) => redirect_notice(call, &base, &status_message(&status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_small_file_is_editable() {
        let zip = super::super::functions::single_file_zip("app.py", "print('<hi>')\n").unwrap();
        assert_eq!(
            single_file(&zip),
            Some(("app.py".to_string(), "print('<hi>')\n".to_string()))
        );
        assert_eq!(single_file(b"not a zip"), None);
        let big = super::super::functions::single_file_zip("a.py", &"x".repeat(EDITABLE_BYTES + 1))
            .unwrap();
        assert_eq!(single_file(&big), None);
    }

    #[test]
    fn environment_lines() {
        let env = environment("A=1\n\nB = x=y\n").unwrap();
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], " x=y");
        assert!(environment("nope").unwrap_err().contains("nope"));
    }
}
