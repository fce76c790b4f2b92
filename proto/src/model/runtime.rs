//! Runtimes (`python3`, `nodejsNN.x`, `provided`) and the handler strings
//! each accepts.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use regex::Regex;

use super::{regex, ValidationError};

/// How a function's code is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// Kumo's own Python bootstrap runs `file.function` from the package.
    Python3,
    /// The package's executable `bootstrap` speaks the Runtime API itself.
    Provided,
    /// Kumo's own Node.js bootstrap runs `file.export` from the package
    /// (`nodejs18.x`, `nodejs20.x`, `nodejs22.x`: the major version the
    /// function asked for; every one runs the agent's configured `node`).
    Nodejs(NodeMajor),
}

/// The Node.js major version a `nodejsNN.x` function asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeMajor {
    /// `nodejs18.x`.
    V18,
    /// `nodejs20.x`.
    V20,
    /// `nodejs22.x`.
    V22,
}

impl NodeMajor {
    /// The major version as a number, e.g. 20.
    pub fn number(self) -> u32 {
        match self {
            NodeMajor::V18 => 18,
            NodeMajor::V20 => 20,
            NodeMajor::V22 => 22,
        }
    }
}

/// Every runtime name, in the order error messages list them.
pub const RUNTIME_NAMES: &[&str] = &[
    "python3",
    "nodejs20.x",
    "nodejs18.x",
    "nodejs22.x",
    "provided",
];

impl Runtime {
    /// The name used in configuration and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Python3 => "python3",
            Runtime::Provided => "provided",
            Runtime::Nodejs(NodeMajor::V18) => "nodejs18.x",
            Runtime::Nodejs(NodeMajor::V20) => "nodejs20.x",
            Runtime::Nodejs(NodeMajor::V22) => "nodejs22.x",
        }
    }

    /// Whether Kumo's Node.js bootstrap runs this function.
    pub fn is_node(self) -> bool {
        matches!(self, Runtime::Nodejs(_))
    }

    /// Whether Kumo runs one of its own bootstraps (from `/var/runtime`)
    /// rather than the package's `bootstrap`.
    pub fn has_kumo_bootstrap(self) -> bool {
        self != Runtime::Provided
    }
}

impl FromStr for Runtime {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "python3" => Ok(Runtime::Python3),
            "provided" => Ok(Runtime::Provided),
            "nodejs18.x" => Ok(Runtime::Nodejs(NodeMajor::V18)),
            "nodejs20.x" => Ok(Runtime::Nodejs(NodeMajor::V20)),
            "nodejs22.x" => Ok(Runtime::Nodejs(NodeMajor::V22)),
            other => Err(ValidationError::new(
                "runtime",
                format!(
                    "'{other}' is not a runtime; use one of {}",
                    RUNTIME_NAMES.join(", ")
                ),
            )),
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The file the `provided` runtime starts from the package root.
pub const PROVIDED_BOOTSTRAP: &str = "bootstrap";

impl Runtime {
    /// The executable the runtime starts from the package root, which a
    /// package must hold (`bootstrap` for `provided`); None when the
    /// runtime brings its own.
    pub fn package_entry_point(self) -> Option<&'static str> {
        (self == Runtime::Provided).then_some(PROVIDED_BOOTSTRAP)
    }
}

/// Checks a handler string for a runtime.
///
/// For `python3` the handler is `file.function` (a dotted or slashed module
/// path, then the function name after the last dot). For `nodejsNN.x` it is
/// `path/file.export`: an optional directory path, the file name without
/// its extension (no dot), then the export, which may be nested
/// (`file.a.b`), as AWS's Node runtime resolves it; `..` is refused.
pub fn validate_handler(runtime: Runtime, handler: &str) -> Result<(), ValidationError> {
    if handler.is_empty() {
        return match runtime {
            Runtime::Python3 => Err(ValidationError::new(
                "handler",
                "a python3 function needs a handler 'file.function', e.g. lambda_function.lambda_handler",
            )),
            Runtime::Nodejs(_) => Err(ValidationError::new(
                "handler",
                format!("a {runtime} function needs a handler 'file.export', e.g. index.handler"),
            )),
            Runtime::Provided => Ok(()),
        };
    }
    if handler.len() > 128 || handler.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ValidationError::new(
            "handler",
            format!(
                "'{handler}' must be at most 128 characters without spaces or control characters"
            ),
        ));
    }
    match runtime {
        Runtime::Python3 => validate_python_handler(handler),
        Runtime::Nodejs(_) => validate_node_handler(runtime, handler),
        Runtime::Provided => Ok(()),
    }
}

