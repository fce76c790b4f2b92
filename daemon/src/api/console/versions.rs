//! Versions (publish), aliases (create or move, with an optional weighted
//! second version) and dead letters (view, replay, purge) of a function.

use hyper::Response;
use kumo_proto::control::control_server::Control;
use kumo_proto::control::{
    AliasConfig, GetAliasRequest, ListAliasesRequest, ListDeadLettersRequest, ListVersionsRequest,
    PublishVersionRequest, PurgeDeadLettersRequest, ReplayDeadLettersRequest,
};

use super::functions::number;
use super::html::{self, csrf_field, esc, url, Body};
use super::{redirect_notice, status_message, Call};

/// The versions and aliases section of a function's page.
pub(super) async fn section(call: &Call<'_>, name: &str, base: &str) -> String {
    let csrf = csrf_field(call.csrf());
    let versions = call
        .control()
        .list_versions(tonic::Request::new(ListVersionsRequest {
            function_name: name.to_string(),
        }))
        .await
        .map(|r| r.into_inner().versions);
    let aliases = call
        .control()
        .list_aliases(tonic::Request::new(ListAliasesRequest {
            function_name: name.to_string(),
        }))
        .await
        .map(|r| r.into_inner().aliases);
    let versions = match versions {
        Ok(list) => html::table(
            "versions",
            &["Version", "Description", "Code sha256", "Created"],
            &list
                .iter()
                .map(|v| {
                    vec![
                        esc(&v.version),
                        esc(&v.description),
                        esc(&v.code_sha256),
                        esc(&v.created_at),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
        Err(status) => format!("<p class=\"notice\">{}</p>", esc(&status_message(&status))),
    };
    let aliases = match aliases {
        Ok(list) => html::table(
            "aliases",
            &["Alias", "Version", "Extra version", "Extra weight"],
            &list
                .iter()
                .filter_map(|a| a.config.as_ref())
                .map(|a| {
                    vec![
                        esc(&a.name),
                        esc(&a.version),
                        esc(&a.extra_version),
                        if a.extra_version.is_empty() {
                            String::new()
                        } else {
                            format!("{:.2}", a.extra_weight)
                        },
                    ]
                })
                .collect::<Vec<_>>(),
        ),
        Err(status) => format!("<p class=\"notice\">{}</p>", esc(&status_message(&status))),
    };
    format!(
        "<h2>Versions</h2>{versions}<form method=\"post\" action=\"{base}/publish\" class=\"inline-form\">{csrf}\
         <input name=\"description\" id=\"version-description\" placeholder=\"Description\">\
         <button type=\"submit\" id=\"publish\">Publish new version</button></form>\
         <h2>Aliases</h2>{aliases}<form method=\"post\" action=\"{base}/alias\" class=\"inline-form\" id=\"alias-form\">{csrf}\
         <input name=\"alias\" id=\"alias-name\" placeholder=\"Alias name\" required>\
         <input name=\"version\" id=\"alias-version\" placeholder=\"Version\" required>\
         <input name=\"extra_version\" placeholder=\"Extra version (optional)\">\
         <input name=\"extra_weight\" placeholder=\"Extra weight 0-1\">\
         <button type=\"submit\" id=\"save-alias\">Create or move alias</button></form>"
    )
}

/// `POST /console/fn/{name}/publish`.
pub(super) async fn publish(call: &Call<'_>, name: &str) -> Response<Body> {
    let base = format!("/console/fn/{}", url(name));
    let published = call
        .control()
        .publish_version(tonic::Request::new(PublishVersionRequest {
            function_name: name.to_string(),
            description: call.arg("description").to_string(),
            ..PublishVersionRequest::default()
        }))
        .await;
    match published {
        Ok(v) => redirect_notice(
            call,
            &base,
            &format!("Published version {}.", v.into_inner().version),
        ),
        Err(status) => redirect_notice(call, &base, &status_message(&status)),
    }
}

/// `POST /console/fn/{name}/alias`: creates the alias, or moves it when
/// it exists.
pub(super) async fn set_alias(call: &Call<'_>, name: &str) -> Response<Body> {
    let base = format!("/console/fn/{}", url(name));
    let weight: Option<f64> = match number(call, "extra_weight") {
        Ok(w) => w,
        Err(message) => return redirect_notice(call, &base, &message),
    };
    let alias = AliasConfig {
        function_name: name.to_string(),
        name: call.arg("alias").trim().to_string(),
        version: call.arg("version").trim().to_string(),
        extra_version: call.arg("extra_version").trim().to_string(),
        extra_weight: weight.unwrap_or_default(),
        description: String::new(),
    };
    let exists = call
        .control()
        .get_alias(tonic::Request::new(GetAliasRequest {
            function_name: name.to_string(),
            name: alias.name.clone(),
        }))
        .await
        .is_ok();
    let alias_name = alias.name.clone();
    let version = alias.version.clone();
    let result = if exists {
        call.control()
            .update_alias(tonic::Request::new(alias))
            .await
    } else {
        call.control()
            .create_alias(tonic::Request::new(alias))
            .await
    };
    match result {
        Ok(_) => redirect_notice(
            call,
            &base,
            &format!("Alias {alias_name} points to version {version}."),
        ),
        Err(status) => redirect_notice(call, &base, &status_message(&status)),
    }
}

/// The dead letters section of a function's page.
pub(super) async fn dead_letter_section(call: &Call<'_>, name: &str, base: &str) -> String {
    let csrf = csrf_field(call.csrf());
    let listed = call
        .control()
        .list_dead_letters(tonic::Request::new(ListDeadLettersRequest {
            function_name: name.to_string(),
        }))
        .await;
    let letters = match listed {
        Ok(list) => list.into_inner().dead_letters,
        Err(status) => {
            return format!(
                "<h2>Dead letters</h2><p class=\"notice\">{}</p>",
                esc(&status_message(&status))
            )
        }
    };
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|d| {
            vec![
                esc(&d.id),
                esc(&d.condition),
                esc(&format!("{}: {}", d.error_type, d.error_message)),
                d.attempts.to_string(),
                esc(&d.failed_at),
                format!("<pre>{}</pre>", esc(&String::from_utf8_lossy(&d.payload))),
                format!(
                    "<form method=\"post\" action=\"{base}/dlq/replay\">{csrf}<input type=\"hidden\" name=\"id\" value=\"{}\">\
                     <button type=\"submit\" class=\"replay\">Replay</button></form>",
                    esc(&d.id)
                ),
            ]
        })
        .collect();
    format!(
        "<h2>Dead letters</h2>{}<form method=\"post\" action=\"{base}/dlq/purge\" class=\"inline-form\">{csrf}\
         <button type=\"submit\" id=\"purge\">Purge all</button></form>",
        html::table(
            "dead-letters",
            &["Id", "Condition", "Error", "Attempts", "Failed at", "Event", ""],
            &rows
        )
    )
}

/// `POST /console/fn/{name}/dlq/replay` or `/purge`.
pub(super) async fn dead_letters(call: &Call<'_>, name: &str, action: &str) -> Response<Body> {
    let base = format!("/console/fn/{}", url(name));
    let function_name = name.to_string();
    let notice = if action == "replay" {
        let id = call.arg("id").to_string();
        call.control()
            .replay_dead_letters(tonic::Request::new(ReplayDeadLettersRequest {
                function_name,
                all: id.is_empty(),
                ids: if id.is_empty() { Vec::new() } else { vec![id] },
            }))
            .await
            .map(|r| format!("Replayed {} event(s).", r.into_inner().event_ids.len()))
    } else {
        call.control()
            .purge_dead_letters(tonic::Request::new(PurgeDeadLettersRequest {
                function_name,
            }))
            .await
            .map(|r| format!("Purged {} dead letter(s).", r.into_inner().purged))
    };
    redirect_notice(call, &base, &notice.unwrap_or_else(|s| status_message(&s)))
}
