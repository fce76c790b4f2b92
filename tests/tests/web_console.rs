//! The web console at `/console/`: a real browser (Debian's chromium and
//! chromium-driver, driven by Python Selenium from `tests/web_console.py`)
//! walks through sign-in, creating a function by upload, editing it,
//! testing it with the S3 template, the live tail, versions and aliases,
//! the graphs, a dead letter's replay and signing out; and plain HTTP
//! checks the security rules (no session, CSRF, another kumod's cookie,
//! escaping). Screenshots (1280×800) go to `$CARGO_TARGET_DIR/console-screenshots`
//! (or the system temp dir).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kumo_tests::http::{request, HttpReply};
use kumo_tests::{package_dir, root_or_skip, wait_until, zip_dir, Kumo};

/// The function the browser uploads.
const HANDLER: &str = r#"
def handler(event, context):
    record = (event.get("Records") or [{}])[0]
    s3 = record.get("s3", {})
    key = s3.get("object", {}).get("key")
    print("<script>alert(1)</script> got", key)
    return {"bucket": s3.get("bucket", {}).get("name"), "key": key}
"#;

fn screenshot_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("creating the screenshot directory");
    dir
}

/// Installs chromium and its driver when missing (as tests/run-all.sh does).
fn browser_ready() {
    if Path::new("/usr/bin/chromedriver").exists() && Path::new("/usr/bin/chromium").exists() {
        return;
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "chromium", "chromium-driver"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .expect("running apt-get");
    assert!(
        status.success(),
        "installing chromium and chromium-driver failed"
    );
}

#[test]
fn a_browser_walks_through_the_console() {
    if !root_or_skip() {
        return;
    }
    browser_ready();
    let python = kumo_tests::s3::venv_python();
    let kumo = Kumo::start();
    let code = package_dir(&[("lambda_function.py", HANDLER)]);
    let work = tempfile::tempdir().expect("temp dir");
    let zip = work.path().join("thumbs.zip");
    zip_dir(code.path(), &zip);
    let shots = screenshot_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("web_console.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("http://{}", kumo.http_address))
        .arg(kumo.token_file())
        .arg(&zip)
        .arg(&shots)
        .output()
        .expect("running tests/web_console.py");
    assert!(
        out.status.success(),
        "the browser walkthrough failed:\n{}\n{}\n--- kumod ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        kumo.log()
    );
    let seen: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the walkthrough's JSON report");
    assert_eq!(seen["result"]["bucket"], "mybucket", "{seen}");
    assert_eq!(seen["result"]["key"], "HappyFace.jpg", "{seen}");
    assert_eq!(seen["error"]["errorType"], "RuntimeError", "{seen}");
    assert!(
        seen["tail"]
            .as_str()
            .unwrap_or_default()
            .contains("got tail-key"),
        "{seen}"
    );
    assert!(
        seen["after_sign_out"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/console/login"),
        "{seen}"
    );
    // What the browser did, read back through the CLI.
    let function = kumo.function("thumbs");
    assert_eq!(function["memory_mb"], 256, "{function}");
    let alias = kumo.cli(&["alias", "get", "thumbs", "live", "--output", "json"]);
    assert_eq!(alias.code, 0, "{alias:?}");
    assert_eq!(alias.json()["version"], "2", "{alias:?}");
    // The replayed event failed again and is a dead letter once more.
    wait_until("the replayed dead letter", Duration::from_secs(60), || {
        let run = kumo.cli(&["dlq", "list", "thumbs", "--output", "json"]);
        run.code == 0 && run.stdout.contains("broken on purpose")
    });
    for page in [
        "sign-in",
        "functions",
        "test",
        "logs",
        "function",
        "graphs",
        "cluster",
    ] {
        assert!(
            shots.join(format!("{page}.png")).exists(),
            "no screenshot of {page}"
        );
    }
}

/// A signed-in client: its cookie header and CSRF token.
struct Client {
    address: String,
    cookie: String,
}

impl Client {
    fn sign_in(address: &str, token_file: &Path) -> Client {
        let token = std::fs::read_to_string(token_file).expect("token file");
        let reply = sign_in_reply(address, token.trim(), &[]);
        assert_eq!(reply.status, 303, "{reply:?}");
        let set_cookie = reply
            .header("set-cookie")
            .expect("a session cookie")
            .to_string();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
        assert!(set_cookie.contains("Max-Age=43200"), "{set_cookie}");
        assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
        Client {
            address: address.to_string(),
            cookie: set_cookie.split(';').next().unwrap_or_default().to_string(),
        }
    }

    fn get(&self, path: &str) -> HttpReply {
        request(&self.address, "GET", path, &[("Cookie", &self.cookie)], b"")
    }

    fn post(&self, path: &str, body: &str) -> HttpReply {
        post(&self.address, path, Some(&self.cookie), body)
    }

    /// The CSRF token in a console page.
    fn csrf(&self) -> String {
        let page = self.get("/console/");
        assert_eq!(page.status, 200, "{page:?}");
        csrf_in(&page.body)
    }
}

/// The CSRF token of the first form in `body`.
fn csrf_in(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    body[at..].split('"').next().unwrap_or_default().to_string()
}

/// Signs in through a fresh sign-in form (its nonce cookie and CSRF
/// token) with `token` and `extra` headers.
fn sign_in_reply(address: &str, token: &str, extra: &[(&str, &str)]) -> HttpReply {
    let form = request(address, "GET", "/console/login", &[], b"");
    assert_eq!(form.status, 200, "{form:?}");
    let cookie = form
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("the sign-in form's cookie")
        .to_string();
    let mut headers = vec![
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    headers.extend_from_slice(extra);
    let body = format!("csrf={}&token={token}", csrf_in(&form.body));
    request(address, "POST", "/console/login", &headers, body.as_bytes())
}

fn post(address: &str, path: &str, cookie: Option<&str>, body: &str) -> HttpReply {
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(cookie) = cookie {
        headers.push(("Cookie", cookie));
    }
    request(address, "POST", path, &headers, body.as_bytes())
}

const GET_ROUTES: &[&str] = &[
    "/console",
    "/console/",
    "/console/new",
    "/console/cluster",
    "/console/fn/esc",
    "/console/fn/esc/test",
    "/console/fn/esc/logs",
    "/console/fn/esc/graphs",
    "/console/nope",
];
const POST_ROUTES: &[&str] = &[
    "/console/new",
    "/console/logout",
    "/console/cluster/drain",
    "/console/cluster/undrain",
    "/console/fn/esc/config",
    "/console/fn/esc/code",
    "/console/fn/esc/publish",
    "/console/fn/esc/alias",
    "/console/fn/esc/dlq/replay",
    "/console/fn/esc/dlq/purge",
    "/console/fn/esc/test",
];

/// Every route refuses `cookie` (none, forged, another kumod's, signed out).
fn all_refused(address: &str, cookie: Option<&str>) {
    let headers: Vec<(&str, &str)> = cookie.map(|c| vec![("Cookie", c)]).unwrap_or_default();
    for path in GET_ROUTES {
        let reply = request(address, "GET", path, &headers, b"");
        assert_eq!(reply.status, 303, "GET {path} with {cookie:?}: {reply:?}");
        assert_eq!(
            reply.header("location"),
            Some("/console/login"),
            "GET {path}"
        );
    }
    let tail = request(address, "GET", "/console/fn/esc/tail", &headers, b"");
    assert_eq!(tail.status, 401, "the live tail with {cookie:?}: {tail:?}");
    for path in POST_ROUTES {
        let reply = post(address, path, cookie, "csrf=x&memory_mb=512");
        assert_eq!(reply.status, 401, "POST {path} with {cookie:?}: {reply:?}");
    }
}

#[test]
fn the_console_refuses_without_a_session_checks_csrf_and_escapes() {
    if !root_or_skip() {
        return;
    }
    let kumo = Kumo::start();
    let other = Kumo::start_daemon_only("", "127.0.0.1");
    let address = kumo.http_address.clone();
    kumo.create_python(
        "esc",
        "def handler(event, context):\n    print('<script>alert(1)</script>')\n    return 1\n",
        &["--env", "HTML=<script>alert(2)</script>"],
    );
    kumo.invoke_ok("esc", "{}");

    // No session, a forged one, a wrong token.
    all_refused(&address, None);
    all_refused(&address, Some("kumo_console=99999999999.abc.def"));
    let token = std::fs::read_to_string(kumo.token_file()).expect("token file");
    let wrong = sign_in_reply(&address, "wrong", &[]);
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert!(
        !wrong
            .header("set-cookie")
            .unwrap_or_default()
            .starts_with("kumo_console="),
        "{wrong:?}"
    );
    // The sign-in form has its CSRF token too.
    let forged = post(
        &address,
        "/console/login",
        None,
        &format!("token={}", token.trim()),
    );
    assert_eq!(forged.status, 403, "{forged:?}");
    let cross_site = sign_in_reply(&address, token.trim(), &[("Origin", "http://evil.example")]);
    assert_eq!(cross_site.status, 403, "{cross_site:?}");
    let behind_tls = sign_in_reply(&address, token.trim(), &[("X-Forwarded-Proto", "https")]);
    assert_eq!(behind_tls.status, 303, "{behind_tls:?}");
    assert!(
        behind_tls
            .header("set-cookie")
            .unwrap_or_default()
            .contains("; Secure"),
        "{behind_tls:?}"
    );

    // Another kumod's session is refused here (it has its own secret).
    let elsewhere = Client::sign_in(&other.http_address, &other.token_file());
    assert_eq!(elsewhere.get("/console/").status, 200);
    all_refused(&address, Some(&elsewhere.cookie));

    // A POST without this session's CSRF token changes nothing.
    let client = Client::sign_in(&address, &kumo.token_file());
    for body in [
        "memory_mb=512",
        "memory_mb=512&csrf=",
        "memory_mb=512&csrf=0000",
    ] {
        let refused = client.post("/console/fn/esc/config", body);
        assert_eq!(refused.status, 403, "{body}: {refused:?}");
    }
    assert_eq!(kumo.function("esc")["memory_mb"], 128);
    let csrf = client.csrf();
    let other_site = request(
        &address,
        "POST",
        "/console/fn/esc/config",
        &[
            ("Cookie", &client.cookie),
            ("Origin", "http://evil.example"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={csrf}&memory_mb=512").as_bytes(),
    );
    assert_eq!(other_site.status, 403, "{other_site:?}");
    assert_eq!(kumo.function("esc")["memory_mb"], 128);
    let saved = client.post(
        "/console/fn/esc/config",
        &format!(
            "csrf={csrf}&memory_mb=512&environment=HTML%3D%3Cscript%3Ealert%282%29%3C%2Fscript%3E"
        ),
    );
    assert_eq!(saved.status, 303, "{saved:?}");
    assert_eq!(kumo.function("esc")["memory_mb"], 512);

    // Env values and log lines render as text.
    let page = client.get("/console/fn/esc");
    assert!(
        page.body
            .contains("HTML=&lt;script&gt;alert(2)&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>alert(2)"), "{}", page.body);
    let logs = client.get("/console/fn/esc/logs");
    assert!(
        logs.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        logs.body
    );
    assert!(!logs.body.contains("<script>alert(1)"), "{}", logs.body);
    let filtered = client.get("/console/fn/esc/logs?q=%3Cscript%3E%22");
    assert!(
        filtered.body.contains("value=\"&lt;script&gt;&quot;\""),
        "{}",
        filtered.body
    );
    // Notices come only from the console's own redirects (signed).
    let spoofed = client.get("/console/fn/esc?notice=Enter+your+token+at+evil.example&sig=00");
    assert_eq!(spoofed.status, 200, "{spoofed:?}");
    assert!(!spoofed.body.contains("evil.example"), "{}", spoofed.body);
    let unknown = client.get("/console/fn/%3Cb%3E");
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(!unknown.body.contains("<b>"), "{}", unknown.body);

    // A live tail reconnecting with Last-Event-ID gets what it missed first.
    let resumed = read_tail(&address, &client.cookie, "0", "alert(1)");
    assert!(resumed.contains("id: "), "{resumed}");
    assert!(resumed.contains("<script>alert(1)</script>"), "{resumed}");

    hostile_forms(&client, &csrf);
    assert_eq!(
        declared_too_large(&address, &client.cookie),
        413,
        "a form declared larger than the limit is refused before it is read"
    );
    assert_eq!(
        kumo.function("esc")["memory_mb"],
        512,
        "refused forms changed nothing"
    );

    // Signing out ends the session even for a client that keeps the cookie.
    let out = client.post("/console/logout", &format!("csrf={csrf}"));
    assert_eq!(out.status, 303, "{out:?}");
    assert!(out
        .header("set-cookie")
        .unwrap_or_default()
        .contains("Max-Age=0"));
    all_refused(&address, Some(&client.cookie));
}

/// The notice (or error) text a console page shows.
fn notice(reply: &HttpReply) -> String {
    let at = reply.body.find("id=\"notice\">").map(|i| i + 12);
    at.map(|i| {
        reply.body[i..]
            .split("</p>")
            .next()
            .unwrap_or_default()
            .to_string()
    })
    .unwrap_or_default()
}

/// Where a redirect with a notice leads, with the notice decoded.
fn redirected_notice(client: &Client, reply: &HttpReply) -> String {
    assert_eq!(reply.status, 303, "{reply:?}");
    let location = reply.header("location").expect("a redirect").to_string();
    notice(&client.get(&location))
}

/// Hostile form input gets a clear message, never a panic or a change.
fn hostile_forms(client: &Client, csrf: &str) {
    let new = |body: &str| client.post("/console/new", &format!("csrf={csrf}&{body}"));
    let reply = new("name=n1&runtime=python3&handler=a.b&memory_mb=lots&file_name=a.py&source=x");
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(
        notice(&reply).contains("memory_mb: &quot;lots&quot; is not a number"),
        "{}",
        reply.body
    );
    let reply = new("name=n2&runtime=python3&handler=a.b&zip_b64=%25%25%25not-base64");
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(
        notice(&reply).contains("did not arrive intact"),
        "{}",
        reply.body
    );
    let reply = new("name=n3&runtime=python3&handler=a.b&file_name=..%2F..%2Fetc%2Fx&source=x");
    assert!(notice(&reply).contains("plain file name"), "{}", reply.body);
    let reply =
        new("name=%3Cb%3Ebad%3C%2Fb%3E&runtime=python3&handler=a.b&file_name=a.py&source=x");
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(!reply.body.contains("<b>bad"), "{}", reply.body);
    assert!(
        reply.body.contains("value=\"&lt;b&gt;bad&lt;/b&gt;\""),
        "{}",
        reply.body
    );
    let reply = new("name=n4&runtime=python3&handler=a.b&zip_b64=aGVsbG8%3D");
    assert_eq!(reply.status, 400, "not a zip: {reply:?}");
    assert!(!notice(&reply).is_empty(), "{}", reply.body);
    let config = |body: &str| client.post("/console/fn/esc/config", &format!("csrf={csrf}&{body}"));
    let message = redirected_notice(client, &config("memory_mb=512&environment=NO_EQUALS_SIGN"));
    assert!(message.contains("has no &#39;=&#39;"), "{message}");
    let message = redirected_notice(client, &config("memory_mb=99999999999"));
    assert!(message.contains("memory_mb"), "{message}");
    let message = redirected_notice(client, &config("memory_mb=5&environment=HTML%3Dx"));
    assert!(message.to_lowercase().contains("memory"), "{message}");
    let test = |body: &str| client.post("/console/fn/esc/test", &format!("csrf={csrf}&{body}"));
    let reply = test("event=%7Bnot+json");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.contains("Invoke refused"), "{}", reply.body);
    let reply = test("action=save&save_as=bad+name&event=%7B%7D");
    assert!(
        notice(&reply).contains("a name is 1-25 letters"),
        "{}",
        reply.body
    );
    let reply = test("action=save&save_as=ok&event=%7Bnope");
    assert!(notice(&reply).contains("not JSON"), "{}", reply.body);
    let reply = test(
        "action=save&save_as=tricky&event=%22%3C%2Fscript%3E%3Cscript%3Ealert(3)%3C%2Fscript%3E%22",
    );
    assert!(
        notice(&reply).contains("Saved test event tricky"),
        "{}",
        reply.body
    );
    assert!(!reply.body.contains("<script>alert(3)"), "{}", reply.body);
    assert!(
        reply.body.contains("\\u003cscript>alert(3)"),
        "{}",
        reply.body
    );
    let reply = test("action=delete&saved=tricky");
    assert!(
        notice(&reply).contains("Deleted test event tricky"),
        "{}",
        reply.body
    );
    let reply = test("action=delete&saved=tricky");
    assert!(
        notice(&reply).contains("no saved test event"),
        "{}",
        reply.body
    );
    let reply = client.post(
        "/console/fn/nope/test",
        &format!("csrf={csrf}&event=%7B%7D"),
    );
    assert_eq!(reply.status, 404, "{reply:?}");
    let message = redirected_notice(
        client,
        &client.post(
            "/console/fn/esc/alias",
            &format!("csrf={csrf}&alias=a&version=99"),
        ),
    );
    assert!(message.contains("99"), "{message}");
    let message = redirected_notice(
        client,
        &client.post(
            "/console/cluster/drain",
            &format!("csrf={csrf}&agent=no-such-agent"),
        ),
    );
    assert!(message.contains("no-such-agent"), "{message}");
}

/// Reads the live tail of `esc` (resuming after `last_event_id`) until a
/// line holds `until`; returns what was read.
fn read_tail(address: &str, cookie: &str, last_event_id: &str, until: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    write!(
        stream,
        "GET /console/fn/esc/tail HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\nLast-Event-ID: {last_event_id}\r\n\r\n"
    )
    .expect("sending the request");
    let mut read = String::new();
    for line in BufReader::new(stream).lines() {
        let line = line.unwrap_or_else(|e| panic!("reading the tail ({e}); so far: {read}"));
        read.push_str(&line);
        read.push('\n');
        if line.contains(until) {
            break;
        }
    }
    assert!(read.starts_with("HTTP/1.1 200"), "{read}");
    assert!(read.contains("text/event-stream"), "{read}");
    read
}

/// POSTs a form head declaring 1 GB (and no body); returns the status.
fn declared_too_large(address: &str, cookie: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    write!(
        stream,
        "POST /console/new HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000000\r\n\r\n"
    )
    .expect("sending the head");
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .expect("an answer before the body");
    String::from_utf8_lossy(&head[9..12])
        .parse()
        .expect("a status code")
}
