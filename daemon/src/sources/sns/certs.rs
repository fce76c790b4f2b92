//! SNS signing certificates (docs/wire-formats.md §10): fetched over
//! https only, only from the profile's SNS host (`sns_cert_host`, else the
//! SNS endpoint's host, else `sns.<region>.amazonaws.com`), trusting the
//! system's roots plus the profile's `sns_ca_file`, and cached by URL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kumo_triggers::sns::{check_url, sns_host, DeliveryError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::aws_profiles::{AwsProfile, Service};

/// Largest certificate response read.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Most certificates kept.
const MAX_CACHED: usize = 64;

/// A signing certificate could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The URL is not https on the SNS host (never fetched).
    #[error(transparent)]
    Url(#[from] DeliveryError),
    /// The profile's CA file could not be read.
    #[error("reading sns_ca_file {path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Fetching failed.
    #[error("fetching the SNS signing certificate {url}: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// The host (and port) signing certificates must come from.
pub fn cert_host(profile: &AwsProfile) -> String {
    if !profile.sns_cert_host.is_empty() {
        return profile.sns_cert_host.to_ascii_lowercase();
    }
    sns_host(profile.endpoint_of(Service::Sns), &profile.region).unwrap_or_default()
}

/// Certificates fetched so far, by URL.
#[derive(Clone, Default)]
pub struct CertCache {
    by_url: Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>>,
}

impl CertCache {
    /// The certificate at `url` for `profile`: checked, then cached or fetched.
    pub async fn get(&self, profile: &AwsProfile, url: &str) -> Result<Arc<Vec<u8>>, CertError> {
        let host = cert_host(profile);
        check_url("SigningCertURL", url, &host, true)?;
        if let Some(cert) = self
            .by_url
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
        {
            return Ok(cert.clone());
        }
        let fail = |message: String| CertError::Fetch {
            url: url.to_string(),
            message,
        };
        let cert = tokio::time::timeout(FETCH_TIMEOUT, fetch(profile, url))
            .await
            .map_err(|_| fail(format!("no answer within {FETCH_TIMEOUT:?}")))??;
        let cert = Arc::new(cert);
        let mut cache = self.by_url.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(url.to_string(), cert.clone());
        Ok(cert)
    }
}

/// The TLS client trusting the system roots and `sns_ca_file`.
fn tls_config(profile: &AwsProfile) -> Result<rustls::ClientConfig, CertError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = &profile.sns_ca_file {
        let ca_error = |message: String| CertError::CaFile {
            path: path.display().to_string(),
            message,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_error(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ca_error(e.to_string()))?;
        for cert in certs {
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| CertError::Fetch {
        url: String::new(),
        message: e.to_string(),
    })?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// One HTTP/1.0 GET over TLS; the body of a 200 answer.
async fn fetch(profile: &AwsProfile, url: &str) -> Result<Vec<u8>, CertError> {
    let fail = |message: String| CertError::Fetch {
        url: url.to_string(),
        message,
    };
    let rest = url.strip_prefix("https://").unwrap_or(url);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once("]:") {
            Some((h, p)) => (h, Some(p)),
            None => (v6.trim_end_matches(']'), None),
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| fail(format!("bad port {p:?}")))?,
        None => 443,
    };
    let name = ServerName::try_from(host.to_string()).map_err(|e| fail(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(profile)?));
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| fail(format!("TLS: {e}")))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: */*\r\n\r\n");
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut answer = Vec::new();
    (&mut tls)
        .take(MAX_RESPONSE_BYTES + 1)
        .read_to_end(&mut answer)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if answer.len() as u64 > MAX_RESPONSE_BYTES {
        return Err(fail(format!("answer over {MAX_RESPONSE_BYTES} bytes")));
    }
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| fail("no HTTP header end".into()))?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(fail(format!("HTTP status {status:?}")));
    }
    Ok(answer[split + 4..].to_vec())
}
