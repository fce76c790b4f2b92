//! A bridge and subnet for the `outbound` network mode, private to one test
//! process, for agents under test (`outbound_bridge`, `outbound_subnet`).

use std::net::Ipv4Addr;

/// A bridge and subnet private to this test process, removed on drop.
pub struct TestNetwork {
    /// The bridge's name.
    pub bridge: String,
    /// Its /24.
    pub subnet: String,
    /// The bridge's address (the instances' gateway).
    pub gateway: Ipv4Addr,
}

impl TestNetwork {
    /// `10.<second>.<pid-derived>.0/24`: tests in one run pass distinct
    /// `second` octets, so concurrent tests never overlap.
    pub fn new(second: u8) -> TestNetwork {
        let pid = std::process::id();
        let third = (pid % 250) as u8;
        TestNetwork {
            bridge: format!("kt{second}x{}", pid % 100_000),
            subnet: format!("10.{second}.{third}.0/24"),
            gateway: Ipv4Addr::new(10, second, third, 1),
        }
    }

    /// The `[agent]` lines that use this network (`dns`: the gateway as
    /// the sandboxes' DNS server).
    pub fn agent_settings(&self, dns: bool) -> String {
        let mut settings = format!(
            "outbound_bridge = \"{}\"\noutbound_subnet = \"{}\"\n",
            self.bridge, self.subnet
        );
        if dns {
            settings.push_str(&format!("outbound_dns = [\"{}\"]\n", self.gateway));
        }
        settings
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        let table = format!("kumo_{}", self.bridge);
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "inet", &table])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}
