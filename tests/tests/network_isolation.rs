//! Network isolation of the `outbound` and `host` modes through the real
//! platform: the Runtime-API theft attack (scan the TCP tables, `GET
//! /next` every listening port, post a forged response) gets nothing in
//! either mode, and an `outbound` instance reaches exactly what its
//! allow-list names — never the host, kumod, another instance or the
//! metadata address — with DNS from the configured resolver; and
//! pre-started outbound sandboxes get their allow-list at the claim (IPv6
//! and bad allow-list entries: `egress_rules.rs`).
//!
//! Each test gives its agent its own bridge and /24 (from the process id;
//! a second octet per test),
//! and removes both at the end. Traffic goes only to loopback, to that
//! bridge's addresses, and (dropped by the rules) to 169.254.169.254.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kumo_tests::network::TestNetwork;
use kumo_tests::{root_or_skip, Kumo, LOG_CLAIMS};

/// The probe function: `attack`, `connect`, `resolve`, `listen`, `secret`.
const PROBE: &str = r#"
import json, os, socket, threading, time

def listening_ports():
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)

def http(host, port, method, path, body=b"", hold=4.0):
    try:
        s = socket.create_connection((host, port), timeout=1.0)
    except OSError as e:
        return {"connected": False, "error": str(e)}
    s.settimeout(hold)
    request = ("%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (method, path, len(body))).encode() + body
    data = b""
    try:
        s.sendall(request)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        return {"connected": True, "error": str(e), "data": data.decode("latin-1")}
    finally:
        s.close()
    return {"connected": True, "data": data.decode("latin-1")}

def can_connect(host, port):
    try:
        socket.create_connection((host, port), timeout=1.0).close()
        return True
    except OSError:
        return False

NEXT = "/2018-06-01/runtime/invocation/next"

def request_ids(data):
    return [l.split(":", 1)[1].strip() for l in data.split("\r\n") if l.lower().startswith("lambda-runtime-aws-request-id:")]

def steal(host, port, hold):
    # Keep a /next waiting on the port until the hold ends: retried while
    # the owner's own /next is parked (403), so the next event is ours.
    deadline = time.time() + hold
    result = None
    while time.time() < deadline:
        result = http(host, port, "GET", NEXT, hold=max(0.1, deadline - time.time()))
        data = result.get("data", "")
        ids = request_ids(data)
        if ids:
            post = http(host, port, "POST", "/2018-06-01/runtime/invocation/%s/response" % ids[0], b'{"forged": true}', hold=2.0)
            return {"stolen": ids[0], "event": data, "post": post}
        if data.startswith("HTTP/1.1 403") and "InvalidStateTransition" in data:
            time.sleep(0.05)
            continue
        break
    if result and result["connected"] and not result.get("data", "").startswith("HTTP/"):
        # Taken and closed unanswered: try a forged response anyway.
        result["post"] = http(host, port, "POST", "/2018-06-01/runtime/invocation/00000000-0000-0000-0000-000000000000/response", b'{"forged": true}', hold=2.0)
    return result

def attack(event):
    own = int(os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)[1])
    targets = [["127.0.0.1", p] for p in listening_ports() if p != own]
    targets += [[event["gateway"], p] for p in event.get("gateway_ports", [])]
    results = [None] * len(targets)
    def run(i, host, port):
        results[i] = steal(host, port, event["hold"])
    threads = [threading.Thread(target=run, args=(i, h, p)) for i, (h, p) in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stolen = [r for r in results if r and "stolen" in r]
    posts = [r["post"] for r in results if r and "post" in r]
    return {"targets": targets, "results": results, "stolen": stolen, "posts": posts}

def handler(event, context):
    action = event.get("action")
    if action == "attack":
        return attack(event)
    if action == "connect":
        return {"connects": [can_connect(h, p) for h, p in event["targets"]]}
    if action == "resolve":
        try:
            return {"address": socket.gethostbyname(event["name"])}
        except OSError as e:
            return {"error": str(e)}
    if action == "listen":
        server = socket.socket()
        server.bind(("0.0.0.0", event["port"]))
        server.listen(16)
        me = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        me.connect((event["gateway"], 9))
        address = me.getsockname()[0]
        http(event["gateway"], event["report_port"], "POST", "/", json.dumps({"address": address}).encode(), hold=2.0)
        server.settimeout(event["hold"])
        accepted = 0
        try:
            while True:
                conn, _ = server.accept()
                accepted += 1
                conn.close()
        except OSError:
            pass
        return {"address": address, "accepted": accepted, "self": can_connect(address, event["port"])}
    if action == "secret":
        time.sleep(event.get("sleep", 0))
        return {"secret": event["secret"], "answered_by": "victim"}
    return {"ok": True}
"#;

/// A kumod whose agent uses a test network of its own (see [`TestNetwork`];
/// `dns`: the gateway as DNS server); `None` when the test must skip.
fn outbound_kumo(second: u8, dns: bool) -> Option<(TestNetwork, Kumo)> {
    if !root_or_skip() {
        return None;
    }
    let network = TestNetwork::new(second);
    let kumo = Kumo::start_with(&network.agent_settings(dns));
    Some((network, kumo))
}

fn create_probe(kumo: &Kumo, name: &str, extra: &[&str]) {
    let mut args = vec!["--timeout", "30"];
    args.extend_from_slice(extra);
    kumo.create_python(name, PROBE, &args);
}

/// A probe in the `outbound` mode allowed to reach only `destination`.
fn create_limited_probe(kumo: &Kumo, name: &str, destination: &str) {
    create_probe(
        kumo,
        name,
        &["--network", "outbound", "--egress-allow", destination],
    );
}

/// A host service listening on every address, and its port.
fn listen_everywhere() -> (TcpListener, u16) {
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Whether a TCP connection to `address` succeeds within a second.
fn connects(address: SocketAddr) -> bool {
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

/// A tiny HTTP server recording request bodies; answers `ok`.
fn http_recorder(ip: Ipv4Addr) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind((ip, 0)).expect("bind the test HTTP server");
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&data);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        kept.lock().unwrap().push(body.to_string());
                        break;
                    }
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, bodies)
}

