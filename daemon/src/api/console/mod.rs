//! The web console at `/console/` on kumod's HTTP listener: server-rendered
//! pages (with a little embedded script) for functions, test invokes,
//! logs with a live tail, graphs and the cluster. Every operation calls
//! the gRPC control service's own methods ([`ControlService`]), so nothing
//! is implemented twice; [`session`] guards every route.

mod cluster;
mod function_page;
mod functions;
mod graphs;
mod html;
mod logs;
mod saved_events;
mod session;
mod test_invoke;
mod versions;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use kumo_proto::control::control_server::Control;

pub(crate) use graphs::sample_gauges;
pub(crate) use html::Body;
pub use session::SessionError;
pub(crate) use session::Sessions;

use crate::api::control::ControlService;
use crate::series::Series;
use html::{error_page, form, redirect, respond};
use session::Session;

/// Path prefix of the console.
pub(crate) const PREFIX: &str = "/console";
/// Largest form body (a base64 zip of the largest package).
const MAX_FORM_BYTES: usize = crate::api::lambda::management::MAX_MANAGEMENT_BODY;

/// What the console serves from.
#[derive(Clone)]
pub(crate) struct Console {
    /// The control API's implementation, called directly.
    pub control: Arc<ControlService>,
    /// Sign-in and sessions.
    pub sessions: Sessions,
    /// Per-function graphs' data.
    pub series: Series,
    /// Functions (for reading a package back into the code editor).
    pub functions: crate::state::functions::Functions,
    /// Saved test events.
    pub test_events: crate::state::test_events::TestEvents,
    /// How long a form body may take to arrive.
    pub body_timeout: Duration,
}

/// Whether `path` belongs to the console.
pub(crate) fn is_console_path(path: &str) -> bool {
    path == PREFIX || path.starts_with("/console/")
}

/// What a handler gets: the signed-in session, the decoded query and (for
/// POST) form.
pub(crate) struct Call<'a> {
    console: &'a Console,
    session: Session,
    query: HashMap<String, String>,
    form: HashMap<String, String>,
    /// The `Last-Event-ID` of a reconnecting live tail.
    last_event_id: Option<String>,
}

impl Call<'_> {
    /// A query or form value, or "".
    fn arg(&self, name: &str) -> &str {
        self.form
            .get(name)
            .or_else(|| self.query.get(name))
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The control service.
    fn control(&self) -> &ControlService {
        &self.console.control
    }

    /// The notice a redirect carried, when this console signed it for
    /// this session.
    fn notice(&self) -> Option<String> {
        let notice = self.query.get("notice")?;
        let signature = self.query.get("sig")?;
        self.console
            .sessions
            .notice_ok(&self.session, notice, signature)
            .then(|| notice.clone())
    }

    /// The session's CSRF token.
    fn csrf(&self) -> &str {
        &self.session.csrf
    }
}

/// A one-line message of a control API error.
fn status_message(status: &tonic::Status) -> String {
    status.message().to_string()
}

/// Redirects to `path` with a notice to show there.
/// The notice travels in the query with a signature, so a link from
/// elsewhere cannot make the console show its text.
fn redirect_notice(call: &Call<'_>, path: &str, notice: &str) -> Response<Body> {
    let signature = call.console.sessions.sign_notice(&call.session, notice);
    redirect(&format!(
        "{path}?notice={}&sig={signature}",
        html::url(notice)
    ))
}

/// The sign-in page with a fresh form nonce (cookie) and CSRF token.
fn login_page(
    console: &Console,
    status: StatusCode,
    message: Option<&str>,
    secure: bool,
) -> Response<Body> {
    let (nonce, csrf) = console.sessions.login_form();
    let page = html::page(
        "Sign in",
        None,
        message,
        &format!(
            "<form method=\"post\" action=\"/console/login\" class=\"card\">{}\
             <label>Control token <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\" required></label>\
             <button type=\"submit\" id=\"sign-in\">Sign in</button>\
             <p class=\"hint\">The operator token from kumod's <code>control.token</code> (as for <code>kumo --token-file</code>).</p></form>",
            html::csrf_field(&csrf)
        ),
    );
    let mut response = respond(status, "text/html; charset=utf-8", page);
    if let Ok(value) = session::login_cookie(&nonce, secure).parse() {
        response
            .headers_mut()
            .insert(hyper::header::SET_COOKIE, value);
    }
    response
}

/// Whether a POST's `Origin` (when the browser sent one) is this host.
fn same_origin(origin: Option<&str>, host: Option<&str>) -> bool {
    match origin {
        None => true,
        Some(origin) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| Some(authority) == host),
    }
}

