//! Function configuration rules and Lambda limits.
//!
//! kumod is the authority: it calls [`normalize_config`] on every create and
//! update. The CLI calls the same functions to fail early with the same words.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use regex::Regex;

use crate::control::FunctionConfig;

mod function_ref;
mod layer_ref;
mod runtime;
pub use function_ref::{FunctionRef, FunctionRefError};
pub use layer_ref::{
    layer_arn, layer_version_arn, validate_layer_list, validate_layer_name, LayerVersionRef,
    MAX_COMPATIBLE_RUNTIMES, MAX_LAYERS, MAX_LAYER_NAME_CHARS,
};
pub use runtime::{
    requested_language_version, validate_handler, NodeMajor, Runtime, PROVIDED_BOOTSTRAP,
    RUNTIME_IDENTIFIERS, RUNTIME_NAMES,
};

/// Default memory size in MB (Lambda's default).
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Smallest memory size in MB.
pub const MIN_MEMORY_MB: u32 = 128;
/// Largest memory size in MB.
pub const MAX_MEMORY_MB: u32 = 10240;
/// Default timeout in seconds.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 3;
/// Largest timeout in seconds.
pub const MAX_TIMEOUT_SECONDS: u32 = 900;
/// Default size of the private `/tmp` in MB.
pub const DEFAULT_EPHEMERAL_STORAGE_MB: u32 = 512;
/// Smallest `/tmp` size in MB.
pub const MIN_EPHEMERAL_STORAGE_MB: u32 = 512;
/// Largest `/tmp` size in MB.
pub const MAX_EPHEMERAL_STORAGE_MB: u32 = 10240;
/// Largest synchronous request or response payload (docs/wire-formats.md §1).
pub const MAX_SYNC_PAYLOAD_BYTES: usize = 6_291_556;
/// Largest asynchronous event payload.
pub const MAX_ASYNC_PAYLOAD_BYTES: usize = 256 * 1024;
/// Default retries of a failed asynchronous event.
pub const DEFAULT_MAX_RETRY_ATTEMPTS: u32 = 2;
/// Most retries of a failed asynchronous event.
pub const MAX_RETRY_ATTEMPTS: u32 = 2;
/// Default maximum age of an asynchronous event (6 hours).
pub const DEFAULT_MAX_EVENT_AGE_SECONDS: u32 = 21_600;
/// Smallest settable maximum event age.
pub const MIN_MAX_EVENT_AGE_SECONDS: u32 = 60;
/// Largest settable maximum event age.
pub const MAX_MAX_EVENT_AGE_SECONDS: u32 = 21_600;
/// Largest total size of user environment variables (keys + values).
pub const MAX_ENVIRONMENT_BYTES: usize = 4096;
/// Largest ZIP package accepted.
pub const MAX_PACKAGE_ZIPPED_BYTES: u64 = 50 * 1024 * 1024;
/// Default largest unpacked package size.
pub const MAX_PACKAGE_UNZIPPED_BYTES: u64 = 250 * 1024 * 1024;
/// Largest description length in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// Memory size that buys one full vCPU, as on Lambda.
pub const MEMORY_MB_PER_VCPU: u32 = 1769;
/// The editable version.
pub const LATEST: &str = "$LATEST";

/// Environment variables the platform sets; users may not override them.
pub const RESERVED_ENV_VARS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "AWS_LAMBDA_MAX_CONCURRENCY",
    "_LAMBDA_TELEMETRY_LOG_FD",
];

/// A configuration value that breaks a rule; the message names the field,
/// the value and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct ValidationError {
    /// The offending field, e.g. `memory_mb`.
    pub field: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ValidationError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Network access of a function's sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NetworkMode {
    /// A private network namespace with only loopback (the default).
    #[default]
    None,
    /// The host's network namespace: an explicit escape hatch (the
    /// function sees every host port; only its own Runtime API serves it).
    Host,
    /// A private network namespace (Runtime API on its own loopback) with a
    /// veth link to the agent's bridge and NAT for outbound connections;
    /// nothing can connect in, instances cannot reach each other, the host
    /// or the metadata address. Recommended for functions that call services.
    Outbound,
}

impl NetworkMode {
    /// The name used in configuration and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
            NetworkMode::Outbound => "outbound",
        }
    }
}

impl FromStr for NetworkMode {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" | "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            "outbound" => Ok(NetworkMode::Outbound),
            other => Err(ValidationError::new(
                "network",
                format!("'{other}' is not a network mode; use 'none', 'outbound' or 'host'"),
            )),
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static pattern compiles"))
}

