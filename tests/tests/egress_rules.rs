//! The `outbound` mode's rules beyond IPv4 reachability: a sandbox has no
//! IPv6 at all (only `lo`'s `::1`; it can neither connect to the host's
//! IPv6 addresses nor send link-local multicast), and allow-list entries
//! that are not IPv4 `CIDR[:PORT]` — IPv6 ones included — are refused at
//! create and update with a clear error, changing nothing.

use std::net::TcpListener;

use kumo_tests::network::TestNetwork;
use kumo_tests::{package_dir, root_or_skip, Kumo};

/// `ipv6`: the interfaces with an IPv6 address, TCP connections to
/// `targets`, and a link-local multicast datagram on `eth0`.
const PROBE: &str = r#"
import socket

def handler(event, context):
    try:
        lines = open("/proc/net/if_inet6").read().splitlines()
    except OSError:
        lines = []
    tries = []
    for host, port in event.get("targets", []):
        try:
            socket.create_connection((host, port), timeout=1.0).close()
            tries.append("connected")
        except OSError as e:
            tries.append(str(e))
    try:
        u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        u.sendto(b"x", ("ff02::1", 9, 0, socket.if_nametoindex("eth0")))
        multicast = "sent"
    except OSError as e:
        multicast = str(e)
    return {"interfaces": sorted(l.split()[-1] for l in lines), "tries": tries, "multicast": multicast}
"#;

/// The host's own IPv6 addresses of global scope (not loopback).
fn host_global_ipv6() -> Vec<String> {
    std::fs::read_to_string("/proc/net/if_inet6")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (hex, scope, device) = (fields.first()?, fields.get(3)?, fields.get(5)?);
            (*scope == "00" && *device != "lo").then(|| {
                let groups: Vec<String> =
                    (0..8).map(|i| hex[i * 4..i * 4 + 4].to_string()).collect();
                groups.join(":")
            })
        })
        .collect()
}

#[test]
fn an_outbound_sandbox_sends_no_ipv6_anywhere() {
    if !root_or_skip() {
        return;
    }
    let network = TestNetwork::new(221);
    let kumo = Kumo::start_with(&network.agent_settings(false));
    kumo.create_python("six", PROBE, &["--network", "outbound"]);
    // A host service on every IPv6 address (where the host has IPv6).
    let listener = TcpListener::bind("[::]:0").ok();
    let port = listener
        .as_ref()
        .map_or(80, |l| l.local_addr().unwrap().port());
    let mut targets: Vec<serde_json::Value> = host_global_ipv6()
        .into_iter()
        .map(|a| serde_json::json!([a, port]))
        .collect();
    targets.push(serde_json::json!(["2001:db8::1", 80]));
    targets.push(serde_json::json!(["64:ff9b::a9fe:a9fe", 80]));
    let event = serde_json::json!({"targets": targets}).to_string();
    let seen = kumo.invoke_ok("six", &event);
    let interfaces = seen["interfaces"].as_array().unwrap();
    assert!(
        interfaces.iter().all(|i| i == "lo"),
        "only loopback may have an IPv6 address: {seen}"
    );
    assert_ne!(seen["multicast"], "sent", "IPv6 left on eth0: {seen}");
    for attempt in seen["tries"].as_array().unwrap() {
        assert_ne!(attempt, "connected", "an IPv6 connection succeeded: {seen}");
    }
    drop(listener);
}

#[test]
fn bad_egress_allow_entries_are_refused_at_create_and_update() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let code = package_dir(&[("lambda_function.py", PROBE)]);
    let code = code.path().display().to_string();
    let create = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "function",
            "create",
            name,
            "--runtime",
            "python3",
            "--handler",
            "lambda_function.handler",
            "--code",
            &code,
        ];
        args.extend_from_slice(extra);
        kumo.cli(&args)
    };
    for (entry, says) in [
        ("2001:db8::/32", "IPv6"),
        ("[2001:db8::1]:443", "IPv6"),
        ("::/0", "IPv6"),
        ("10.0.0.0/33", "prefix"),
        ("10.0.0.1:0", "port"),
        ("10.0.0.1:70000", "port"),
        ("300.1.1.1", "IPv4"),
        ("example.com:443", "IPv4"),
        ("10.0.0.0/8:443:1", "port"),
        ("", "egress"),
    ] {
        let run = create(
            "refused",
            &["--network", "outbound", "--egress-allow", entry],
        );
        assert_eq!(run.code, 2, "{entry:?} was accepted: {run:?}");
        assert!(
            run.stderr.starts_with("error:") && run.stderr.contains(says),
            "{entry:?}: unclear error: {}",
            run.stderr
        );
    }
    assert_ne!(kumo.cli(&["function", "get", "refused"]).code, 0);
    // An allow-list needs the outbound mode.
    let run = create("refused", &["--egress-allow", "10.0.0.0/8"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("outbound"), "{}", run.stderr);
    // An update with a bad entry changes nothing.
    let made = create(
        "kept",
        &[
            "--network",
            "outbound",
            "--egress-allow",
            "192.0.2.0/24:443",
        ],
    );
    assert_eq!(made.code, 0, "{made:?}");
    let run = kumo.cli(&[
        "function",
        "update",
        "kept",
        "--egress-allow",
        "2001:db8::1",
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("IPv6"), "{}", run.stderr);
    assert_eq!(
        kumo.function("kept")["egress_allow"],
        serde_json::json!(["192.0.2.0/24:443"])
    );
}
