//! Reserved concurrency, asynchronous-invocation settings and account
//! settings: each an update of the function's configuration through
//! `state::functions`, in Lambda's shapes.

use kumo_proto::control::UpdateFunctionConfigurationRequest;
use kumo_proto::model;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{blocking, Answer, Management};
use crate::api::lambda::errors::ApiError;
use crate::api::lambda::shapes;

/// The body of PutFunctionConcurrency.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConcurrencyInput {
    reserved_concurrent_executions: i32,
}

/// `{Destination}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationInput {
    destination: Option<String>,
}

/// `DestinationConfig`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationConfigInput {
    on_success: Option<DestinationInput>,
    on_failure: Option<DestinationInput>,
}

/// The body of Put/UpdateFunctionEventInvokeConfig.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EventInvokeInput {
    maximum_retry_attempts: Option<u32>,
    maximum_event_age_in_seconds: Option<u32>,
    destination_config: Option<DestinationConfigInput>,
}

impl Management {
    pub(super) async fn put_concurrency(&self, given: &str, body: &[u8]) -> Answer {
        let input: ConcurrencyInput = shapes::parse_body(body)?;
        let name = self.function_name(given)?;
        let request = UpdateFunctionConfigurationRequest {
            name: name.clone(),
            reserved_concurrency: Some(input.reserved_concurrent_executions),
            ..Default::default()
        };
        self.update_latest(request).await?;
        let reserved = configuration_reserved(&self.functions, &name).await?;
        Ok((200, Some(json!({"ReservedConcurrentExecutions": reserved}))))
    }

    pub(super) async fn delete_concurrency(&self, given: &str) -> Answer {
        let request = UpdateFunctionConfigurationRequest {
            name: self.function_name(given)?,
            clear_reserved_concurrency: true,
            ..Default::default()
        };
        self.update_latest(request).await?;
        Ok((204, None))
    }

    pub(super) async fn get_concurrency(&self, given: &str) -> Answer {
        let name = self.function_name(given)?;
        let reserved = configuration_reserved(&self.functions, &name).await?;
        Ok((
            200,
            Some(match reserved {
                Some(n) => json!({"ReservedConcurrentExecutions": n}),
                None => json!({}),
            }),
        ))
    }

    /// PutFunctionEventInvokeConfig (`replace`: fields not given return to
    /// their defaults) or UpdateFunctionEventInvokeConfig (they are kept).
    pub(super) async fn put_event_invoke_config(
        &self,
        given: &str,
        body: &[u8],
        replace: bool,
    ) -> Answer {
        let input: EventInvokeInput = shapes::parse_body(body)?;
        let destinations = input.destination_config.unwrap_or_default();
        let on_success = destinations
            .on_success
            .map(|d| d.destination.unwrap_or_default());
        let on_failure = destinations
            .on_failure
            .map(|d| d.destination.unwrap_or_default());
        let fill = |value: Option<u32>, default: u32| match (value, replace) {
            (None, true) => Some(default),
            (value, _) => value,
        };
        let request = UpdateFunctionConfigurationRequest {
            name: self.function_name(given)?,
            max_retry_attempts: fill(
                input.maximum_retry_attempts,
                model::DEFAULT_MAX_RETRY_ATTEMPTS,
            ),
            max_event_age_seconds: fill(
                input.maximum_event_age_in_seconds,
                model::DEFAULT_MAX_EVENT_AGE_SECONDS,
            ),
            on_failure_destination: if replace {
                Some(on_failure.unwrap_or_default())
            } else {
                on_failure
            },
            on_success_destination: if replace {
                Some(on_success.unwrap_or_default())
            } else {
                on_success
            },
            ..Default::default()
        };
        let configuration = self.update_latest(request).await?;
        self.event_invoke_config(&configuration).await
    }

    pub(super) async fn get_event_invoke_config(&self, given: &str) -> Answer {
        let name = self.function_name(given)?;
        let functions = self.functions.clone();
        let info = blocking(move || functions.get(&name)).await?;
        self.event_invoke_config(&shapes::latest_configuration(&info))
            .await
    }

    pub(super) async fn delete_event_invoke_config(&self, given: &str) -> Answer {
        let request = UpdateFunctionConfigurationRequest {
            name: self.function_name(given)?,
            max_retry_attempts: Some(model::DEFAULT_MAX_RETRY_ATTEMPTS),
            max_event_age_seconds: Some(model::DEFAULT_MAX_EVENT_AGE_SECONDS),
            on_failure_destination: Some(String::new()),
            on_success_destination: Some(String::new()),
            ..Default::default()
        };
        self.update_latest(request).await?;
        Ok((204, None))
    }

    /// Lambda's `FunctionEventInvokeConfig` of a function.
    async fn event_invoke_config(&self, configuration: &Value) -> Answer {
        let name = configuration["FunctionName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let functions = self.functions.clone();
        let info = blocking(move || functions.get(&name)).await?;
        let config = info.config.unwrap_or_default();
        let last_modified = chrono::DateTime::parse_from_rfc3339(&info.last_modified)
            .map(|t| t.timestamp_millis() as f64 / 1000.0)
            .unwrap_or_default();
        let mut destinations = json!({});
        for (key, destination) in [
            ("OnFailure", &config.on_failure_destination),
            ("OnSuccess", &config.on_success_destination),
        ] {
            if destination.is_empty() {
                continue;
            }
            let arn = kumo_proto::model::FunctionRef::parse(destination, None)
                .map(|f| self.functions.arn(&f.name, f.qualifier.as_deref()))
                .unwrap_or(destination.clone());
            destinations[key] = json!({"Destination": arn});
        }
        Ok((
            200,
            Some(json!({
                "FunctionArn": format!("{}:{}", info.function_arn, model::LATEST),
                "LastModified": last_modified,
                "MaximumRetryAttempts": config.max_retry_attempts,
                "MaximumEventAgeInSeconds": config.max_event_age_seconds,
                "DestinationConfig": destinations,
            })),
        ))
    }

    pub(super) async fn account_settings(&self) -> Answer {
        let functions = self.functions.clone();
        let list = blocking(move || functions.list()).await?;
        let limit = self.functions.limiter().cluster_limit();
        let reserved: i64 = list
            .iter()
            .filter_map(|f| f.config.as_ref().and_then(|c| c.reserved_concurrency))
            .map(i64::from)
            .sum();
        let total_code: u64 = list.iter().map(|f| f.code_size).sum();
        Ok((
            200,
            Some(json!({
                "AccountLimit": {
                    "CodeSizeUnzipped": model::MAX_PACKAGE_UNZIPPED_BYTES,
                    "CodeSizeZipped": model::MAX_PACKAGE_ZIPPED_BYTES,
                    "ConcurrentExecutions": limit,
                    "UnreservedConcurrentExecutions": (i64::from(limit) - reserved).max(0),
                },
                "AccountUsage": {"TotalCodeSize": total_code, "FunctionCount": list.len()},
            })),
        ))
    }
}

/// A function's reserved concurrency (None: unreserved).
async fn configuration_reserved(
    functions: &crate::state::functions::Functions,
    name: &str,
) -> Result<Option<i32>, ApiError> {
    let (functions, name) = (functions.clone(), name.to_string());
    let info = blocking(move || functions.get(&name)).await?;
    Ok(info.config.and_then(|c| c.reserved_concurrency))
}