/// Checks a function name: 1–64 characters of `A-Z a-z 0-9 - _`.
pub fn validate_function_name(name: &str) -> Result<(), ValidationError> {
    static RE: OnceLock<Regex> = OnceLock::new();
    if regex(&RE, r"^[A-Za-z0-9_-]{1,64}$").is_match(name) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "name",
            format!("'{name}' must be 1-64 characters of letters, digits, '-' and '_'"),
        ))
    }
}

/// Checks a memory size in MB.
pub fn validate_memory_mb(memory_mb: u32) -> Result<(), ValidationError> {
    if (MIN_MEMORY_MB..=MAX_MEMORY_MB).contains(&memory_mb) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "memory_mb",
            format!("{memory_mb} MB is outside {MIN_MEMORY_MB}-{MAX_MEMORY_MB} MB"),
        ))
    }
}

/// Checks a timeout in seconds.
pub fn validate_timeout_seconds(timeout: u32) -> Result<(), ValidationError> {
    if (1..=MAX_TIMEOUT_SECONDS).contains(&timeout) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "timeout_seconds",
            format!("{timeout} s is outside 1-{MAX_TIMEOUT_SECONDS} s"),
        ))
    }
}

/// Checks the size of the private `/tmp` in MB.
pub fn validate_ephemeral_storage_mb(size: u32) -> Result<(), ValidationError> {
    if (MIN_EPHEMERAL_STORAGE_MB..=MAX_EPHEMERAL_STORAGE_MB).contains(&size) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "ephemeral_storage_mb",
            format!(
                "{size} MB is outside {MIN_EPHEMERAL_STORAGE_MB}-{MAX_EPHEMERAL_STORAGE_MB} MB"
            ),
        ))
    }
}

/// Checks user environment variables: names `[A-Za-z][A-Za-z0-9_]+`, no
/// reserved names, at most 4 KB in total.
pub fn validate_environment(env: &HashMap<String, String>) -> Result<(), ValidationError> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = regex(&RE, r"^[A-Za-z][A-Za-z0-9_]+$");
    let mut names: Vec<&String> = env.keys().collect();
    names.sort();
    let mut total = 0usize;
    for name in names {
        if !re.is_match(name) {
            return Err(ValidationError::new(
                "environment",
                format!("'{name}' is not a valid variable name (letters, digits and '_', starting with a letter, at least 2 characters)"),
            ));
        }
        if RESERVED_ENV_VARS.contains(&name.as_str()) {
            return Err(ValidationError::new(
                "environment",
                format!("'{name}' is reserved by the platform and cannot be set"),
            ));
        }
        let value = &env[name];
        if value.contains('\0') {
            return Err(ValidationError::new(
                "environment",
                format!("the value of '{name}' contains a NUL byte"),
            ));
        }
        total += name.len() + value.len();
    }
    if total > MAX_ENVIRONMENT_BYTES {
        return Err(ValidationError::new(
            "environment",
            format!("variables take {total} bytes; at most {MAX_ENVIRONMENT_BYTES} are allowed"),
        ));
    }
    Ok(())
}