fn validate_python_handler(handler: &str) -> Result<(), ValidationError> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = regex(
        &RE,
        r"^[A-Za-z_][A-Za-z0-9_]*([./][A-Za-z_][A-Za-z0-9_]*)*$",
    );
    let Some((module, function)) = handler.rsplit_once('.') else {
        return Err(ValidationError::new(
            "handler",
            format!(
                "'{handler}' has no module part; a python3 handler is 'file.function', e.g. lambda_function.{handler}"
            ),
        ));
    };
    if module.is_empty() || function.is_empty() || !re.is_match(handler) {
        return Err(ValidationError::new(
            "handler",
            format!("'{handler}' is not of the form 'file.function' with Python identifiers"),
        ));
    }
    Ok(())
}

fn validate_node_handler(runtime: Runtime, handler: &str) -> Result<(), ValidationError> {
    if handler.contains("..") {
        return Err(ValidationError::new(
            "handler",
            format!(
                "'{handler}' may not contain '..': name the file by its path under the package"
            ),
        ));
    }
    // AWS's Node runtime: the part after the last '/' is `file.export`,
    // split at its first dot; the export path is split at further dots.
    let (_, last) = handler.rsplit_once('/').unwrap_or(("", handler));
    let Some((file, export)) = last.split_once('.') else {
        return Err(ValidationError::new(
            "handler",
            format!(
                "'{handler}' has no export part; a {runtime} handler is 'file.export', e.g. {last}.handler"
            ),
        ));
    };
    if file.is_empty() || export.split('.').any(str::is_empty) || handler.starts_with('/') {
        return Err(ValidationError::new(
            "handler",
            format!(
                "'{handler}' is not of the form 'path/file.export' (a relative file name without extension, then the exported name)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_without_dot_is_explained() {
        let err = validate_handler(Runtime::Python3, "handler").unwrap_err();
        assert!(err.to_string().contains("file.function"), "{err}");
        assert!(validate_handler(Runtime::Python3, "pkg/mod.fn").is_ok());
        assert!(validate_handler(Runtime::Python3, "a.b.fn").is_ok());
        assert!(validate_handler(Runtime::Python3, ".fn").is_err());
        assert!(validate_handler(Runtime::Python3, "mod.").is_err());
        assert!(validate_handler(Runtime::Python3, "").is_err());
        assert!(validate_handler(Runtime::Provided, "").is_ok());
    }

    #[test]
    fn node_runtimes_parse_and_their_handlers_are_checked() {
        let node: Runtime = "nodejs20.x".parse().unwrap();
        assert_eq!(node, Runtime::Nodejs(NodeMajor::V20));
        assert_eq!(node.to_string(), "nodejs20.x");
        for name in RUNTIME_NAMES {
            assert_eq!(name.parse::<Runtime>().unwrap().as_str(), *name);
        }
        let err = "nodejs16.x".parse::<Runtime>().unwrap_err();
        assert!(err.to_string().contains("nodejs20.x"), "{err}");
        for ok in [
            "index.handler",
            "src/app.handler",
            "index.a.b",
            "my-file.handler",
        ] {
            assert!(validate_handler(node, ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "index",
            "../up.handler",
            "index.",
            ".handler",
            "/abs/index.handler",
            "a.b..c",
        ] {
            assert!(validate_handler(node, bad).is_err(), "{bad}");
        }
        let err = validate_handler(node, "index").unwrap_err();
        assert!(err.to_string().contains("index.handler"), "{err}");
    }
}
