//! Who may call kumod's gRPC port: operators with a control token, agents
//! with a join token, both as `authorization: Bearer <token>`. A tower
//! layer in front of every service checks the token for the service being
//! called; gRPC health stays open for probes.
//!
//! Tokens come from files (several files, several tokens per file, so a
//! token can be rotated by adding the new one before removing the old).
//! With no file configured kumod creates one in its data directory (mode
//! 0600) on first start. `insecure_local` turns checking off, and is only
//! accepted when kumod listens on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use kumo_common::client_security::{read_tokens, SecurityError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// gRPC path prefix of the agent protocol.
const AGENT_SERVICE: &str = "/kumo.agent.v1.AgentControl/";
/// gRPC path prefix of the health service (open to probes).
const HEALTH_SERVICE: &str = "/grpc.health.v1.Health/";

/// `[auth]`: tokens of the gRPC port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Files of operator tokens (the control API). Empty: kumod uses
    /// `<data_dir>/control.token`, creating it if missing.
    pub token_files: Vec<PathBuf>,
    /// Files of agent join tokens. Empty: `<data_dir>/agent.token`,
    /// created if missing.
    pub agent_token_files: Vec<PathBuf>,
    /// Accept calls without tokens; refused unless kumod listens on loopback.
    pub insecure_local: bool,
}

/// The tokens could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A token file is unreadable or holds a bad token.
    #[error(transparent)]
    Token(#[from] SecurityError),
    /// A default token file could not be created.
    #[error("creating the token file {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `insecure_local` on a non-loopback address.
    #[error("insecure_local (--insecure-local) turns authentication off and is only allowed when kumod listens on loopback, not on {0}")]
    InsecureNotLocal(SocketAddr),
}

/// The accepted tokens, kept as SHA-256 digests.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    control: Vec<[u8; 32]>,
    agent: Vec<[u8; 32]>,
    insecure: bool,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares digests without an early exit.
fn matches_any(candidate: &[u8; 32], accepted: &[[u8; 32]]) -> bool {
    accepted.iter().fold(false, |found, known| {
        let difference = known
            .iter()
            .zip(candidate)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        found | (difference == 0)
    })
}

