//! Who may read `/metrics`: anyone, or only callers sending
//! `Authorization: Bearer <token>` — required by default when the HTTP
//! listener is not on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `[metrics]`: access to `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Require a token; unset = required when `http_listen` is not a
    /// loopback address.
    pub require_token: Option<bool>,
    /// File holding the accepted token(s), one per line; unset =
    /// `<data_dir>/metrics.token`, created with a random token when missing.
    pub token_file: Option<PathBuf>,
}

/// The `/metrics` check in force.
#[derive(Debug, Clone, Default)]
pub struct MetricsAuth {
    /// Accepted `Authorization` values; `None` = open.
    expected: Option<Vec<String>>,
}

impl MetricsAuth {
    /// Loads the tokens `config` calls for (listener on `http_listen`,
    /// default token file in `data_dir`).
    pub fn load(
        config: &MetricsConfig,
        http_listen: SocketAddr,
        data_dir: &Path,
    ) -> Result<Self, crate::api::auth::AuthError> {
        let required = config
            .require_token
            .unwrap_or(!http_listen.ip().is_loopback());
        if !required {
            return Ok(Self::default());
        }
        let file = config
            .token_file
            .clone()
            .unwrap_or_else(|| data_dir.join("metrics.token"));
        let tokens = crate::api::auth::read_or_create(&file)?;
        Ok(Self {
            expected: Some(tokens.iter().map(|t| format!("Bearer {t}")).collect()),
        })
    }

    /// Whether a request with this `Authorization` header may read `/metrics`.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        let Some(expected) = &self.expected else {
            return true;
        };
        let Some(given) = authorization.map(str::trim) else {
            return false;
        };
        expected
            .iter()
            .fold(false, |found, e| found | same(e, given))
    }
}

/// Compares without an early exit.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_off_loopback_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let loopback: SocketAddr = "127.0.0.1:7071".parse().unwrap();
        let public: SocketAddr = "0.0.0.0:7071".parse().unwrap();
        let open = MetricsAuth::load(&MetricsConfig::default(), loopback, dir.path()).unwrap();
        assert!(open.allows(None));
        let auth = MetricsAuth::load(&MetricsConfig::default(), public, dir.path()).unwrap();
        assert!(!auth.allows(None));
        assert!(!auth.allows(Some("Bearer wrong")));
        let token = std::fs::read_to_string(dir.path().join("metrics.token")).unwrap();
        assert!(auth.allows(Some(&format!("Bearer {}", token.trim()))));
        let forced = MetricsConfig {
            require_token: Some(true),
            ..Default::default()
        };
        assert!(!MetricsAuth::load(&forced, loopback, dir.path())
            .unwrap()
            .allows(None));
    }
}
