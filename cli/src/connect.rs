//! Connecting to kumod: endpoint, TLS and the bearer token.

use std::path::PathBuf;

use kumo_common::client_security::{self, read_tokens, BearerToken, ClientTls, SecurityError};
use kumo_proto::control::control_client::ControlClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::args::Cli;
use crate::commands::CliError;
use crate::upload_progress::UploadProgress;

/// A control-API client that sends the operator's token (and shows upload
/// progress, see [`crate::upload_progress`]).
pub type Client = ControlClient<UploadProgress<InterceptedService<Channel, BearerToken>>>;

/// Token files tried when none is given: the user's, then the one kumod
/// creates in its default data directory (readable by root).
fn default_token_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(home).join(".config/kumo/token"));
    }
    files.push(PathBuf::from("/var/lib/kumo/control.token"));
    files
}

/// The token to send: `KUMO_TOKEN`, else `--token-file`, else the first
/// readable default file, else none (kumod answers UNAUTHENTICATED unless
/// it runs with --insecure-local).
fn token(cli: &Cli) -> Result<Option<String>, CliError> {
    if let Ok(token) = std::env::var("KUMO_TOKEN") {
        return Ok(Some(token.trim().to_string()));
    }
    let failed = |e: SecurityError| CliError::Failed(e.to_string());
    if let Some(file) = &cli.token_file {
        return Ok(read_tokens(file).map_err(failed)?.into_iter().next());
    }
    let mut unreadable = Vec::new();
    for file in default_token_files() {
        match read_tokens(&file) {
            Ok(tokens) => return Ok(tokens.into_iter().next()),
            Err(SecurityError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                unreadable.push(file);
            }
            // Absent: try the next one.
            Err(SecurityError::Read { .. }) => continue,
            Err(err) => return Err(failed(err)),
        }
    }
    // No token: say why when one exists but belongs to someone else, since
    // kumod will answer UNAUTHENTICATED (unless it runs --insecure-local).
    for file in unreadable {
        eprintln!(
            "warning: the token file {} exists but you may not read it: run as root, copy the token to ~/.config/kumo/token (mode 0600), or use --token-file / KUMO_TOKEN",
            file.display()
        );
    }
    Ok(None)
}

/// Connects to kumod as `cli`'s global options say.
pub async fn connect(cli: &Cli) -> Result<Client, CliError> {
    let endpoint = &cli.endpoint;
    let unreachable = |e: &dyn std::fmt::Display| {
        CliError::Failed(format!("cannot reach kumod at {endpoint}: {e}"))
    };
    let tls = ClientTls {
        ca_file: cli.tls_ca.clone(),
        cert_file: cli.tls_cert.clone(),
        key_file: cli.tls_key.clone(),
        domain: cli.tls_domain.clone(),
    };
    let bearer =
        BearerToken::new(token(cli)?.as_deref()).map_err(|e| CliError::Failed(e.to_string()))?;
    let channel = client_security::endpoint(endpoint, &tls)
        .map_err(|e| CliError::Failed(e.to_string()))?
        .connect()
        .await
        .map_err(|e| {
            unreachable(
                &std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| e.to_string()),
            )
        })?;
    Ok(
        ControlClient::new(UploadProgress::new(InterceptedService::new(
            channel, bearer,
        )))
        .max_decoding_message_size(kumo_proto::MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(kumo_proto::MAX_GRPC_MESSAGE_BYTES),
    )
}
