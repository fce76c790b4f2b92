//! Accepting HTTP connections within limits, so a flood of slow or
//! half-open clients can never starve the gRPC API, agents or the store of
//! file descriptors: a cap on open connections (also bounded by the fd
//! limit minus a reserve), a header-read timeout, a keep-alive idle
//! timeout, and (in [`crate::api::http`]) a body-read timeout. Each
//! connection is read through a [`HeadTap`] that keeps the client's
//! spelling of header names ([`crate::api::header_case`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::api::header_case::{HeadTap, OriginalHeaderNames, Tapped};
use crate::api::http::HttpState;

/// `[http]`: limits of kumod's HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Seconds a client has to send a request's complete header block
    /// (also the longest wait for the first request on a new connection).
    pub header_read_timeout_seconds: u64,
    /// Seconds a kept-alive connection may sit idle between requests.
    pub idle_timeout_seconds: u64,
    /// Seconds a client has to send a request's body.
    pub body_read_timeout_seconds: u64,
    /// Most HTTP connections open at once; further ones are closed at once.
    pub max_connections: u32,
    /// File descriptors kept free for gRPC clients, agents, the store and
    /// packages: the connection cap is lowered to
    /// `RLIMIT_NOFILE - fd_reserve` when that is smaller.
    pub fd_reserve: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            body_read_timeout_seconds: 60,
            max_connections: 1024,
            fd_reserve: 256,
        }
    }
}

/// Fewest connections allowed whatever the fd limit.
const MIN_CONNECTIONS: u64 = 8;

impl HttpConfig {
    /// Checks the values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.header_read_timeout_seconds == 0
            || self.idle_timeout_seconds == 0
            || self.body_read_timeout_seconds == 0
        {
            return Err("http: timeouts must be at least 1 second".into());
        }
        if self.max_connections == 0 {
            return Err("http.max_connections must be at least 1 (default 1024)".into());
        }
        Ok(())
    }

    /// The connection cap in force with `fd_limit` open files allowed.
    pub fn connection_cap(&self, fd_limit: u64) -> usize {
        let by_fds = fd_limit
            .saturating_sub(u64::from(self.fd_reserve))
            .max(MIN_CONNECTIONS);
        usize::try_from(u64::from(self.max_connections).min(by_fds)).unwrap_or(usize::MAX)
    }
}

/// Serves HTTP on `listener` until the task is dropped, with at most
/// `config.connection_cap(fd_limit)` connections open.
pub async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    config: HttpConfig,
    fd_limit: u64,
) {
    let cap = config.connection_cap(fd_limit);
    tracing::info!(max_connections = cap, fd_limit, "HTTP listener limits");
    let permits = Arc::new(Semaphore::new(cap));
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => {
                // Answers go out at once, never behind a delayed ACK.
                let _ = conn.0.set_nodelay(true);
                conn
            }
            Err(err) => {
                tracing::warn!(%err, "accepting an HTTP connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    max_connections = cap,
                    refused,
                    "HTTP connection refused: too many open connections"
                );
            }
            continue;
        };
        let state = state.clone();
        let config = config.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, state, &config).await;
            drop(permit);
        });
    }
}

/// Milliseconds since `epoch`.
fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One connection: hyper with the header-read timeout, closed once it has
/// been idle (no request running) for the idle timeout.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    state: Arc<HttpState>,
    config: &HttpConfig,
) {
    let epoch = Instant::now();
    let running = Arc::new(AtomicUsize::new(0));
    let last_done = Arc::new(AtomicU64::new(0));
    let (svc_running, svc_done) = (running.clone(), last_done.clone());
    let local_port = stream.local_addr().map(|a| a.port()).unwrap_or_default();
    let tap = Arc::new(HeadTap::default());
    let svc_tap = tap.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (state, running, done) = (state.clone(), svc_running.clone(), svc_done.clone());
        let (mut parts, body) = request.into_parts();
        if let Some(names) = svc_tap.take(&parts) {
            parts.extensions.insert(OriginalHeaderNames(names));
        }
        let request = Request::from_parts(parts, body);
        running.fetch_add(1, Ordering::SeqCst);
        async move {
            let response = crate::api::http::route(state, request, peer, local_port).await;
            done.store(millis_since(epoch), Ordering::SeqCst);
            running.fetch_sub(1, Ordering::SeqCst);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.header_read_timeout_seconds));
    let connection = builder.serve_connection(TokioIo::new(Tapped::new(stream, tap)), service);
    tokio::pin!(connection);
    let idle_ms = config.idle_timeout_seconds.saturating_mul(1000);
    let tick = Duration::from_millis((idle_ms / 4).clamp(100, 1000));
    loop {
        tokio::select! {
            _ = &mut connection => return,
            _ = tokio::time::sleep(tick) => {
                let idle_for = millis_since(epoch).saturating_sub(last_done.load(Ordering::SeqCst));
                if running.load(Ordering::SeqCst) == 0 && idle_for >= idle_ms {
                    break;
                }
            }
        }
    }
    // Idle: a graceful shutdown closes a connection between requests at
    // once, and lets a response still being written finish (within the
    // body timeout: a client that does not read is not waited for longer).
    connection.as_mut().graceful_shutdown();
    let finish = Duration::from_secs(config.body_read_timeout_seconds);
    let _ = tokio::time::timeout(finish, connection).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_the_fd_reserve_free() {
        let config = HttpConfig::default();
        assert_eq!(config.connection_cap(1_048_576), 1024);
        assert_eq!(config.connection_cap(1024), 768);
        assert_eq!(config.connection_cap(100), 8);
        assert!(config.validate().is_ok());
        let zero = HttpConfig {
            max_connections: 0,
            ..HttpConfig::default()
        };
        assert!(zero.validate().is_err());
    }
}
