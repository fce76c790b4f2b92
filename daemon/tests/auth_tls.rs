//! Who may use kumod's gRPC port, over real listeners: operators need a
//! control token, agents a join token (UNAUTHENTICATED otherwise); TLS
//! with client certificates admits only clients holding one.

use std::path::Path;

use futures::StreamExt;
use kumo_common::client_security::{endpoint, BearerToken, ClientTls};
use kumo_daemon::config::DaemonConfig;
use kumo_daemon::server;
use kumo_proto::agent::agent_control_client::AgentControlClient;
use kumo_proto::agent::{agent_message, daemon_message, AgentMessage, Register};
use kumo_proto::control::control_client::ControlClient;
use kumo_proto::control::ListFunctionsRequest;
use tonic::Code;

mod common;
use common::{agent_client, channel, operator_token, start, start_with};

async fn list_with(
    daemon: &server::DaemonHandle,
    token: Option<&str>,
) -> Result<(), tonic::Status> {
    let bearer = BearerToken::new(token).unwrap();
    ControlClient::with_interceptor(channel(daemon).await, bearer)
        .list_functions(ListFunctionsRequest {})
        .await
        .map(|_| ())
}

#[tokio::test]
async fn control_calls_need_an_operator_token() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut client) = start(dir.path()).await;
    assert!(client.list_functions(ListFunctionsRequest {}).await.is_ok());

    let missing = list_with(&daemon, None).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing:?}");
    assert!(missing.message().contains("control token"), "{missing:?}");
    let wrong = list_with(&daemon, Some("not-the-right-token-at-all"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    let agent_token = std::fs::read_to_string(dir.path().join("agent.token")).unwrap();
    let crossed = list_with(&daemon, Some(agent_token.trim()))
        .await
        .unwrap_err();
    assert_eq!(
        crossed.code(),
        Code::Unauthenticated,
        "an agent token is not an operator token"
    );
    // Hostile header shapes are refused the same way, and kumod keeps serving.
    let mut raw = ControlClient::new(channel(&daemon).await);
    for value in ["Bearer", "Basic abc", "Bearer \u{7f}", "bearer x"] {
        let mut request = tonic::Request::new(ListFunctionsRequest {});
        if let Ok(value) = value.parse() {
            request.metadata_mut().insert("authorization", value);
        }
        let err = raw.list_functions(request).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{value:?}");
    }
    assert!(client.list_functions(ListFunctionsRequest {}).await.is_ok());
    daemon.shutdown().await.unwrap();
}

async fn attach(
    mut agent: AgentControlClient<
        tonic::service::interceptor::InterceptedService<tonic::transport::Channel, BearerToken>,
    >,
) -> Result<(), tonic::Status> {
    let register = AgentMessage {
        body: Some(agent_message::Body::Register(Register {
            agent_id: "joiner".into(),
            ..Default::default()
        })),
    };
    let mut inbound = agent
        .attach(futures::stream::iter(vec![register]).chain(futures::stream::pending()))
        .await?
        .into_inner();
    match inbound.message().await?.and_then(|m| m.body) {
        Some(daemon_message::Body::Registered(_)) => Ok(()),
        other => panic!("expected Registered, got {other:?}"),
    }
}

#[tokio::test]
async fn agents_need_a_join_token() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, _client) = start(dir.path()).await;
    attach(agent_client(&daemon, dir.path()).await)
        .await
        .unwrap();
    let wrong = AgentControlClient::with_interceptor(
        channel(&daemon).await,
        BearerToken::new(Some("a-wrong-join-token-123")).unwrap(),
    );
    let err = attach(wrong).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("join token"), "{err:?}");
    let operator =
        AgentControlClient::with_interceptor(channel(&daemon).await, operator_token(dir.path()));
    assert_eq!(
        attach(operator).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    daemon.shutdown().await.unwrap();
}