async fn read_form(
    console: &Console,
    request: Request<Incoming>,
) -> Result<HashMap<String, String>, Response<Body>> {
    let too_large = || {
        error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            &format!("the form is larger than {MAX_FORM_BYTES} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_FORM_BYTES as u64) {
        return Err(too_large());
    }
    let body = Limited::new(request.into_body(), MAX_FORM_BYTES).collect();
    match tokio::time::timeout(console.body_timeout, body).await {
        Ok(Ok(body)) => Ok(form(&String::from_utf8_lossy(&body.to_bytes()))),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(error_page(
            StatusCode::REQUEST_TIMEOUT,
            None,
            "the form was not sent in time",
        )),
    }
}

/// Answers one console request.
pub(crate) async fn handle(console: &Console, request: Request<Incoming>) -> Response<Body> {
    let now = chrono::Utc::now().timestamp();
    let method = request.method().clone();
    let path = request
        .uri()
        .path()
        .strip_prefix(PREFIX)
        .unwrap_or_default()
        .to_string();
    let query = form(request.uri().query().unwrap_or_default());
    let header = |name: hyper::header::HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let secure = header(hyper::header::HeaderName::from_static("x-forwarded-proto")).as_deref()
        == Some("https");
    let cookie = header(hyper::header::COOKIE);
    let last_event_id = header(hyper::header::HeaderName::from_static("last-event-id"));
    if method == Method::POST
        && !same_origin(
            header(hyper::header::ORIGIN).as_deref(),
            header(hyper::header::HOST).as_deref(),
        )
    {
        return error_page(
            StatusCode::FORBIDDEN,
            None,
            "a form from another site was refused",
        );
    }
    match (&method, path.as_str()) {
        (&Method::GET, "/login") => {
            return login_page(
                console,
                StatusCode::OK,
                query.contains_key("signed-out").then_some("Signed out."),
                secure,
            )
        }
        (&Method::POST, "/login") => {
            let form = match read_form(console, request).await {
                Ok(form) => form,
                Err(response) => return response,
            };
            if !console
                .sessions
                .login_csrf_ok(cookie.as_deref(), form.get("csrf").map(String::as_str))
            {
                return login_page(
                    console,
                    StatusCode::FORBIDDEN,
                    Some("The sign-in form expired or came from elsewhere: sign in again."),
                    secure,
                );
            }
            let token = form.get("token").map(String::as_str).unwrap_or_default();
            return match console.sessions.sign_in(token, now) {
                Some(value) => {
                    let mut response = redirect("/console/");
                    if let Ok(v) = session::set_cookie(&value, secure).parse() {
                        response.headers_mut().insert(hyper::header::SET_COOKIE, v);
                    }
                    response
                }
                None => login_page(
                    console,
                    StatusCode::UNAUTHORIZED,
                    Some("That is not a control token."),
                    secure,
                ),
            };
        }
        _ => {}
    }
    let Some(session) = console.sessions.check(cookie.as_deref(), now) else {
        return if method == Method::GET && !path.ends_with("/tail") {
            redirect("/console/login")
        } else {
            respond(
                StatusCode::UNAUTHORIZED,
                "text/plain; charset=utf-8",
                "sign in at /console/login\n",
            )
        };
    };
    let form = if method == Method::POST {
        let form = match read_form(console, request).await {
            Ok(form) => form,
            Err(response) => return response,
        };
        if !Sessions::csrf_ok(&session, form.get("csrf").map(String::as_str)) {
            return error_page(
                StatusCode::FORBIDDEN,
                None,
                "missing or wrong CSRF token: reload the page and try again",
            );
        }
        form
    } else {
        HashMap::new()
    };
    let call = Call {
        console,
        session,
        query,
        form,
        last_event_id,
    };
    route(&call, &method, &path, secure, now).await
}

async fn route(
    call: &Call<'_>,
    method: &Method,
    path: &str,
    secure: bool,
    now: i64,
) -> Response<Body> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let name = segments
        .get(1)
        .map(|s| kumo_triggers::percent::decode_lossy(s, false))
        .unwrap_or_default();
    let get = method == Method::GET;
    let post = method == Method::POST;
    match (segments.as_slice(), get, post) {
        ([""], true, _) => functions::list(call).await,
        (["new"], true, _) => functions::new_page(call, None),
        (["new"], _, true) => functions::create(call).await,
        (["logout"], _, true) => {
            call.console.sessions.sign_out(&call.session, now);
            let mut response = redirect("/console/login?signed-out");
            if let Ok(v) = session::clear_cookie(secure).parse() {
                response.headers_mut().insert(hyper::header::SET_COOKIE, v);
            }
            response
        }
        (["cluster"], true, _) => cluster::page_of(call).await,
        (["cluster", action @ ("drain" | "undrain")], _, true) => {
            cluster::change(call, action).await
        }
        (["fn", _], true, _) => function_page::show(call, &name).await,
        (["fn", _, "config"], _, true) => function_page::update_config(call, &name).await,
        (["fn", _, "code"], _, true) => function_page::update_code(call, &name).await,
        (["fn", _, "publish"], _, true) => versions::publish(call, &name).await,
        (["fn", _, "alias"], _, true) => versions::set_alias(call, &name).await,
        (["fn", _, "dlq", action @ ("replay" | "purge")], _, true) => {
            versions::dead_letters(call, &name, action).await
        }
        (["fn", _, "test"], true, _) => test_invoke::page(call, &name, None, None).await,
        (["fn", _, "test"], _, true) if call.arg("action") == "save" => {
            saved_events::save(call, &name).await
        }
        (["fn", _, "test"], _, true) if call.arg("action") == "delete" => {
            saved_events::delete(call, &name).await
        }
        (["fn", _, "test"], _, true) => test_invoke::invoke(call, &name).await,
        (["fn", _, "logs"], true, _) => logs::page(call, &name).await,
        (["fn", _, "tail"], true, _) => {
            logs::tail(call, &name, call.last_event_id.as_deref()).await
        }
        (["fn", _, "graphs"], true, _) => graphs::page(call, &name).await,
        _ => error_page(
            StatusCode::NOT_FOUND,
            Some(call.csrf()),
            "no such console page",
        ),
    }
}

/// Fetches a function's description through the control service.
async fn get_function(
    call: &Call<'_>,
    name: &str,
) -> Result<kumo_proto::control::FunctionInfo, Response<Body>> {
    call.control()
        .get_function(tonic::Request::new(
            kumo_proto::control::GetFunctionRequest {
                name: name.to_string(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| {
            let code = if status.code() == tonic::Code::NotFound {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            error_page(code, Some(call.csrf()), &status_message(&status))
        })
}