/// Fills in defaults and checks every field of a function configuration.
///
/// After success, every optional numeric field is set and `network` is
/// `"none"` or `"host"`.
pub fn normalize_config(config: &mut FunctionConfig) -> Result<(), ValidationError> {
    validate_function_name(&config.name)?;
    if config.description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ValidationError::new(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    let runtime: Runtime = config.runtime.parse()?;
    validate_handler(runtime, &config.handler)?;
    let memory = *config.memory_mb.get_or_insert(DEFAULT_MEMORY_MB);
    validate_memory_mb(memory)?;
    let timeout = *config
        .timeout_seconds
        .get_or_insert(DEFAULT_TIMEOUT_SECONDS);
    validate_timeout_seconds(timeout)?;
    let tmp = *config
        .ephemeral_storage_mb
        .get_or_insert(DEFAULT_EPHEMERAL_STORAGE_MB);
    validate_ephemeral_storage_mb(tmp)?;
    validate_environment(&config.environment)?;
    let network: NetworkMode = config.network.parse()?;
    config.network = network.as_str().to_string();
    if !config.egress_allow.is_empty() && network != NetworkMode::Outbound {
        return Err(ValidationError::new(
            "egress_allow",
            "an egress allow-list needs network mode 'outbound'".to_string(),
        ));
    }
    crate::egress::parse_list(&config.egress_allow)
        .map_err(|e| ValidationError::new("egress_allow", e.to_string()))?;
    validate_layer_list(&config.layers)?;
    normalize_async_config(config)
}

/// Fills in and checks the asynchronous-invocation and concurrency fields.
fn normalize_async_config(config: &mut FunctionConfig) -> Result<(), ValidationError> {
    let retries = *config
        .max_retry_attempts
        .get_or_insert(DEFAULT_MAX_RETRY_ATTEMPTS);
    if retries > MAX_RETRY_ATTEMPTS {
        return Err(ValidationError::new(
            "max_retry_attempts",
            format!("{retries} is outside 0-{MAX_RETRY_ATTEMPTS}"),
        ));
    }
    let age = *config
        .max_event_age_seconds
        .get_or_insert(DEFAULT_MAX_EVENT_AGE_SECONDS);
    if !(MIN_MAX_EVENT_AGE_SECONDS..=MAX_MAX_EVENT_AGE_SECONDS).contains(&age) {
        return Err(ValidationError::new(
            "max_event_age_seconds",
            format!("{age} s is outside {MIN_MAX_EVENT_AGE_SECONDS}-{MAX_MAX_EVENT_AGE_SECONDS} s"),
        ));
    }
    if let Some(reserved) = config.reserved_concurrency {
        if reserved < 0 {
            return Err(ValidationError::new(
                "reserved_concurrency",
                format!("{reserved} is below 0 (0 disables the function; leave it unset for no reservation)"),
            ));
        }
    }
    config.on_failure_destination = check_destination(
        &config.name,
        "on_failure_destination",
        &config.on_failure_destination,
    )?;
    config.on_success_destination = check_destination(
        &config.name,
        "on_success_destination",
        &config.on_success_destination,
    )?;
    let target = config.dead_letter_target.trim().to_string();
    if !target.is_empty() && !is_queue_or_topic_arn(&target) {
        return Err(ValidationError::new(
            "dead_letter_target",
            format!("{target:?} is not an SQS queue or SNS topic ARN (arn:aws:sqs|sns:REGION:ACCOUNT:NAME)"),
        ));
    }
    config.dead_letter_target = target;
    Ok(())
}

/// A destination trimmed and checked: a function (not `own` itself), or
/// an SQS queue / SNS topic ARN.
fn check_destination(
    own: &str,
    field: &'static str,
    given: &str,
) -> Result<String, ValidationError> {
    let destination = given.trim().to_string();
    if !destination.is_empty() && !is_queue_or_topic_arn(&destination) {
        let name = FunctionRef::parse(&destination, None)
            .map_err(|e| ValidationError::new(field, e.to_string()))?
            .name;
        if name == own {
            let kind = if field == "on_success_destination" {
                "on-success"
            } else {
                "on-failure"
            };
            return Err(ValidationError::new(
                field,
                format!("a function cannot be its own {kind} destination"),
            ));
        }
    }
    Ok(destination)
}

/// Whether `arn` names an SQS queue or SNS topic
/// (`arn:PARTITION:sqs|sns:REGION:ACCOUNT:NAME`), which asynchronous
/// destinations accept besides functions (docs/wire-formats.md §11).
pub fn is_queue_or_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    matches!(parts.as_slice(), ["arn", _, "sqs" | "sns", _, account, name]
        if !account.is_empty() && !name.is_empty() && !name.contains('/'))
}