#[tokio::test]
async fn configured_token_files_and_insecure_local() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("operators");
    std::fs::write(
        &tokens,
        "# rotate by adding\nold-operator-token-1\nnew-operator-token-2\n",
    )
    .unwrap();
    let (daemon, _) = start_with(dir.path(), |c| {
        c.auth.token_files = vec![tokens.clone()];
    })
    .await;
    list_with(&daemon, Some("old-operator-token-1"))
        .await
        .unwrap();
    list_with(&daemon, Some("new-operator-token-2"))
        .await
        .unwrap();
    daemon.shutdown().await.unwrap();

    let open = tempfile::tempdir().unwrap();
    let (daemon, _) = start_with(open.path(), |c| c.auth.insecure_local = true).await;
    list_with(&daemon, None).await.unwrap();
    daemon.shutdown().await.unwrap();

    let exposed = DaemonConfig {
        data_dir: open.path().to_path_buf(),
        listen: "0.0.0.0:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let mut exposed = exposed;
    exposed.auth.insecure_local = true;
    let err = server::start(&exposed).await.err().expect("refused");
    assert!(
        err.to_string()
            .contains("only allowed when kumod listens on loopback"),
        "{err}"
    );

    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("weak"), "short\n").unwrap();
    let config = DaemonConfig {
        data_dir: bad.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        auth: kumo_daemon::auth::AuthConfig {
            token_files: vec![bad.path().join("weak")],
            ..Default::default()
        },
        ..Default::default()
    };
    let err = server::start(&config).await.err().expect("refused");
    assert!(
        err.to_string().contains("weak") && err.to_string().contains("shorter"),
        "{err}"
    );
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client
/// certificate, written as PEM files into `dir`.
fn write_pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>, name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    };
    leaf(vec!["localhost".into(), "127.0.0.1".into()], "server");
    leaf(vec!["kumo-agent".into()], "client");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
}

async fn tls_list(daemon: &server::DaemonHandle, tls: ClientTls, dir: &Path) -> Result<(), String> {
    let url = format!("https://localhost:{}", daemon.grpc_address.port());
    let channel = endpoint(&url, &tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))?;
    ControlClient::with_interceptor(channel, operator_token(dir))
        .list_functions(ListFunctionsRequest {})
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn tls_with_client_certificates() {
    let pki = tempfile::tempdir().unwrap();
    write_pki(pki.path());
    let p = |name: &str| Some(pki.path().join(name));
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_with_tls(dir.path(), pki.path(), false).await;
    let with_cert = ClientTls {
        ca_file: p("ca.pem"),
        cert_file: p("client.pem"),
        key_file: p("client.key"),
        domain: None,
    };
    tls_list(&daemon, with_cert.clone(), dir.path())
        .await
        .unwrap();
    let without_cert = ClientTls {
        ca_file: p("ca.pem"),
        ..Default::default()
    };
    let refused = tls_list(&daemon, without_cert.clone(), dir.path()).await;
    assert!(refused.is_err(), "a client without a certificate got in");
    // A certificate kumod's CA did not sign is refused too.
    let other = tempfile::tempdir().unwrap();
    write_pki(other.path());
    let foreign = ClientTls {
        ca_file: p("ca.pem"),
        cert_file: Some(other.path().join("client.pem")),
        key_file: Some(other.path().join("client.key")),
        domain: None,
    };
    assert!(tls_list(&daemon, foreign, dir.path()).await.is_err());
    // Plain HTTP/2 to a TLS port fails.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{}", daemon.grpc_address))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plain {
        let err = ControlClient::with_interceptor(channel, operator_token(dir.path()))
            .list_functions(ListFunctionsRequest {})
            .await
            .unwrap_err();
        assert_ne!(err.code(), Code::Ok);
    }
    // Agents join over TLS only with a certificate too.
    let url = format!("https://localhost:{}", daemon.grpc_address.port());
    let join = |tls: ClientTls| {
        let url = url.clone();
        let dir = dir.path().to_path_buf();
        async move {
            let channel = endpoint(&url, &tls)
                .unwrap()
                .connect()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let token = std::fs::read_to_string(dir.join("agent.token")).unwrap();
            let agent = AgentControlClient::with_interceptor(
                channel,
                BearerToken::new(Some(token.trim())).unwrap(),
            );
            attach(agent).await.map_err(|e| format!("{e:?}"))
        }
    };
    join(with_cert.clone()).await.unwrap();
    assert!(
        join(without_cert.clone()).await.is_err(),
        "an agent without a certificate joined"
    );
    // The server still serves certified clients after all that.
    tls_list(&daemon, with_cert, dir.path()).await.unwrap();
    daemon.shutdown().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let daemon = start_with_tls(dir.path(), pki.path(), true).await;
    tls_list(&daemon, without_cert, dir.path()).await.unwrap();
    daemon.shutdown().await.unwrap();
}

async fn start_with_tls(dir: &Path, pki: &Path, optional: bool) -> server::DaemonHandle {
    let mut config = DaemonConfig {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    config.tls = kumo_daemon::tls::TlsConfig {
        cert_file: Some(pki.join("server.pem")),
        key_file: Some(pki.join("server.key")),
        client_ca_file: Some(pki.join("ca.pem")),
        client_cert_optional: optional,
    };
    server::start(&config).await.unwrap()
}