/// A random token (two v4 UUIDs: 244 random bits).
pub fn generate_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Reads `path`, or creates it holding a fresh token (mode 0600).
pub(crate) fn read_or_create(path: &Path) -> Result<Vec<String>, AuthError> {
    if !path.exists() {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let create = |source| AuthError::Create {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(create)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(create)?;
        writeln!(file, "{}", generate_token()).map_err(create)?;
        tracing::info!(path = %path.display(), "created a token file");
    }
    Ok(read_tokens(path)?)
}

impl Tokens {
    /// Loads the tokens `config` names (creating the defaults in
    /// `data_dir`), plus `extra_agent_token` (the embedded agent's).
    pub fn load(
        config: &AuthConfig,
        data_dir: &Path,
        listen: SocketAddr,
        extra_agent_token: &str,
    ) -> Result<Self, AuthError> {
        if config.insecure_local {
            if !listen.ip().is_loopback() {
                return Err(AuthError::InsecureNotLocal(listen));
            }
            tracing::warn!(
                "insecure_local: the gRPC port accepts calls without tokens (loopback only)"
            );
            return Ok(Self {
                insecure: true,
                ..Self::default()
            });
        }
        let load = |files: &[PathBuf], default: &str| -> Result<Vec<[u8; 32]>, AuthError> {
            let mut digests = Vec::new();
            if files.is_empty() {
                digests.extend(
                    read_or_create(&data_dir.join(default))?
                        .iter()
                        .map(|t| digest(t)),
                );
            }
            for file in files {
                digests.extend(read_tokens(file)?.iter().map(|t| digest(t)));
            }
            Ok(digests)
        };
        let control = load(&config.token_files, "control.token")?;
        let mut agent = load(&config.agent_token_files, "agent.token")?;
        agent.push(digest(extra_agent_token));
        Ok(Self {
            control,
            agent,
            insecure: false,
        })
    }

    /// Whether `token` is an operator (control) token; any token is when
    /// checking is off (`insecure_local`).
    pub fn accepts_control(&self, token: &str) -> bool {
        self.insecure || matches_any(&digest(token.trim()), &self.control)
    }

    /// Checks the `authorization` header of a call to `path`.
    pub fn check(&self, path: &str, authorization: Option<&[u8]>) -> Result<(), tonic::Status> {
        if self.insecure || path.starts_with(HEALTH_SERVICE) {
            return Ok(());
        }
        let (accepted, who) = if path.starts_with(AGENT_SERVICE) {
            (&self.agent, "an agent join token")
        } else {
            (&self.control, "a control token")
        };
        let Some(header) = authorization else {
            return Err(tonic::Status::unauthenticated(format!(
                "kumod requires {who}: send `authorization: Bearer <token>` (kumo: --token-file or KUMO_TOKEN)"
            )));
        };
        let token = header
            .strip_prefix(b"Bearer ")
            .and_then(|t| std::str::from_utf8(t).ok())
            .map(str::trim);
        match token {
            Some(token) if matches_any(&digest(token), accepted) => Ok(()),
            _ => Err(tonic::Status::unauthenticated(format!(
                "invalid bearer token: kumod requires {who}"
            ))),
        }
    }
}

/// The tower layer checking tokens in front of kumod's gRPC services.
#[derive(Clone)]
pub struct AuthLayer {
    tokens: Arc<Tokens>,
}

impl AuthLayer {
    /// A layer accepting `tokens`.
    pub fn new(tokens: Tokens) -> Self {
        Self {
            tokens: Arc::new(tokens),
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

/// A service behind [`AuthLayer`].
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    tokens: Arc<Tokens>,
}

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let verdict = self.tokens.check(
            request.uri().path(),
            request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
        );
        match verdict {
            Ok(()) => {
                // The clone is not ready; call the instance poll_ready readied.
                let clone = self.inner.clone();
                let mut ready = std::mem::replace(&mut self.inner, clone);
                Box::pin(ready.call(request))
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(dir: &Path) -> Tokens {
        std::fs::write(
            dir.join("ops"),
            "operator-token-0001\noperator-token-0002\n",
        )
        .unwrap();
        std::fs::write(dir.join("agents"), "agent-join-token-01\n").unwrap();
        let config = AuthConfig {
            token_files: vec![dir.join("ops")],
            agent_token_files: vec![dir.join("agents")],
            insecure_local: false,
        };
        Tokens::load(
            &config,
            dir,
            "0.0.0.0:7070".parse().unwrap(),
            "embedded-agent-token",
        )
        .unwrap()
    }

    #[test]
    fn each_service_takes_only_its_own_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let t = tokens(dir.path());
        let control = "/kumo.control.v1.Control/ListFunctions";
        let agent = "/kumo.agent.v1.AgentControl/Attach";
        assert!(t
            .check(control, Some(b"Bearer operator-token-0002"))
            .is_ok());
        assert!(t.check(agent, Some(b"Bearer agent-join-token-01")).is_ok());
        assert!(t.check(agent, Some(b"Bearer embedded-agent-token")).is_ok());
        for (path, header) in [
            (control, None),
            (control, Some(&b"Bearer agent-join-token-01"[..])),
            (control, Some(&b"operator-token-0001"[..])),
            (control, Some(&b"Bearer operator-token-000"[..])),
            (agent, Some(&b"Bearer operator-token-0001"[..])),
            ("/grpc.reflection.v1.ServerReflection/X", None),
        ] {
            let status = t.check(path, header).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{path}");
        }
        assert!(t.check("/grpc.health.v1.Health/Check", None).is_ok());
    }

    #[test]
    fn default_files_are_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let listen = "127.0.0.1:7070".parse().unwrap();
        let first = Tokens::load(
            &AuthConfig::default(),
            dir.path(),
            listen,
            "x".repeat(20).as_str(),
        )
        .unwrap();
        let file = dir.path().join("control.token");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let token = std::fs::read_to_string(&file).unwrap();
        let header = format!("Bearer {}", token.trim());
        assert!(first
            .check("/kumo.control.v1.Control/X", Some(header.as_bytes()))
            .is_ok());
        let again = Tokens::load(&AuthConfig::default(), dir.path(), listen, "y").unwrap();
        assert!(again
            .check("/kumo.control.v1.Control/X", Some(header.as_bytes()))
            .is_ok());
    }

    #[test]
    fn insecure_local_is_refused_off_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuthConfig {
            insecure_local: true,
            ..Default::default()
        };
        let err =
            Tokens::load(&config, dir.path(), "0.0.0.0:7070".parse().unwrap(), "x").unwrap_err();
        assert!(matches!(err, AuthError::InsecureNotLocal(_)), "{err}");
        let open =
            Tokens::load(&config, dir.path(), "127.0.0.1:7070".parse().unwrap(), "x").unwrap();
        assert!(open.check("/kumo.control.v1.Control/X", None).is_ok());
    }
}
