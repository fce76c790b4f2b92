//! The `outbound` network mode: each instance keeps a private network
//! namespace (Runtime API on its own loopback) and gets a veth link to an
//! agent-managed bridge, with NAT for connections out. Kernel facilities
//! only: veth, bridge (ports isolated from each other), nftables.
//!
//! Policy (the `inet kumo_<bridge>` table, see [`ruleset`]):
//! - nothing connects into an instance: not the host (`output` drops new
//!   connections to the bridge), not other instances (isolated bridge ports
//!   at layer 2; `forward` drops anything routed back onto the bridge);
//! - an instance reaches none of the host's own addresses (the gateway
//!   included, so no kumod or agent port) — `input` drops everything from the
//!   bridge except replies and DNS to the configured `outbound_dns` servers;
//! - `169.254.0.0/16` (the metadata address) is dropped;
//! - no IPv6: the instance's `eth0` has IPv6 disabled (no address, not
//!   even link-local) and so has the bridge; allow-list entries are IPv4
//!   (IPv6 ones are refused when the function is created);
//! - with an egress allow-list (see [`EgressRule`]), an instance reaches
//!   only what the list names — host addresses and the metadata address
//!   included, when named — through a per-instance chain keyed by its
//!   source address, which it cannot change (no `CAP_NET_ADMIN`/`NET_RAW`).
//!
//! Per-instance set-up costs one process (`ip -batch`, run from a thread
//! that made the new namespace, so the inside is configured by the same
//! call) plus a few ioctls; with an allow-list, one `nft -f`.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use super::egress::EgressRule;

/// An outbound-network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The configuration is unusable.
    #[error("outbound network: {0}")]
    Config(String),
    /// A command (`ip`, `nft`) or system call failed.
    #[error("outbound network: {op}: {message}")]
    Op {
        /// What was being done.
        op: String,
        /// What went wrong.
        message: String,
    },
    /// Every address of the subnet is in use.
    #[error("outbound network: no free address left in {0}")]
    Exhausted(String),
}

fn op_err(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> OutboundError {
    let op = op.into();
    move |e| OutboundError::Op {
        op,
        message: e.to_string(),
    }
}

/// Agent-wide outbound-network settings (`[agent] outbound_*`).
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// The instances' subnet, e.g. `10.213.0.0/16`; the bridge gets its first
    /// address (the gateway).
    pub subnet: String,
    /// Name of the bridge (also names the nftables table).
    pub bridge: String,
    /// DNS servers written to the sandbox's `/etc/resolv.conf`; empty: the
    /// host's `/etc/resolv.conf` is shown unchanged.
    pub dns: Vec<Ipv4Addr>,
    /// Where the generated `resolv.conf` is kept.
    pub state_dir: PathBuf,
}

/// The bridge, NAT and filter rules shared by every outbound instance, and
/// the address allocator. Set up on first use ([`Outbound::ensure_ready`]).
#[derive(Debug)]
pub struct Outbound {
    settings: OutboundSettings,
    network: u32,
    prefix: u8,
    gateway: Ipv4Addr,
    used: Mutex<BTreeSet<u32>>,
    ready: Mutex<bool>,
}

/// One instance's link: its address, host-side veth and rules. Released
/// (link and rules deleted, address freed) when dropped.
#[derive(Debug)]
pub struct OutboundLink {
    outbound: Arc<Outbound>,
    address: Ipv4Addr,
    veth: String,
    chain: Option<String>,
}

/// Parses `a.b.c.d/p` into the network address and prefix length.
pub fn parse_subnet(text: &str) -> Result<(u32, u8), OutboundError> {
    let bad =
        || OutboundError::Config(format!("'{text}' is not an IPv4 subnet like 10.213.0.0/16"));
    let (ip, prefix) = text.split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if !(8..=29).contains(&prefix) {
        return Err(OutboundError::Config(format!(
            "subnet {text}: the prefix must be between /8 and /29"
        )));
    }
    let mask = u32::MAX << (32 - prefix);
    Ok((u32::from(ip) & mask, prefix))
}

