//! The environment of a function's runtime process (docs/wire-formats.md §2).

use kumo_proto::agent::FunctionSpec;
use kumo_proto::model::Runtime;

use super::InstanceSettings;
use crate::bootstrap;

/// The sandbox environment (docs/wire-formats.md §2): platform variables, then
/// the user's, which may override only the non-reserved ones.
pub(super) fn environment(
    settings: &InstanceSettings,
    function: &FunctionSpec,
    runtime: Runtime,
    stream_hex: &str,
) -> Vec<(String, String)> {
    let date = chrono::Utc::now().format("%Y/%m/%d");
    let mut env: Vec<(String, String)> = Vec::with_capacity(24 + function.environment.len());
    let mut set = |k: &str, v: String| env.push((k.to_owned(), v));
    set("_HANDLER", function.handler.clone());
    set("AWS_REGION", settings.region.clone());
    set("AWS_DEFAULT_REGION", settings.region.clone());
    match runtime {
        Runtime::Python3 => set("AWS_EXECUTION_ENV", settings.python_execution_env.clone()),
        Runtime::Nodejs(major) => set("AWS_EXECUTION_ENV", bootstrap::node::execution_env(major)),
        Runtime::Provided => {}
    }
    set("AWS_LAMBDA_FUNCTION_NAME", function.name.clone());
    set(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        function.memory_mb.to_string(),
    );
    set("AWS_LAMBDA_FUNCTION_VERSION", function.version.clone());
    set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into());
    set(
        "AWS_LAMBDA_LOG_GROUP_NAME",
        format!("/aws/lambda/{}", function.name),
    );
    set(
        "AWS_LAMBDA_LOG_STREAM_NAME",
        format!("{date}/[{}]{stream_hex}", function.version),
    );
    set("LAMBDA_TASK_ROOT", "/var/task".into());
    set(
        "LAMBDA_RUNTIME_DIR",
        bootstrap::RUNTIME_DIR_IN_SANDBOX.into(),
    );
    set("TZ", ":UTC".into());
    set("LANG", "en_US.UTF-8".into());
    set("PATH", "/usr/local/bin:/usr/bin:/bin:/opt/bin".into());
    set(
        "LD_LIBRARY_PATH",
        "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib".into(),
    );
    match runtime {
        Runtime::Python3 => {
            set("PYTHONPATH", bootstrap::RUNTIME_DIR_IN_SANDBOX.into());
            if settings.python_host_site_packages {
                set(bootstrap::HOST_SITE_PACKAGES_ENV, "1".into());
            }
        }
        Runtime::Nodejs(major) => set("NODE_PATH", bootstrap::node::node_path_variable(major)),
        Runtime::Provided => {}
    }
    let mut user: Vec<(&String, &String)> = function.environment.iter().collect();
    user.sort();
    for (key, value) in user {
        if !user_may_set(key) {
            tracing::warn!(function = %function.name, variable = %key, "ignoring a reserved environment variable");
            continue;
        }
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.clone(),
            None => env.push((key.clone(), value.clone())),
        }
    }
    env
}

