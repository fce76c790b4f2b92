//! What every Kumo process (kumod, kumo-agent) does the same way: set up
//! its own diagnostic logs, and wait for the signal that stops it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a process writes its own diagnostic logs (to stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A log format other than `text` or `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log format {0:?} is not text or json")]
pub struct UnknownLogFormat(pub String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(UnknownLogFormat(other.to_string())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// Installs the process-wide tracing subscriber writing to stderr; the
/// level filter is `RUST_LOG` when set, else `default_level`. Colour codes
/// are used only when stderr is a terminal (not in journald or log files).
pub fn init_tracing(format: LogFormat, default_level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// An error and its causes on one line, `outer: cause: root`, leaving out
/// a cause whose text the line already holds (errors that print their
/// source in their own message would otherwise say it twice).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// Resolves once SIGINT or SIGTERM arrives (only SIGINT when SIGTERM
/// cannot be watched).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("binding the gRPC listener on 127.0.0.1:7070: {source}")]
    struct Bind {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn error_chain_says_each_cause_once() {
        let err = Bind {
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        let line = error_chain(&err);
        assert_eq!(line.matches("address in use").count(), 1, "{line}");
        let wrapped = anyhow::Error::new(err).context("starting kumod");
        let line = error_chain(wrapped.as_ref());
        assert!(line.starts_with("starting kumod: binding"), "{line}");
        assert_eq!(line.matches("address in use").count(), 1, "{line}");
    }

    #[test]
    fn formats_parse_and_print_alike() {
        for format in [LogFormat::Text, LogFormat::Json] {
            assert_eq!(format.to_string().parse::<LogFormat>(), Ok(format));
        }
        assert!("yaml".parse::<LogFormat>().is_err());
        let parsed: LogFormat = serde_json::from_str("\"json\"").unwrap();
        assert_eq!(parsed, LogFormat::Json);
    }
}