impl Outbound {
    /// Checks the settings; touches nothing on the host yet.
    pub fn new(settings: OutboundSettings) -> Result<Outbound, OutboundError> {
        let (network, prefix) = parse_subnet(&settings.subnet)?;
        if settings.bridge.is_empty()
            || settings.bridge.len() > 12
            || !settings
                .bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(OutboundError::Config(format!(
                "bridge name '{}' must be 1-12 letters, digits, '-' or '_'",
                settings.bridge
            )));
        }
        Ok(Outbound {
            gateway: Ipv4Addr::from(network + 1),
            settings,
            network,
            prefix,
            used: Mutex::new(BTreeSet::new()),
            ready: Mutex::new(false),
        })
    }

    /// The bridge's address: the instances' default gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    fn table(&self) -> String {
        format!("kumo_{}", self.settings.bridge.replace('-', "_"))
    }

    /// The `resolv.conf` to show in sandboxes, if DNS servers are configured.
    pub fn resolv_conf(&self) -> Option<PathBuf> {
        (!self.settings.dns.is_empty())
            .then(|| self.settings.state_dir.join("outbound-resolv.conf"))
    }

    /// Creates (or re-creates) the bridge, enables forwarding, loads the
    /// rules and removes links left behind by an earlier agent — once.
    pub fn ensure_ready(&self) -> Result<(), OutboundError> {
        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        if *ready {
            return Ok(());
        }
        let bridge = &self.settings.bridge;
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
            .map_err(op_err("enabling /proc/sys/net/ipv4/ip_forward"))?;
        let mut script = String::new();
        for leftover in ports_of(bridge) {
            script.push_str(&format!("link del {leftover}\n"));
        }
        // The bridge outlives agents (a restarted one finds it in place).
        if !Path::new("/sys/class/net").join(bridge).exists() {
            script.push_str(&format!("link add {bridge} type bridge\n"));
        }
        script.push_str(&format!(
            "addr replace {}/{} dev {bridge}\nlink set {bridge} up\n",
            self.gateway, self.prefix
        ));
        run_with_input(
            Command::new("ip").args(["-force", "-batch", "-"]),
            &script,
            "ip: creating the bridge",
        )?;
        // No IPv6 on the bridge: instances must not find the host there.
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6"),
            "1",
        );
        if let Some(path) = self.resolv_conf() {
            let text: String = self
                .settings
                .dns
                .iter()
                .map(|ip| format!("nameserver {ip}\n"))
                .collect();
            std::fs::create_dir_all(&self.settings.state_dir)
                .and_then(|()| std::fs::write(&path, text))
                .map_err(op_err(format!("writing {}", path.display())))?;
        }
        let ruleset = ruleset(
            &self.table(),
            bridge,
            &format!("{}/{}", Ipv4Addr::from(self.network), self.prefix),
            &self.settings.dns,
        );
        run_with_input(
            Command::new("nft").args(["-f", "-"]),
            &ruleset,
            "nft: loading the rules",
        )?;
        *ready = true;
        Ok(())
    }

    /// At agent start: if the bridge is left from an earlier run, removes
    /// its leftover links and reloads the rules now (otherwise nothing is
    /// touched until the first outbound instance). Errors are logged.
    pub fn sweep_leftovers(&self) {
        if Path::new("/sys/class/net")
            .join(&self.settings.bridge)
            .exists()
        {
            if let Err(e) = self.ensure_ready() {
                tracing::warn!(error = %e, "sweeping the outbound network's leftovers");
            }
        }
    }

    /// Removes the rules and the bridge (e.g. in tests); links go with it.
    pub fn remove(&self) {
        let table = self.table();
        let _ = run_with_input(
            Command::new("nft").args(["-f", "-"]),
            &format!("table inet {table}\ndelete table inet {table}\n"),
            "nft: removing the rules",
        );
        let _ = run_with_input(
            Command::new("ip").args(["-force", "-batch", "-"]),
            &format!("link del {}\n", self.settings.bridge),
            "ip: removing the bridge",
        );
        *self.ready.lock().unwrap_or_else(|e| e.into_inner()) = false;
    }

    fn allocate(&self) -> Result<Ipv4Addr, OutboundError> {
        let size = 1u32 << (32 - self.prefix);
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        // .0 network, .1 gateway, last = broadcast.
        let free = (2..size - 1)
            .map(|offset| self.network + offset)
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| OutboundError::Exhausted(self.settings.subnet.clone()))?;
        used.insert(free);
        Ok(Ipv4Addr::from(free))
    }

    fn free(&self, address: Ipv4Addr) {
        self.used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&u32::from(address));
    }

    /// Creates a network namespace linked to the bridge, with `allow` as its
    /// egress allow-list (empty: anything but the host and the metadata
    /// address). Returns the namespace (for the sandbox init to join) and
    /// the link, which undoes everything when dropped. Blocking.
    pub fn attach(
        self: &Arc<Self>,
        allow: &[EgressRule],
    ) -> Result<(OwnedFd, OutboundLink), OutboundError> {
        self.ensure_ready()?;
        let address = self.allocate()?;
        let mut link = OutboundLink {
            outbound: self.clone(),
            address,
            veth: format!("kv{:08x}", u32::from(address)),
            chain: None,
        };
        let inside = format!(
            "link add eth0 type veth peer name {veth} netns {agent}\naddr add {address}/{prefix} dev eth0\nlink set lo up\nlink set eth0 up\nroute add default via {gateway} dev eth0 onlink\n",
            veth = link.veth,
            agent = std::process::id(),
            prefix = self.prefix,
            gateway = self.gateway,
        );
        let namespace = std::thread::scope(|scope| {
            scope
                .spawn(|| -> Result<OwnedFd, OutboundError> {
                    // This thread alone moves into the new namespace; `ip`
                    // inherits it and puts the veth's peer into the agent's.
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| op_err("unshare(CLONE_NEWNET)")(std::io::Error::from(e)))?;
                    let namespace = std::fs::File::open("/proc/thread-self/ns/net")
                        .map_err(op_err("opening /proc/thread-self/ns/net"))?;
                    disable_ipv6_on_new_links()?;
                    run_with_input(
                        Command::new("ip").args(["-batch", "-"]),
                        &inside,
                        "ip: creating the veth link",
                    )?;
                    Ok(OwnedFd::from(namespace))
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(OutboundError::Config(
                        "the namespace thread panicked".into(),
                    ))
                })
        })?;
        super::net::join_bridge(&link.veth, &self.settings.bridge).map_err(op_err(format!(
            "attaching {} to {}",
            link.veth, self.settings.bridge
        )))?;
        link.restrict(allow)?;
        Ok((namespace, link))
    }
}

