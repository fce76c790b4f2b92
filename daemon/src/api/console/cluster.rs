//! The cluster page: kumod's status and its agents (state, instances,
//! memory, running invocations) with drain and undrain.

use hyper::{Response, StatusCode};
use kumo_proto::control::control_server::Control;
use kumo_proto::control::{DrainAgentRequest, GetStatusRequest, UndrainAgentRequest};

use super::html::{self, csrf_field, esc, page, Body};
use super::{redirect_notice, status_message, Call};

/// `GET /console/cluster`.
pub(super) async fn page_of(call: &Call<'_>) -> Response<Body> {
    let status = match call
        .control()
        .get_status(tonic::Request::new(GetStatusRequest {}))
        .await
    {
        Ok(status) => status.into_inner(),
        Err(status) => {
            return html::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(call.csrf()),
                &status_message(&status),
            )
        }
    };
    let csrf = csrf_field(call.csrf());
    let rows: Vec<Vec<String>> = status
        .agents
        .iter()
        .map(|a| {
            let (action, label) = if a.state == "draining" || a.state == "drained" {
                ("undrain", "Undrain")
            } else {
                ("drain", "Drain")
            };
            vec![
                esc(&a.agent_id),
                esc(&a.hostname),
                esc(&a.state),
                format!("{} / {}", a.instances, a.max_instances),
                format!("{} / {} MB", a.memory_reserved_mb, a.allocatable_memory_mb),
                a.running_invocations.to_string(),
                a.invocations_total.to_string(),
                format!("{:.1} s ago", a.last_seen_seconds_ago),
                format!(
                    "<form method=\"post\" action=\"/console/cluster/{action}\">{csrf}\
                     <input type=\"hidden\" name=\"agent\" value=\"{}\"><button type=\"submit\">{label}</button></form>",
                    esc(&a.agent_id)
                ),
            ]
        })
        .collect();
    let body = format!(
        "<dl id=\"status\"><dt>kumod</dt><dd>{} (up {:.0} s, since {})</dd><dt>Functions</dt><dd>{}</dd>\
         <dt>Triggers</dt><dd>{}</dd><dt>Running</dt><dd>{} of {}</dd></dl><h2>Agents</h2>{}",
        esc(&status.daemon_version),
        status.uptime_seconds,
        esc(&status.started_at),
        status.functions,
        status.triggers,
        status.running_invocations,
        status.concurrency_limit,
        html::table(
            "agents",
            &["Agent", "Host", "State", "Instances", "Memory", "Running", "Invocations", "Last seen", ""],
            &rows
        )
    );
    html::html(page(
        "Cluster",
        Some(call.csrf()),
        call.notice().as_deref(),
        &body,
    ))
}

/// `POST /console/cluster/drain` or `/undrain`.
pub(super) async fn change(call: &Call<'_>, action: &str) -> Response<Body> {
    let agent_id = call.arg("agent").to_string();
    let result = if action == "drain" {
        call.control()
            .drain_agent(tonic::Request::new(DrainAgentRequest {
                agent_id: agent_id.clone(),
                wait_seconds: 0,
            }))
            .await
    } else {
        call.control()
            .undrain_agent(tonic::Request::new(UndrainAgentRequest {
                agent_id: agent_id.clone(),
            }))
            .await
    };
    let notice = match result {
        Ok(agent) => format!("Agent {agent_id} is {}.", agent.into_inner().state),
        Err(status) => status_message(&status),
    };
    redirect_notice(call, "/console/cluster", &notice)
}
