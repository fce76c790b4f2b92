//! Where a Lambda runtime finds the Runtime API: `AWS_LAMBDA_RUNTIME_API`,
//! `127.0.0.1:9001` inside the sandbox's own network namespace (an ephemeral
//! loopback port with the host network). The sandbox knows nothing of
//! Lambda; this layer hands it these as a generic [`Endpoint`].

use std::net::{Ipv4Addr, SocketAddr};

use crate::sandbox::{Endpoint, Sandbox, SandboxError, SandboxSettings, SandboxSpec};

/// The variable a Lambda runtime reads the Runtime API's address from.
pub const RUNTIME_API_ENV: &str = "AWS_LAMBDA_RUNTIME_API";

/// The Runtime API's address inside a sandbox with a private network.
pub const RUNTIME_API_ADDRESS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9001);

/// The Runtime API as a sandbox endpoint.
pub fn runtime_api_endpoint() -> Endpoint {
    Endpoint {
        env_var: RUNTIME_API_ENV.to_owned(),
        address: RUNTIME_API_ADDRESS,
    }
}

impl Sandbox {
    /// Starts a sandbox for a Lambda runtime: [`Sandbox::start_serving`] the
    /// Runtime API endpoint ([`runtime_api_endpoint`]).
    pub async fn start(
        settings: &SandboxSettings,
        spec: SandboxSpec,
    ) -> Result<Sandbox, SandboxError> {
        Sandbox::start_serving(settings, spec, &runtime_api_endpoint()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_api_is_at_lambdas_address() {
        let endpoint = runtime_api_endpoint();
        assert_eq!(endpoint.env_var, "AWS_LAMBDA_RUNTIME_API");
        assert_eq!(endpoint.address.to_string(), "127.0.0.1:9001");
    }
}