impl OutboundLink {
    /// The instance's address on the bridge.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// Limits the link to `allow` (no-op when empty): a chain keyed by the
    /// link's source address, so it can be applied from the host at any
    /// time — at start, or when a pre-started sandbox is claimed, before the
    /// function's code runs. A link is restricted once. Blocking.
    pub fn restrict(&mut self, allow: &[EgressRule]) -> Result<(), OutboundError> {
        if allow.is_empty() {
            return Ok(());
        }
        if self.chain.is_some() {
            return Err(OutboundError::Config(format!(
                "the link of {} already has an allow-list",
                self.address
            )));
        }
        let address = self.address;
        let chain = format!("i_{:08x}", u32::from(address));
        let table = self.outbound.table();
        let mut script = format!("add chain inet {table} {chain}\n");
        for rule in allow {
            script.push_str(&format!(
                "add rule inet {table} {chain} {} accept\n",
                rule.nft_match()
            ));
        }
        script.push_str(&format!(
            "add rule inet {table} {chain} drop\nadd element inet {table} egress {{ {address} : jump {chain} }}\n"
        ));
        self.chain = Some(chain);
        run_with_input(
            Command::new("nft").args(["-f", "-"]),
            &script,
            "nft: adding the allow-list",
        )
    }
}

impl Drop for OutboundLink {
    fn drop(&mut self) {
        let outbound = &self.outbound;
        if let Some(chain) = &self.chain {
            let table = outbound.table();
            let script = format!(
                "delete element inet {table} egress {{ {} }}\nflush chain inet {table} {chain}\ndelete chain inet {table} {chain}\n",
                self.address
            );
            if let Err(e) = run_with_input(
                Command::new("nft").args(["-f", "-"]),
                &script,
                "nft: removing the allow-list",
            ) {
                tracing::warn!(error = %e, "outbound clean-up");
            }
        }
        if Path::new("/sys/class/net").join(&self.veth).exists() {
            if let Err(e) = run_with_input(
                Command::new("ip").args(["-force", "-batch", "-"]),
                &format!("link del {}\n", self.veth),
                "ip: deleting the veth link",
            ) {
                tracing::warn!(error = %e, "outbound clean-up");
            }
        }
        outbound.free(self.address);
    }
}

/// In a new network namespace (this thread's): links made from now on get
/// no IPv6 at all — no address, not even link-local, so `eth0` sends no
/// IPv6 anywhere (the allow-list and the rules are IPv4; the bridge has
/// IPv6 disabled too). `lo` keeps `::1`. Nothing to do where the kernel has
/// no IPv6.
fn disable_ipv6_on_new_links() -> Result<(), OutboundError> {
    const DEFAULT: &str = "/proc/sys/net/ipv6/conf/default/disable_ipv6";
    match std::fs::write(DEFAULT, "1") {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(op_err(format!("writing {DEFAULT}"))(e))
        }
        _ => Ok(()),
    }
}