/// The ARN Kumo reports for a function (and qualifier), Lambda-shaped.
pub fn function_arn(region: &str, account: &str, name: &str, qualifier: Option<&str>) -> String {
    match qualifier {
        Some(q) => format!("arn:aws:lambda:{region}:{account}:function:{name}:{q}"),
        None => format!("arn:aws:lambda:{region}:{account}:function:{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FunctionConfig {
        FunctionConfig {
            name: "div".into(),
            runtime: "python3".into(),
            handler: "lambda_function.handler".into(),
            ..Default::default()
        }
    }

    #[test]
    fn lambda_runtime_identifiers_map_to_kumo_runtimes_and_are_kept() {
        for (name, runtime, version) in [
            ("python3", Runtime::Python3, None),
            ("python3.9", Runtime::Python3, Some("3.9")),
            ("python3.13", Runtime::Python3, Some("3.13")),
            ("provided", Runtime::Provided, None),
            ("provided.al2", Runtime::Provided, None),
            ("provided.al2023", Runtime::Provided, None),
            ("nodejs20.x", Runtime::Nodejs(NodeMajor::V20), None),
        ] {
            assert_eq!(name.parse::<Runtime>(), Ok(runtime), "{name}");
            assert_eq!(requested_language_version(name), version, "{name}");
            let mut c = FunctionConfig {
                runtime: name.into(),
                ..config()
            };
            normalize_config(&mut c).unwrap();
            assert_eq!(c.runtime, name, "stored as given");
        }
        for bad in [
            "python2.7",
            "python3.8",
            "python3.14",
            "Python3.12",
            "nodejs16.x",
            "",
            "provided.al2 ",
        ] {
            let err = bad.parse::<Runtime>().unwrap_err();
            assert!(
                err.message.contains("python3.12") && err.message.contains("provided.al2023"),
                "{err}"
            );
        }
    }

    #[test]
    fn defaults_are_lambdas() {
        let mut c = config();
        normalize_config(&mut c).unwrap();
        assert_eq!(c.memory_mb, Some(128));
        assert_eq!(c.timeout_seconds, Some(3));
        assert_eq!(c.ephemeral_storage_mb, Some(512));
        assert_eq!(c.network, "none");
    }

    #[test]
    fn outbound_and_its_allow_list_are_checked() {
        let mut c = config();
        c.network = "outbound".into();
        c.egress_allow = vec!["192.0.2.0/24:443".into()];
        normalize_config(&mut c).unwrap();
        assert_eq!(c.network, "outbound");
        c.egress_allow = vec!["192.0.2.0/24:https".into()];
        assert!(normalize_config(&mut c).is_err());
        let mut c = config();
        c.egress_allow = vec!["192.0.2.1".into()];
        let err = normalize_config(&mut c).unwrap_err();
        assert!(err.to_string().contains("outbound"), "{err}");
    }

    #[test]
    fn limits_are_enforced() {
        assert!(validate_memory_mb(127).is_err());
        assert!(validate_memory_mb(10241).is_err());
        assert!(validate_memory_mb(10240).is_ok());
        assert!(validate_timeout_seconds(0).is_err());
        assert!(validate_timeout_seconds(901).is_err());
        assert!(validate_timeout_seconds(900).is_ok());
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_function_name("my-fn_1").is_ok());
        assert!(validate_function_name("").is_err());
        assert!(validate_function_name("a/b").is_err());
        assert!(validate_function_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn environment_rules() {
        let env = |k: &str, v: &str| HashMap::from([(k.to_string(), v.to_string())]);
        assert!(validate_environment(&env("GREETING", "hi")).is_ok());
        let err = validate_environment(&env("AWS_REGION", "x")).unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
        assert!(validate_environment(&env("1BAD", "x")).is_err());
        assert!(validate_environment(&env("A", "x")).is_err());
        assert!(validate_environment(&env("BIG", &"x".repeat(5000))).is_err());
    }

    #[test]
    fn async_settings_are_checked() {
        let mut c = config();
        normalize_config(&mut c).unwrap();
        assert_eq!(c.max_retry_attempts, Some(2));
        assert_eq!(c.max_event_age_seconds, Some(21_600));
        assert_eq!(c.reserved_concurrency, None);
        let with = |f: &dyn Fn(&mut FunctionConfig)| {
            let mut c = config();
            f(&mut c);
            normalize_config(&mut c)
        };
        assert!(with(&|c| c.max_retry_attempts = Some(3))
            .unwrap_err()
            .to_string()
            .contains("max_retry_attempts"));
        assert!(with(&|c| c.max_event_age_seconds = Some(59)).is_err());
        assert!(with(&|c| c.max_event_age_seconds = Some(21_601)).is_err());
        assert!(with(&|c| c.max_event_age_seconds = Some(60)).is_ok());
        assert!(with(&|c| c.reserved_concurrency = Some(-1))
            .unwrap_err()
            .to_string()
            .contains("below 0"));
        assert!(with(&|c| c.reserved_concurrency = Some(0)).is_ok());
        assert!(with(&|c| c.on_failure_destination = "div".into()).is_err());
        assert!(with(&|c| c.on_failure_destination = "bad/name".into()).is_err());
        assert!(with(&|c| c.on_failure_destination = "sink".into()).is_ok());
        assert!(with(&|c| c.on_failure_destination = "arn:aws:sqs:us-east-1:1:q".into()).is_ok());
        assert!(with(&|c| c.on_failure_destination = "arn:aws:sns:us-east-1:1:t".into()).is_ok());
        assert!(with(&|c| c.on_failure_destination = "arn:aws:sqs:us-east-1::q".into()).is_err());
        assert!(with(&|c| c.dead_letter_target = "arn:aws:sns:us-east-1:1:t".into()).is_ok());
        assert!(with(&|c| c.dead_letter_target = "some-function".into()).is_err());
        assert!(with(&|c| c.on_success_destination = "sink".into()).is_ok());
        assert!(with(&|c| c.on_success_destination = "arn:aws:sqs:us-east-1:1:q".into()).is_ok());
        assert!(with(&|c| c.on_success_destination = "bad/name".into()).is_err());
    }
}
