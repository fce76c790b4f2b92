//! The Lambda Runtime API (docs/wire-formats.md §1) served to one function
//! instance: HTTP/1.1 with keep-alive on the sandbox's listener.
//!
//! The instance hands invocations over with [`RuntimeApi::deliver`]; the
//! runtime picks them up with `GET /2018-06-01/runtime/invocation/next` and
//! answers with `POST …/invocation/{id}/response` or `…/error` (or, during
//! start-up, `POST /2018-06-01/runtime/init/error`). Every answer reaches the
//! instance as one [`RuntimeReply`] on the receiver `deliver` returned.
//!
//! An invocation delivered before the runtime asked for work is queued and
//! handed out by its first `/next`; an init error reported before anything
//! was delivered is kept and becomes the reply to the next delivery.

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

mod peer;
mod server;

/// The error document the caller gets when a response is too large.
pub const RESPONSE_TOO_LARGE_BODY: &str = "{\"errorMessage\":\"Response payload size exceeded maximum allowed payload size (6291556 bytes).\",\"errorType\":\"Function.ResponseSizeTooLarge\"}";
/// Error type of [`RESPONSE_TOO_LARGE_BODY`].
pub const RESPONSE_TOO_LARGE_TYPE: &str = "Function.ResponseSizeTooLarge";

/// One invocation as the runtime will receive it from `/next`.
#[derive(Debug, Clone)]
pub struct PendingInvocation {
    /// Lambda request id (lowercase UUID).
    pub request_id: String,
    /// Event JSON.
    pub payload: Bytes,
    /// Function timeout; the deadline is the hand-over time plus this.
    pub timeout: Duration,
    /// ARN the caller used (with qualifier, if any).
    pub invoked_function_arn: String,
    /// X-Ray style trace header value, see [`generate_trace_id`].
    pub trace_id: String,
    /// Client context JSON, if the caller sent one.
    pub client_context: Option<String>,
    /// Cognito identity JSON, if any.
    pub cognito_identity: Option<String>,
}

/// How the runtime answered one delivered invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeReply {
    /// `POST …/response`: the response body.
    Response(Bytes),
    /// `POST …/error`: the body (verbatim, minus `errorCause` when so
    /// labelled) and the `Lambda-Runtime-Function-Error-Type` header.
    Error {
        /// Error document to forward to the caller.
        body: Bytes,
        /// Value of the error-type header, if sent.
        error_type: Option<String>,
    },
    /// `POST /runtime/init/error`: the runtime could not start.
    InitError {
        /// Error document to forward to the caller.
        body: Bytes,
        /// Value of the error-type header, if sent.
        error_type: Option<String>,
    },
    /// The runtime posted a response larger than the payload limit.
    ResponseTooLarge,
}

