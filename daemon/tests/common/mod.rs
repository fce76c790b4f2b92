//! Helpers shared by kumod's API tests: packages, configs, and a kumod
//! started on free ports over a temp dir.

#![allow(dead_code)]

use std::io::Write;

use kumo_common::client_security::{read_tokens, BearerToken};
use kumo_daemon::config::DaemonConfig;
use kumo_daemon::server::{self, DaemonHandle};
use kumo_proto::agent::agent_control_client::AgentControlClient;
use kumo_proto::control::control_client::ControlClient;
use kumo_proto::control::*;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A control-API client sending the operator token.
pub type Client = ControlClient<InterceptedService<Channel, BearerToken>>;

/// A channel to `daemon`'s gRPC port.
pub async fn channel(daemon: &DaemonHandle) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{}", daemon.grpc_address))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// The operator token kumod created in `dir` (none under insecure_local).
pub fn operator_token(dir: &std::path::Path) -> BearerToken {
    match read_tokens(&dir.join("control.token")) {
        Ok(tokens) => BearerToken::new(Some(&tokens[0])).unwrap(),
        Err(_) => BearerToken::default(),
    }
}

/// An agent-protocol client joining with the agent token kumod created.
pub async fn agent_client(
    daemon: &DaemonHandle,
    dir: &std::path::Path,
) -> AgentControlClient<InterceptedService<Channel, BearerToken>> {
    let token = read_tokens(&dir.join("agent.token")).unwrap().remove(0);
    AgentControlClient::with_interceptor(
        channel(daemon).await,
        BearerToken::new(Some(&token)).unwrap(),
    )
}

/// A ZIP of these files.
pub fn zip_with(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        for (name, data) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
    }
    out.into_inner()
}

/// A one-file Python package.
pub fn package() -> Vec<u8> {
    zip_with(&[("lambda_function.py", b"def handler(e, c):\n    return e\n")])
}

/// A python3 configuration named `name`.
pub fn config(name: &str) -> FunctionConfig {
    FunctionConfig {
        name: name.into(),
        runtime: "python3".into(),
        handler: "lambda_function.handler".into(),
        ..Default::default()
    }
}

/// Starts kumod on free ports over `dir` and connects a client.
pub async fn start(dir: &std::path::Path) -> (DaemonHandle, Client) {
    start_with(dir, |_| {}).await
}

/// Like [`start`], after `adjust` changed the configuration.
pub async fn start_with(
    dir: &std::path::Path,
    adjust: impl FnOnce(&mut DaemonConfig),
) -> (DaemonHandle, Client) {
    let mut config = DaemonConfig {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        agent_wait_seconds: 1,
        ..Default::default()
    };
    adjust(&mut config);
    let daemon = server::start(&config).await.unwrap();
    let client = ControlClient::with_interceptor(channel(&daemon).await, operator_token(dir))
        .max_encoding_message_size(kumo_proto::MAX_GRPC_MESSAGE_BYTES)
        .max_decoding_message_size(kumo_proto::MAX_GRPC_MESSAGE_BYTES);
    (daemon, client)
}

/// Creates a function.
pub async fn create(
    client: &mut Client,
    config: FunctionConfig,
    zip: Vec<u8>,
) -> Result<FunctionInfo, tonic::Status> {
    client
        .create_function(CreateFunctionRequest {
            config: Some(config),
            zip,
            code_s3: None,
        })
        .await
        .map(|r| r.into_inner())
}

/// Gets a function; panics unless kumod answers.
pub async fn get_function(client: &mut Client, name: &str) -> FunctionInfo {
    client
        .get_function(GetFunctionRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
}

/// An invocation of `name` with `payload`, of the given type.
pub fn invocation(name: &str, payload: &[u8], kind: InvocationType) -> InvokeRequest {
    InvokeRequest {
        function_name: name.into(),
        payload: payload.to_vec(),
        invocation_type: kind as i32,
        ..Default::default()
    }
}