/// Whether a user variable may be passed: anything not set by the platform,
/// except the platform's overridable ones, and except credentials and their
/// region (which kumod passes in the function's environment from its S3
/// profile; kumod refuses these names in user-supplied environments).
fn user_may_set(key: &str) -> bool {
    const OVERRIDABLE: &[&str] = &["PATH", "LANG", "LD_LIBRARY_PATH", "PYTHONPATH", "TZ"];
    const CREDENTIALS: &[&str] = &[
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ];
    OVERRIDABLE.contains(&key)
        || CREDENTIALS.contains(&key)
        || !kumo_proto::model::RESERVED_ENV_VARS.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentConfig;

    fn settings() -> InstanceSettings {
        InstanceSettings::from_config(&AgentConfig::default(), "/proc/self/exe".into(), vec![])
    }

    fn function() -> FunctionSpec {
        FunctionSpec {
            name: "fn".into(),
            version: "$LATEST".into(),
            runtime: "python3".into(),
            handler: "app.handler".into(),
            memory_mb: 128,
            environment: [
                ("PATH", "/custom"),
                ("_HANDLER", "evil.x"),
                ("AWS_LAMBDA_MAX_CONCURRENCY", "4"),
                ("MY_VAR", "1"),
                ("AWS_ACCESS_KEY_ID", "AK"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn environment_has_platform_variables_and_allowed_user_overrides() {
        let env = environment(
            &settings(),
            &function(),
            Runtime::Python3,
            "0123456789abcdef0123456789abcdef",
        );
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("_HANDLER"), Some("app.handler"));
        assert_eq!(get("PATH"), Some("/custom"));
        assert_eq!(get("MY_VAR"), Some("1"));
        assert_eq!(get("AWS_ACCESS_KEY_ID"), Some("AK"));
        assert_eq!(get("AWS_LAMBDA_MAX_CONCURRENCY"), None);
        assert_eq!(get("_LAMBDA_TELEMETRY_LOG_FD"), None);
        assert_eq!(get("AWS_EXECUTION_ENV"), Some("AWS_Lambda_python3.11"));
        assert_eq!(get("AWS_LAMBDA_LOG_GROUP_NAME"), Some("/aws/lambda/fn"));
        let stream = get("AWS_LAMBDA_LOG_STREAM_NAME").unwrap();
        assert!(
            stream.ends_with("/[$LATEST]0123456789abcdef0123456789abcdef"),
            "{stream}"
        );
        assert_eq!(stream.len(), "YYYY/MM/DD/".len() + "[$LATEST]".len() + 32);
        assert_eq!(env.iter().filter(|(k, _)| k == "PATH").count(), 1);
        assert_eq!(get(bootstrap::HOST_SITE_PACKAGES_ENV), None);
        let node = environment(
            &settings(),
            &function(),
            Runtime::Nodejs(kumo_proto::model::NodeMajor::V18),
            "0",
        );
        let get = |k: &str| {
            node.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("AWS_EXECUTION_ENV"), Some("AWS_Lambda_nodejs18.x"));
        assert!(get("NODE_PATH")
            .unwrap()
            .starts_with("/opt/nodejs/node18/node_modules:"));
        assert_eq!(get("PYTHONPATH"), None);
        let provided = environment(&settings(), &function(), Runtime::Provided, "0");
        assert!(!provided
            .iter()
            .any(|(k, _)| k == "AWS_EXECUTION_ENV" || k == "PYTHONPATH"));
    }

    #[test]
    fn host_site_packages_follow_the_agent_unless_the_function_says_otherwise() {
        let mut agent = settings();
        agent.python_host_site_packages = true;
        let value = |settings: &InstanceSettings, function: &FunctionSpec| {
            environment(settings, function, Runtime::Python3, "0")
                .into_iter()
                .find(|(k, _)| k == bootstrap::HOST_SITE_PACKAGES_ENV)
                .map(|(_, v)| v)
        };
        assert_eq!(value(&agent, &function()).as_deref(), Some("1"));
        let mut opted_out = function();
        opted_out
            .environment
            .insert(bootstrap::HOST_SITE_PACKAGES_ENV.into(), "0".into());
        assert_eq!(value(&agent, &opted_out).as_deref(), Some("0"));
        let mut opted_in = function();
        opted_in
            .environment
            .insert(bootstrap::HOST_SITE_PACKAGES_ENV.into(), "1".into());
        assert_eq!(value(&settings(), &opted_in).as_deref(), Some("1"));
        assert_eq!(
            environment(&agent, &function(), Runtime::Provided, "0")
                .iter()
                .find(|(k, _)| k == bootstrap::HOST_SITE_PACKAGES_ENV),
            None
        );
    }
}
