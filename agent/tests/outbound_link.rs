//! The `outbound` mode's per-instance link on the real kernel: a namespace
//! with `eth0` addressed in the subnet and a default route, its host end an
//! isolated port of the bridge, everything gone when the link is dropped;
//! a later agent reuses the bridge it finds in place.
//! Prints the mean set-up time. Needs root (skips otherwise, fails instead
//! when KUMO_REQUIRE_ROOT_TESTS=1).

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kumo_agent::sandbox::egress::EgressRule;
use kumo_agent::sandbox::outbound::{Outbound, OutboundSettings};

fn root_or_skip() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    assert!(
        std::env::var("KUMO_REQUIRE_ROOT_TESTS").as_deref() != Ok("1"),
        "KUMO_REQUIRE_ROOT_TESTS=1 but the outbound tests are not running as root"
    );
    eprintln!("skipping: outbound tests need root");
    false
}

/// `ip ARGS…` run inside the namespace open at `fd` of this process.
fn ip_in(fd: i32, args: &[&str]) -> String {
    let output = Command::new("nsenter")
        .arg(format!("--net=/proc/{}/fd/{fd}", std::process::id()))
        .arg("ip")
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One agent's view of the outbound network on `bridge`, subnet
/// `10.214.<third>.0/24`.
fn agent_network(bridge: &str, third: u8, state_dir: &std::path::Path) -> Arc<Outbound> {
    Arc::new(
        Outbound::new(OutboundSettings {
            subnet: format!("10.214.{third}.0/24"),
            bridge: bridge.to_string(),
            dns: vec![],
            state_dir: state_dir.to_path_buf(),
        })
        .unwrap(),
    )
}

#[test]
fn links_are_isolated_bridge_ports_and_vanish_when_dropped() {
    if !root_or_skip() {
        return;
    }
    let pid = std::process::id();
    let bridge = format!("ko{}", pid % 100_000);
    let third = (pid % 200) as u8 + 20;
    let dir = tempfile::tempdir().unwrap();
    let outbound = agent_network(&bridge, third, dir.path());
    outbound.ensure_ready().unwrap();
    let allow: Vec<EgressRule> = vec!["198.51.100.0/24:443".parse().unwrap()];
    let (namespace, link) = outbound.attach(&allow).unwrap();
    let veth = format!("kv{:08x}", u32::from(link.address()));
    let sys = PathBuf::from("/sys/class/net").join(&veth);
    assert_eq!(
        std::fs::read_to_string(sys.join("brport/isolated"))
            .unwrap()
            .trim(),
        "1"
    );
    assert_eq!(
        std::fs::read_link(sys.join("master"))
            .unwrap()
            .file_name()
            .unwrap(),
        bridge.as_str()
    );
    let addresses = ip_in(
        namespace.as_raw_fd(),
        &["-4", "-o", "addr", "show", "dev", "eth0"],
    );
    assert!(
        addresses.contains(&format!("{}/24", link.address())),
        "{addresses}"
    );
    let routes = ip_in(namespace.as_raw_fd(), &["route", "show", "default"]);
    assert!(
        routes.contains(&format!("via {}", outbound.gateway())),
        "{routes}"
    );
    let table = format!("kumo_{bridge}");
    let rules = Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout).into_owned();
    assert!(
        rules.contains("198.51.100.0/24") && rules.contains("th dport 443"),
        "{rules}"
    );
    drop(namespace);
    drop(link);
    assert!(!sys.exists(), "the veth outlived its link");
    let rules = Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&rules.stdout).contains("198.51.100.0/24"));

    // Set-up cost, without an allow-list (the common case).
    let rounds = 20;
    let mut total = Duration::ZERO;
    for _ in 0..rounds {
        let started = Instant::now();
        let attached = outbound.attach(&[]).unwrap();
        total += started.elapsed();
        drop(attached);
    }
    eprintln!(
        "outbound link set-up: {:?} on average over {rounds}",
        total / rounds
    );
    // A later agent (a new `Outbound` on the same bridge, e.g. after a
    // restart) finds the bridge in place, with a link left behind.
    let (leftover_namespace, leftover) = outbound.attach(&[]).unwrap();
    let leftover_veth = format!("kv{:08x}", u32::from(leftover.address()));
    // Killed without clean-up: the link stays (its namespace still open).
    std::mem::forget(leftover);
    let successor = agent_network(&bridge, third, dir.path());
    successor.ensure_ready().unwrap();
    assert!(
        !PathBuf::from("/sys/class/net")
            .join(&leftover_veth)
            .exists(),
        "the predecessor's link was not swept"
    );
    let (namespace, link) = successor.attach(&[]).unwrap();
    let routes = ip_in(namespace.as_raw_fd(), &["route", "show", "default"]);
    assert!(routes.contains("via"), "{routes}");
    drop((namespace, link, leftover_namespace));
    successor.remove();
    assert!(!PathBuf::from("/sys/class/net").join(&bridge).exists());
}
