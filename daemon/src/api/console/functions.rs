//! The functions list (with search and last-hour counts) and creating a
//! function from an uploaded zip or a single file typed in the browser.

use std::io::Write;

use hyper::{Response, StatusCode};
use kumo_proto::control::control_server::Control;
use kumo_proto::control::{CreateFunctionRequest, FunctionConfig, ListFunctionsRequest};

use super::html::{self, csrf_field, esc, page, url, Body};
use super::{redirect_notice, status_message, Call};

/// `GET /console/`: every function matching `q`.
pub(super) async fn list(call: &Call<'_>) -> Response<Body> {
    let listed = call
        .control()
        .list_functions(tonic::Request::new(ListFunctionsRequest {}))
        .await;
    let functions = match listed {
        Ok(list) => list.into_inner().functions,
        Err(status) => {
            return html::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(call.csrf()),
                &status_message(&status),
            )
        }
    };
    let search = call.arg("q").to_string();
    let now = chrono::Utc::now().timestamp_millis();
    let rows: Vec<Vec<String>> = functions
        .iter()
        .filter_map(|info| info.config.as_ref().map(|c| (info, c)))
        .filter(|(_, c)| c.name.to_lowercase().contains(&search.to_lowercase()))
        .map(|(info, c)| {
            let (invocations, errors) = call.console.series.last_hour(&c.name, now);
            vec![
                format!(
                    "<a href=\"/console/fn/{}\">{}</a>",
                    url(&c.name),
                    esc(&c.name)
                ),
                esc(&c.runtime),
                c.memory_mb.map(|m| format!("{m} MB")).unwrap_or_default(),
                c.timeout_seconds
                    .map(|t| format!("{t} s"))
                    .unwrap_or_default(),
                esc(&info.last_modified),
                invocations.to_string(),
                errors.to_string(),
            ]
        })
        .collect();
    let body = format!(
        "<form method=\"get\" action=\"/console/\" class=\"search\"><input type=\"search\" name=\"q\" id=\"search\" \
         value=\"{}\" placeholder=\"Search functions\"><button type=\"submit\">Search</button></form>{}",
        esc(&search),
        html::table(
            "functions",
            &["Name", "Runtime", "Memory", "Timeout", "Last modified", "Invocations (1 h)", "Errors (1 h)"],
            &rows
        )
    );
    html::html(page(
        "Functions",
        Some(call.csrf()),
        call.notice().as_deref(),
        &body,
    ))
}

/// The create form, with `values` kept after a refused attempt.
pub(super) fn new_page(call: &Call<'_>, error: Option<&str>) -> Response<Body> {
    let value = |name: &str, default: &str| {
        let given = call.arg(name);
        esc(if given.is_empty() { default } else { given })
    };
    let body = format!(
        "<form method=\"post\" action=\"/console/new\" class=\"card\" data-zip-upload>{csrf}\
         <label>Name <input name=\"name\" id=\"name\" required value=\"{name}\"></label>\
         <label>Runtime <input name=\"runtime\" id=\"runtime\" value=\"{runtime}\"></label>\
         <label>Handler <input name=\"handler\" id=\"handler\" value=\"{handler}\"></label>\
         <label>Memory (MB) <input name=\"memory_mb\" id=\"memory\" value=\"{memory}\"></label>\
         <label>Timeout (s) <input name=\"timeout_seconds\" id=\"timeout\" value=\"{timeout}\"></label>\
         <fieldset><legend>Code</legend>\
         <label>Upload a .zip <input type=\"file\" id=\"zip-file\" accept=\".zip\"></label>\
         <input type=\"hidden\" name=\"zip_b64\">\
         <p>or write a single file:</p>\
         <label>File name <input name=\"file_name\" id=\"file-name\" value=\"{file_name}\"></label>\
         <textarea name=\"source\" id=\"source\" rows=\"10\" spellcheck=\"false\">{source}</textarea></fieldset>\
         <button type=\"submit\" id=\"create\">Create function</button></form>",
        csrf = csrf_field(call.csrf()),
        name = value("name", ""),
        runtime = value("runtime", "python3"),
        handler = value("handler", "lambda_function.lambda_handler"),
        memory = value("memory_mb", "128"),
        timeout = value("timeout_seconds", "3"),
        file_name = value("file_name", "lambda_function.py"),
        source = value(
            "source",
            "def lambda_handler(event, context):\n    return {\"statusCode\": 200, \"body\": \"hello\"}\n"
        ),
    );
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    html::respond(
        status,
        "text/html; charset=utf-8",
        page("Create function", Some(call.csrf()), error, &body),
    )
}

/// A zip holding one file.
pub(super) fn single_file_zip(file_name: &str, source: &str) -> Result<Vec<u8>, String> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    zip.start_file(file_name, zip::write::SimpleFileOptions::default())
        .and_then(|()| zip.write_all(source.as_bytes()).map_err(Into::into))
        .and_then(|()| zip.finish().map(drop))
        .map_err(|e| format!("packing {file_name}: {e}"))?;
    Ok(out.into_inner())
}

/// The package a code form carries: the uploaded zip (base64 from the
/// page's script) or the typed file.
pub(super) fn package_of(call: &Call<'_>) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let uploaded = call.arg("zip_b64");
    if !uploaded.is_empty() {
        return base64::engine::general_purpose::STANDARD
            .decode(uploaded)
            .map_err(|e| format!("the uploaded zip did not arrive intact: {e}"));
    }
    let file_name = call.arg("file_name").trim();
    if file_name.is_empty() || file_name.contains("..") || file_name.starts_with('/') {
        return Err(
            "give a zip, or a plain file name (like lambda_function.py) for the source".into(),
        );
    }
    single_file_zip(file_name, call.arg("source"))
}

/// A number field: `None` when blank.
pub(super) fn number<T: std::str::FromStr>(
    call: &Call<'_>,
    name: &str,
) -> Result<Option<T>, String> {
    let text = call.arg(name).trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{name}: {text:?} is not a number"))
}

/// `POST /console/new`.
pub(super) async fn create(call: &Call<'_>) -> Response<Body> {
    let config = (|| -> Result<(FunctionConfig, Vec<u8>), String> {
        let config = FunctionConfig {
            name: call.arg("name").trim().to_string(),
            runtime: call.arg("runtime").trim().to_string(),
            handler: call.arg("handler").trim().to_string(),
            memory_mb: number(call, "memory_mb")?,
            timeout_seconds: number(call, "timeout_seconds")?,
            ..FunctionConfig::default()
        };
        Ok((config, package_of(call)?))
    })();
    let (config, zip) = match config {
        Ok(parts) => parts,
        Err(message) => return new_page(call, Some(&message)),
    };
    let name = config.name.clone();
    let created = call
        .control()
        .create_function(tonic::Request::new(CreateFunctionRequest {
            config: Some(config),
            zip,
            code_s3: None,
        }))
        .await;
    match created {
        Ok(_) => redirect_notice(
            call,
            &format!("/console/fn/{}", url(&name)),
            &format!("Created {name}."),
        ),
        Err(status) => new_page(call, Some(&status_message(&status))),
    }
}