/// Names of the interfaces attached to `bridge`.
fn ports_of(bridge: &str) -> Vec<String> {
    std::fs::read_dir(Path::new("/sys/class/net").join(bridge).join("brif"))
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `command` with `input` on stdin; a non-zero exit is an error
/// carrying its stderr.
fn run_with_input(command: &mut Command, input: &str, op: &str) -> Result<(), OutboundError> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(op_err(op))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).map_err(op_err(op))?;
    }
    let output = child.wait_with_output().map_err(op_err(op))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(OutboundError::Op {
            op: op.to_string(),
            message: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })
    }
}

/// The nftables table of one bridge (see the module documentation).
pub fn ruleset(table: &str, bridge: &str, subnet: &str, dns: &[Ipv4Addr]) -> String {
    let dns_rules = if dns.is_empty() {
        String::new()
    } else {
        let list = dns
            .iter()
            .map(|ip| ip.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "    iifname \"{bridge}\" ip daddr {{ {list} }} meta l4proto {{ tcp, udp }} th dport 53 accept\n"
        )
    };
    format!(
        "table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n\
  map egress {{ type ipv4_addr : verdict; }}\n\
  chain input {{\n    type filter hook input priority filter - 5; policy accept;\n\
    iifname \"{bridge}\" ct state established,related accept\n\
{dns_rules}\
    iifname \"{bridge}\" ip saddr vmap @egress\n\
    iifname \"{bridge}\" drop\n  }}\n\
  chain forward {{\n    type filter hook forward priority filter - 5; policy accept;\n\
    oifname \"{bridge}\" ct state established,related accept\n\
    oifname \"{bridge}\" drop\n\
    iifname \"{bridge}\" ip saddr vmap @egress\n\
    iifname \"{bridge}\" ip daddr 169.254.0.0/16 drop\n\
    iifname \"{bridge}\" ip saddr {subnet} accept\n\
    iifname \"{bridge}\" drop\n  }}\n\
  chain output {{\n    type filter hook output priority filter - 5; policy accept;\n\
    oifname \"{bridge}\" ct state established,related accept\n\
    oifname \"{bridge}\" drop\n  }}\n\
  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n\
    ip saddr {subnet} oifname != \"{bridge}\" masquerade\n  }}\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_are_masked() {
        assert_eq!(
            parse_subnet("10.213.7.9/16").unwrap(),
            (u32::from(Ipv4Addr::new(10, 213, 0, 0)), 16)
        );
        assert!(parse_subnet("10.213.0.0").is_err());
        assert!(parse_subnet("10.213.0.0/31").is_err());
        assert!(parse_subnet("nonsense/16").is_err());
    }

    #[test]
    fn addresses_are_allocated_and_reused() {
        let outbound = Outbound::new(OutboundSettings {
            subnet: "10.9.0.0/29".into(),
            bridge: "kt0".into(),
            dns: vec![],
            state_dir: PathBuf::from("/nonexistent"),
        })
        .unwrap();
        assert_eq!(outbound.gateway(), Ipv4Addr::new(10, 9, 0, 1));
        let all: Vec<_> = (0..5).map(|_| outbound.allocate().unwrap()).collect();
        assert_eq!(all[0], Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(all[4], Ipv4Addr::new(10, 9, 0, 6));
        assert!(matches!(
            outbound.allocate(),
            Err(OutboundError::Exhausted(_))
        ));
        outbound.free(all[2]);
        assert_eq!(outbound.allocate().unwrap(), all[2]);
    }

    #[test]
    fn bad_bridge_names_are_refused() {
        for name in ["", "a bridge", "averyverylongname"] {
            let settings = OutboundSettings {
                subnet: "10.9.0.0/24".into(),
                bridge: name.into(),
                dns: vec![],
                state_dir: PathBuf::new(),
            };
            assert!(Outbound::new(settings).is_err(), "{name:?}");
        }
    }

    #[test]
    fn the_ruleset_names_the_dns_servers() {
        let rules = ruleset(
            "kumo_kt0",
            "kt0",
            "10.9.0.0/24",
            &[Ipv4Addr::new(10, 9, 0, 1)],
        );
        assert!(
            rules.contains("ip daddr { 10.9.0.1 } meta l4proto { tcp, udp } th dport 53 accept")
        );
        assert!(rules.contains("ip saddr 10.9.0.0/24 oifname != \"kt0\" masquerade"));
    }
}
