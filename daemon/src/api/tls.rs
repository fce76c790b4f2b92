//! `[tls]`: TLS on kumod's gRPC port (rustls), optionally requiring client
//! certificates signed by a configured CA, so only nodes holding a
//! certificate can attach as agents or call the control API.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// TLS settings of the gRPC port; off unless `cert_file` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// kumod's certificate chain (PEM).
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<PathBuf>,
    /// CA (PEM) whose client certificates are accepted; when set, every
    /// connection must present one (unless `client_cert_optional`).
    pub client_ca_file: Option<PathBuf>,
    /// Accept connections without a client certificate too.
    pub client_cert_optional: bool,
}

/// The TLS files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading tls.{key} {path}: {source}")]
    Read {
        /// The configuration key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The settings are incomplete.
    #[error("invalid [tls] settings: {0}")]
    Incomplete(&'static str),
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

impl TlsConfig {
    /// The server TLS configuration, or `None` when TLS is off.
    pub fn server_config(&self) -> Result<Option<ServerTlsConfig>, TlsError> {
        let (cert, key) = match (&self.cert_file, &self.key_file) {
            (None, None) if self.client_ca_file.is_none() => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            _ => {
                return Err(TlsError::Incomplete(
                    "cert_file and key_file must both be set (client_ca_file needs them too)",
                ))
            }
        };
        kumo_common::client_security::install_crypto_provider();
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(
            read("cert_file", cert)?,
            read("key_file", key)?,
        ));
        if let Some(ca) = &self.client_ca_file {
            config = config
                .client_ca_root(Certificate::from_pem(read("client_ca_file", ca)?))
                .client_auth_optional(self.client_cert_optional);
        } else if self.client_cert_optional {
            return Err(TlsError::Incomplete(
                "client_cert_optional only applies with client_ca_file",
            ));
        }
        Ok(Some(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_half_configurations_are_refused() {
        assert!(TlsConfig::default().server_config().unwrap().is_none());
        let half = TlsConfig {
            cert_file: Some("/c.pem".into()),
            ..Default::default()
        };
        assert!(matches!(half.server_config(), Err(TlsError::Incomplete(_))));
        let missing = TlsConfig {
            cert_file: Some("/nonexistent/c.pem".into()),
            key_file: Some("/nonexistent/k.pem".into()),
            ..Default::default()
        };
        let err = missing.server_config().unwrap_err().to_string();
        assert!(err.contains("tls.cert_file /nonexistent/c.pem"), "{err}");
    }
}
