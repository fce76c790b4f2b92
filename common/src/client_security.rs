//! The client side of kumod's gRPC security, shared by the CLI, agents and
//! tools: a bearer token read from a file and attached to every call, and
//! TLS (optionally with a client certificate) from PEM files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// Credentials or a TLS file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A file could not be read.
    #[error("reading {what} {path}: {source}")]
    Read {
        /// What the file holds.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A token is unusable.
    #[error("token {origin}: {problem}")]
    BadToken {
        /// Where it came from.
        origin: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The endpoint or TLS settings were refused.
    #[error("gRPC endpoint {url}: {message}")]
    Endpoint {
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
}

/// Selects rustls' `ring` provider for this process (the S3 client links
/// a second provider, so rustls cannot pick one on its own). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Tokens shorter than this are refused (on both sides).
pub const MIN_TOKEN_LENGTH: usize = 16;

/// Checks one token's shape: long enough, printable ASCII, no spaces.
pub fn check_token(token: &str, origin: &str) -> Result<(), SecurityError> {
    let problem = if token.len() < MIN_TOKEN_LENGTH {
        Some("shorter than 16 characters")
    } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
        Some("contains spaces or non-ASCII characters")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(SecurityError::BadToken {
            origin: origin.to_string(),
            problem,
        }),
        None => Ok(()),
    }
}

/// Every token in a token file: one per line; blank lines and `#` comments
/// are ignored. An empty file is an error.
pub fn read_tokens(path: &Path) -> Result<Vec<String>, SecurityError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecurityError::Read {
        what: "token file",
        path: path.to_path_buf(),
        source,
    })?;
    let origin = format!("in {}", path.display());
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if tokens.is_empty() {
        return Err(SecurityError::BadToken {
            origin,
            problem: "the file holds no token",
        });
    }
    for token in &tokens {
        check_token(token, &origin)?;
    }
    Ok(tokens)
}

/// Attaches `authorization: Bearer <token>` to every call (nothing when
/// built without a token).
#[derive(Clone, Default)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
    /// An interceptor sending `token`.
    pub fn new(token: Option<&str>) -> Result<Self, SecurityError> {
        let Some(token) = token else {
            return Ok(Self(None));
        };
        check_token(token, "given")?;
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| SecurityError::BadToken {
                origin: "given".into(),
                problem: "not valid in a header",
            })?;
        Ok(Self(Some(value)))
    }
}

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// TLS settings of a client.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// CA certificate(s) that signed kumod's certificate (PEM).
    pub ca_file: Option<PathBuf>,
    /// This client's certificate (PEM), when kumod asks for one.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Name to check kumod's certificate against (default: the URL's host).
    pub domain: Option<String>,
}

fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, SecurityError> {
    std::fs::read(path).map_err(|source| SecurityError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// A lazily or eagerly connected endpoint for `url`; `https://` URLs use
/// `tls` (a CA file is required: kumod's certificates are usually private).
pub fn endpoint(url: &str, tls: &ClientTls) -> Result<Endpoint, SecurityError> {
    let refused = |message: String| SecurityError::Endpoint {
        url: url.to_string(),
        message,
    };
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| refused(e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if url.starts_with("https://") {
        install_crypto_provider();
        let mut config = ClientTlsConfig::new();
        match &tls.ca_file {
            Some(ca) => {
                config =
                    config.ca_certificate(Certificate::from_pem(read_pem("CA certificate", ca)?))
            }
            None => {
                return Err(refused(
                    "an https:// URL needs a CA certificate file (--tls-ca / tls_ca_file)".into(),
                ))
            }
        }
        match (&tls.cert_file, &tls.key_file) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(
                    read_pem("client certificate", cert)?,
                    read_pem("client key", key)?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(refused(
                    "a client certificate needs both its certificate and key files".into(),
                ))
            }
        }
        if let Some(domain) = &tls.domain {
            config = config.domain_name(domain.clone());
        }
        endpoint = endpoint
            .tls_config(config)
            .map_err(|e| refused(e.to_string()))?;
    } else if tls.ca_file.is_some() || tls.cert_file.is_some() {
        return Err(refused(
            "TLS files were given for a plain http:// URL; use https://".into(),
        ));
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_skip_comments_and_refuse_weak_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(
            &file,
            "# operators\n\nfirst-token-0123456789\n  second-token-abcdefghij \n",
        )
        .unwrap();
        assert_eq!(
            read_tokens(&file).unwrap(),
            ["first-token-0123456789", "second-token-abcdefghij"]
        );
        std::fs::write(&file, "short\n").unwrap();
        let err = read_tokens(&file).unwrap_err().to_string();
        assert!(
            err.contains("shorter than 16") && err.contains("tokens"),
            "{err}"
        );
        std::fs::write(&file, "# nothing\n").unwrap();
        assert!(read_tokens(&file)
            .unwrap_err()
            .to_string()
            .contains("no token"));
        let missing = read_tokens(&dir.path().join("absent"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("absent"), "{missing}");
    }

    #[test]
    fn the_interceptor_sets_the_header_and_https_needs_a_ca() {
        let mut bearer = BearerToken::new(Some("a-token-of-good-length")).unwrap();
        let request = bearer.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer a-token-of-good-length"
        );
        assert!(BearerToken::new(Some("has space in it 123")).is_err());
        let err = endpoint("https://127.0.0.1:7070", &ClientTls::default()).unwrap_err();
        assert!(err.to_string().contains("CA certificate"), "{err}");
        assert!(endpoint("http://127.0.0.1:7070", &ClientTls::default()).is_ok());
    }
}