/// The Runtime API server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeApiError {
    /// The listener could not be handed to tokio.
    #[error("serving the Runtime API on listener {addr}: {source}")]
    Listener {
        /// Address of the listener (or `unknown`).
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The invocation the runtime is working on (or will get next).
#[derive(Debug)]
struct InFlight {
    request_id: String,
    reply: Option<oneshot::Sender<RuntimeReply>>,
}

/// State shared between the instance and the connection handlers.
#[derive(Debug, Default)]
struct State {
    /// A `/next` request waiting for work.
    parked_next: Option<oneshot::Sender<PendingInvocation>>,
    /// Delivered but not yet handed to a `/next`.
    queued: Option<PendingInvocation>,
    /// The current invocation and where its reply goes.
    in_flight: Option<InFlight>,
    /// The previous invocation (answered or abandoned), for 403s.
    previous_id: Option<String>,
    /// An init error reported while nothing was delivered.
    init_error: Option<RuntimeReply>,
    /// When the last invocation was handed to the runtime.
    handed_over_at: Option<Instant>,
}

struct Shared {
    state: Mutex<State>,
    /// Becomes true at the runtime's first `/next` (end of init).
    ready: watch::Sender<bool>,
    /// Called just before an invocation is handed to the runtime.
    handover_hook: OnceLock<HandoverHook>,
}

/// See [`RuntimeApi::on_handover`].
pub type HandoverHook = Box<dyn Fn() + Send + Sync>;

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("state", &self.state)
            .field("ready", &self.ready)
            .field("handover_hook", &self.handover_hook.get().is_some())
            .finish()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a handler panicked mid-update; the
        // state itself stays consistent enough to keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running Runtime API server for one instance. Dropping it stops the
/// server and closes its connections.
#[derive(Debug)]
pub struct RuntimeApi {
    shared: Arc<Shared>,
    ready: watch::Receiver<bool>,
    local_addr: Option<SocketAddr>,
    server: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Starts serving `listener` (made non-blocking here) on the current
    /// tokio runtime, to every client that can reach it (a listener inside
    /// the instance's own network namespace).
    pub fn serve(listener: StdTcpListener) -> Result<RuntimeApi, RuntimeApiError> {
        Self::serve_to(listener, None)
    }

    /// Like [`RuntimeApi::serve`], but when `peer_uid` is given, closes every
    /// connection whose socket is not owned by that uid (the instance's
    /// own, for a listener on the host's network: see the `peer` module).
    pub fn serve_to(
        listener: StdTcpListener,
        peer_uid: Option<u32>,
    ) -> Result<RuntimeApi, RuntimeApiError> {
        let local_addr = listener.local_addr().ok();
        let to_err = |source| RuntimeApiError::Listener {
            addr: local_addr.map_or_else(|| "unknown".into(), |a| a.to_string()),
            source,
        };
        listener.set_nonblocking(true).map_err(to_err)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(to_err)?;
        let (ready_tx, ready) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready: ready_tx,
            handover_hook: OnceLock::new(),
        });
        let server = tokio::spawn(server::accept_loop(listener, shared.clone(), peer_uid));
        Ok(RuntimeApi {
            shared,
            ready,
            local_addr,
            server,
        })
    }

    /// Address the server listens on (as seen from its network namespace).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Resolves once the runtime has asked for work (`/next`) at least once,
    /// i.e. it has finished initialising. Cancel-safe.
    pub async fn next_requested(&self) {
        let mut ready = self.ready.clone();
        // The sender lives in `shared`, which we hold: it cannot be dropped.
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// Sets a hook called in the `/next` handler just before an invocation
    /// is sent to the runtime, i.e. before the runtime can act on it (used
    /// to mark where the invocation's own output starts). Set once; later
    /// calls are ignored.
    pub fn on_handover(&self, hook: HandoverHook) {
        let _ = self.shared.handover_hook.set(hook);
    }

    /// When the most recent invocation was handed to the runtime (its run
    /// time starts there).
    pub fn last_handover(&self) -> Option<Instant> {
        self.shared.lock().handed_over_at
    }

    /// Whether the runtime has asked for work at least once.
    pub fn has_requested_next(&self) -> bool {
        *self.ready.borrow()
    }

    /// Hands `invocation` to the runtime (now if it waits in `/next`, else
    /// at its next `/next`) and returns where its reply will arrive. A
    /// previous invocation still in flight is abandoned (its receiver sees
    /// a closed channel).
    pub fn deliver(&self, invocation: PendingInvocation) -> oneshot::Receiver<RuntimeReply> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let mut state = self.shared.lock();
        if let Some(init_error) = state.init_error.take() {
            let _ = reply_tx.send(init_error);
            return reply_rx;
        }
        if let Some(old) = state.in_flight.take() {
            state.previous_id = Some(old.request_id);
        }
        state.in_flight = Some(InFlight {
            request_id: invocation.request_id.clone(),
            reply: Some(reply_tx),
        });
        let mut invocation = invocation;
        if let Some(parked) = state.parked_next.take() {
            match parked.send(invocation) {
                Ok(()) => return reply_rx,
                // That `/next` connection went away: queue for the next one.
                Err(returned) => invocation = returned,
            }
        }
        state.queued = Some(invocation);
        reply_rx
    }
}

/// A fresh X-Ray style trace header:
/// `Root=1-<8 hex epoch seconds>-<24 hex>;Parent=<16 hex>;Sampled=0`.
pub fn generate_trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let root = uuid::Uuid::new_v4();
    let parent = uuid::Uuid::new_v4();
    format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        secs as u32,
        hex::encode(&root.as_bytes()[..12]),
        hex::encode(&parent.as_bytes()[..8])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_have_the_xray_shape() {
        let id = generate_trace_id();
        let (root, rest) = id.split_once(";Parent=").unwrap();
        let (parent, sampled) = rest.split_once(';').unwrap();
        let parts: Vec<&str> = root.trim_start_matches("Root=").split('-').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[0], "1");
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 24);
        assert_eq!(parent.len(), 16);
        assert_eq!(sampled, "Sampled=0");
        assert_ne!(generate_trace_id(), id);
    }
}
