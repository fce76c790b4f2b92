//! Driving functions through the real CLI: create, invoke, read back.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{fixture, sink, Kumo, Run, DIVISION_HANDLER};

impl Kumo {
    /// Creates a function; panics with kumod's log on failure.
    pub fn create(&self, name: &str, runtime: &str, handler: &str, code: &Path, extra: &[&str]) {
        let run = self.try_create(name, runtime, handler, code, extra);
        assert_eq!(run.code, 0, "create {name} failed: {run:?}\n{}", self.log());
    }

    /// `kumo function create NAME --runtime … --handler … --code … EXTRA…`.
    pub fn try_create(
        &self,
        name: &str,
        runtime: &str,
        handler: &str,
        code: &Path,
        extra: &[&str],
    ) -> Run {
        let code = code.to_string_lossy();
        let mut args = vec![
            "function",
            "create",
            name,
            "--runtime",
            runtime,
            "--handler",
            handler,
            "--code",
            &code,
        ];
        args.extend_from_slice(extra);
        self.cli(&args)
    }

    /// Creates a python3 function whose package is one `lambda_function.py`
    /// holding `source` (handler `lambda_function.handler`); returns its
    /// package digest.
    pub fn create_python(&self, name: &str, source: &str, extra: &[&str]) -> String {
        let code = crate::package_dir(&[("lambda_function.py", source)]);
        self.create(
            name,
            "python3",
            "lambda_function.handler",
            code.path(),
            extra,
        );
        self.function(name)["package_digest"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Creates `name` from `fixtures/reporter`, reporting to `sink` over the
    /// host network, with a 10 s timeout unless `extra` sets one.
    pub fn create_reporter(&self, name: &str, sink: &sink::Sink, extra: &[&str]) {
        let env = format!("SINK={}", sink.address);
        let mut args = vec!["--network", "host", "--env", &env];
        if !extra.contains(&"--timeout") {
            args.extend_from_slice(&["--timeout", "10"]);
        }
        args.extend_from_slice(extra);
        self.create(
            name,
            "python3",
            "lambda_function.lambda_handler",
            &fixture("reporter"),
            &args,
        );
    }

    /// Creates `name` from `fixtures/division` (handler
    /// [`DIVISION_HANDLER`]) with `extra` CLI flags.
    pub fn create_division(&self, name: &str, extra: &[&str]) {
        self.create(
            name,
            "python3",
            DIVISION_HANDLER,
            &fixture("division"),
            extra,
        );
    }

    /// `kumo trigger create ARGS… --output json`; panics unless it succeeds.
    pub fn create_trigger(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["trigger", "create"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--output", "json"]);
        let run = self.cli(&all);
        assert_eq!(run.code, 0, "{run:?}");
        run.json()
    }

    /// Invokes with a payload, retrying while the agent is still attaching.
    pub fn invoke(&self, name: &str, payload: &str) -> Run {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let run = self.cli(&["invoke", name, "--payload", payload]);
            if !run.stderr.contains("no agent connected") || Instant::now() > deadline {
                return run;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Invokes and expects success; returns the JSON result.
    pub fn invoke_ok(&self, name: &str, payload: &str) -> serde_json::Value {
        let run = self.invoke(name, payload);
        assert_eq!(
            run.code,
            0,
            "invoke {name} {payload} failed: {run:?}\n{}",
            self.log()
        );
        run.json()
    }

    /// Invokes with a payload and a client context (`--client-context`,
    /// JSON) and expects success (panics with the function's log); returns
    /// the JSON result.
    pub fn invoke_ok_with_client_context(
        &self,
        name: &str,
        payload: &str,
        client_context: &str,
    ) -> serde_json::Value {
        let run = self.cli(&[
            "invoke",
            name,
            "--payload",
            payload,
            "--client-context",
            client_context,
        ]);
        assert_eq!(run.code, 0, "{run:?}\n{}", self.logs(name));
        run.json()
    }

    /// For the runtime-client fixtures (`ric`, `node_ric`: they sleep
    /// `event.sleep` seconds and echo the event): a call past the timeout
    /// fails with "Task timed out", and the function serves the next call.
    pub fn assert_times_out_then_serves(&self, name: &str) {
        let slow = self.cli(&["invoke", name, "--payload", r#"{"sleep": 5}"#]);
        assert_eq!(slow.code, 1, "{slow:?}");
        assert!(slow.stdout.contains("Task timed out"), "{slow:?}");
        assert_eq!(self.invoke_ok(name, r#"{"again": 1}"#)["event"]["again"], 1);
    }

    /// Invokes and expects a function error (exit code 1); returns the
    /// error JSON.
    pub fn invoke_failed(&self, name: &str, payload: &str) -> serde_json::Value {
        let run = self.invoke(name, payload);
        assert_eq!(run.code, 1, "{run:?}");
        run.json()
    }

    /// `kumo function get NAME --output json`; panics unless it succeeds.
    pub fn function(&self, name: &str) -> serde_json::Value {
        let run = self.cli(&["function", "get", name, "--output", "json"]);
        assert_eq!(run.code, 0, "{run:?}");
        run.json()
    }

    /// The function's whole log.
    pub fn logs(&self, name: &str) -> String {
        let run = self.cli(&["logs", name]);
        assert_eq!(run.code, 0, "{run:?}");
        run.stdout
    }
}