/// A DNS responder on `ip:53` answering every A query with `answer`.
fn dns_responder(ip: Ipv4Addr, answer: Ipv4Addr) {
    let socket = UdpSocket::bind((ip, 53)).expect("bind the test DNS responder");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            // The question: labels up to the root, then type and class.
            let mut end = 12;
            while end < n && buf[end] != 0 {
                end += 1 + buf[end] as usize;
            }
            let end = end + 5;
            if end > n {
                continue;
            }
            let is_a = buf[end - 4..end - 2] == [0, 1];
            let mut reply = Vec::from(&buf[..2]);
            reply.extend_from_slice(&[0x81, 0x80, 0, 1, 0, is_a as u8, 0, 0, 0, 0]);
            reply.extend_from_slice(&buf[12..end]);
            if is_a {
                reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                reply.extend_from_slice(&answer.octets());
            }
            let _ = socket.send_to(&reply, from);
        }
    });
}

/// Runs the theft attack from `attacker` while `victim` (warm) is called.
fn theft_attack(kumo: &Kumo, attacker: &str, victim: &str, gateway: Option<Ipv4Addr>) {
    // Both warm: the victim's runtime is waiting in its own /next.
    assert_eq!(
        kumo.invoke_ok(victim, r#"{"action":"secret","secret":"warm"}"#)["secret"],
        "warm"
    );
    kumo.invoke_ok(attacker, "{}");
    let http_port = kumo.http_port();
    let event = serde_json::json!({
        "action": "attack",
        "hold": 8,
        "gateway": gateway.map(|g| g.to_string()).unwrap_or_default(),
        "gateway_ports": if gateway.is_some() { vec![kumo.grpc_port(), http_port] } else { vec![] },
    })
    .to_string();
    let attack = kumo.spawn_cli(&["invoke", attacker, "--payload", &event]);
    // Let the attacker's connections wait on every port, then call the victim.
    std::thread::sleep(Duration::from_millis(1500));
    // A busy victim has no /next parked: the attacker's would be first in
    // line for the following event.
    let busy = kumo.invoke_ok(victim, r#"{"action":"secret","secret":"first","sleep":1}"#);
    assert_eq!(busy["secret"], "first", "{busy}");
    let answer = kumo.invoke_ok(victim, r#"{"action":"secret","secret":"s3cr3t-payload"}"#);
    assert_eq!(answer["secret"], "s3cr3t-payload", "{answer}");
    assert_eq!(answer["answered_by"], "victim", "{answer}");
    let output = attack.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}\n{}", kumo.log());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["stolen"],
        serde_json::json!([]),
        "the attacker got an event: {report}"
    );
    for post in report["posts"].as_array().unwrap() {
        let data = post["data"].as_str().unwrap_or("");
        assert!(
            !data.starts_with("HTTP/1.1 202"),
            "a forged response was accepted: {report}"
        );
    }
    if gateway.is_none() {
        // Host mode: the attacker did see (and try) the victim's port.
        assert!(
            !report["targets"].as_array().unwrap().is_empty(),
            "{report}"
        );
    }
    // The victim still works, with its own answers.
    assert_eq!(
        kumo.invoke_ok(victim, r#"{"action":"secret","secret":"after"}"#)["secret"],
        "after"
    );
}

#[test]
fn runtime_api_theft_fails_in_outbound_mode() {
    let Some((network, kumo)) = outbound_kumo(213, false) else {
        return;
    };
    create_probe(&kumo, "victim", &["--network", "outbound"]);
    create_probe(&kumo, "attacker", &["--network", "outbound"]);
    theft_attack(&kumo, "attacker", "victim", Some(network.gateway));
}

#[test]
fn runtime_api_theft_fails_in_host_mode() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    create_probe(&kumo, "victim", &["--network", "host"]);
    create_probe(&kumo, "attacker", &["--network", "host"]);
    theft_attack(&kumo, "attacker", "victim", None);
}

#[test]
fn outbound_reaches_only_what_the_allow_list_names() {
    let Some((network, kumo)) = outbound_kumo(215, true) else {
        return;
    };
    let gateway = network.gateway;
    create_probe(&kumo, "open", &["--network", "outbound"]);
    // The first outbound instance creates the bridge (and the gateway).
    assert_eq!(kumo.invoke_ok("open", "{}")["ok"], true);
    let (server_port, bodies) = http_recorder(gateway);
    dns_responder(gateway, Ipv4Addr::new(198, 51, 100, 7));
    let (everywhere, everywhere_port) = listen_everywhere();
    create_limited_probe(&kumo, "allowed", &format!("{gateway}/32:{server_port}"));
    let http_port = kumo.http_port();
    let g = gateway.to_string();
    let targets = serde_json::json!([
        [g, server_port],
        [g, everywhere_port],
        [g, kumo.grpc_port()],
        [g, http_port],
        ["169.254.169.254", 80],
    ]);
    let event = serde_json::json!({"action": "connect", "targets": targets}).to_string();
    let open = kumo.invoke_ok("open", &event);
    assert_eq!(
        open["connects"],
        serde_json::json!([false, false, false, false, false]),
        "without an allow-list the host and metadata are blocked: {open}"
    );
    let allowed = kumo.invoke_ok("allowed", &event);
    assert_eq!(
        allowed["connects"],
        serde_json::json!([true, false, false, false, false]),
        "only the allowed port is reachable: {allowed}"
    );
    // From the host, the server is reachable (the test is not fooling itself).
    assert!(connects(SocketAddr::from((gateway, server_port))));

    // DNS from the configured resolver works, even for the allow-listed one.
    for name in ["open", "allowed"] {
        let resolved = kumo.invoke_ok(name, r#"{"action":"resolve","name":"svc.example.test"}"#);
        assert_eq!(resolved["address"], "198.51.100.7", "{name}: {resolved}");
    }

    // Two outbound instances cannot see each other, nor the host them.
    create_limited_probe(&kumo, "listener", &format!("{gateway}/32:{server_port}"));
    let listen = serde_json::json!({
        "action": "listen", "port": 8080, "hold": 5, "gateway": g, "report_port": server_port,
    })
    .to_string();
    let listening = kumo.spawn_cli(&["invoke", "listener", "--payload", &listen]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let address = loop {
        let found = bodies.lock().unwrap().iter().find_map(|b| {
            serde_json::from_str::<serde_json::Value>(b).ok()?["address"]
                .as_str()
                .map(str::to_string)
        });
        if let Some(address) = found {
            break address;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the listener never reported"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let peer: Ipv4Addr = address.parse().unwrap();
    let event = serde_json::json!({"action": "connect", "targets": [[address, 8080]]}).to_string();
    assert_eq!(
        kumo.invoke_ok("open", &event)["connects"],
        serde_json::json!([false])
    );
    assert!(
        !connects(SocketAddr::from((peer, 8080))),
        "the host connected into an instance"
    );
    let output = listening.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["accepted"], 0, "someone connected in: {result}");
    assert_eq!(
        result["self"], true,
        "the listener works from inside: {result}"
    );
    drop(everywhere);
}

#[test]
fn pre_started_outbound_sandboxes_get_the_allow_list_at_the_claim() {
    if !root_or_skip() {
        return;
    }
    let network = TestNetwork::new(217);
    let gateway = network.gateway;
    let kumo = Kumo::start_configured(
        LOG_CLAIMS,
        &format!(
            "{}prewarm_python_outbound_instances = 2\n",
            network.agent_settings(false)
        ),
    );
    // Both blanks are linked to the bridge before any function exists.
    let ports = std::path::Path::new("/sys/class/net")
        .join(&network.bridge)
        .join("brif");
    kumo_tests::wait_until("two linked blanks", Duration::from_secs(30), || {
        std::fs::read_dir(&ports).is_ok_and(|d| d.count() >= 2)
    });
    let (server_port, _) = http_recorder(gateway);
    let (everywhere, everywhere_port) = listen_everywhere();
    create_limited_probe(&kumo, "allowed", &format!("{gateway}/32:{server_port}"));
    create_probe(&kumo, "open", &["--network", "outbound"]);
    create_probe(&kumo, "quiet", &[]);
    let g = gateway.to_string();
    let targets = serde_json::json!([
        [g, server_port],
        [g, everywhere_port],
        [g, kumo.grpc_port()],
        ["169.254.169.254", 80],
    ]);
    let event = serde_json::json!({"action": "connect", "targets": targets}).to_string();
    let allowed = kumo.invoke_ok("allowed", &event);
    assert_eq!(
        allowed["connects"],
        serde_json::json!([true, false, false, false]),
        "a claimed blank must be limited to the allow-list: {allowed}"
    );
    let open = kumo.invoke_ok("open", &event);
    assert_eq!(
        open["connects"],
        serde_json::json!([false, false, false, false]),
        "without an allow-list the host and metadata stay blocked: {open}"
    );
    // A `none` function never gets an outbound blank.
    assert_eq!(kumo.invoke_ok("quiet", "{}")["ok"], true);
    assert_eq!(
        kumo.claims(),
        2,
        "the two outbound cold starts (only) claim blanks:\n{}",
        kumo.log()
    );
    drop(everywhere);
}
