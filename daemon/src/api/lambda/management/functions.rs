//! CreateFunction, Get/List/Delete, the two updates, and versions: Lambda's
//! shapes over `state::functions` and `state::versions`.

use kumo_proto::control::{
    FunctionConfig, PublishVersionRequest, UpdateFunctionConfigurationRequest, VersionInfo,
};
use kumo_proto::model::LATEST;
use serde::Deserialize;
use serde_json::json;

use super::{blocking, listing, query_param, Answer, Management};
use crate::api::lambda::errors::ApiError;
use crate::api::lambda::shapes::{self, CodeInput, ConfigurationInput, CreateFunctionInput};
use crate::api::lambda::ApiRequest;
use crate::s3::S3Error;
use crate::state::qualifiers::is_version_number;

/// The body of PublishVersion.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublishInput {
    code_sha256: Option<String>,
    description: Option<String>,
    revision_id: Option<String>,
}

impl Management {
    /// The ZIP a `Code` names: base64 bytes, or an object fetched through
    /// the configured S3 profile.
    pub(super) async fn package(&self, code: &CodeInput) -> Result<Vec<u8>, ApiError> {
        if code.image_uri.is_some() {
            return Err(ApiError::invalid(
                "ImageUri: Kumo runs Zip packages only, not container images",
            ));
        }
        match (&code.zip_file, &code.s3_bucket, &code.s3_key) {
            (Some(zip), None, None) => shapes::decode_zip(zip),
            (None, Some(bucket), Some(key)) => {
                let Some(profile) = &self.code_s3_profile else {
                    return Err(ApiError::invalid(
                        "S3Bucket/S3Key need [invoke_api] code_s3_profile in kumod's configuration",
                    ));
                };
                self.functions
                    .s3()
                    .get_package(profile, bucket, key)
                    .await
                    .map_err(|e| match e {
                        S3Error::TooLarge { .. } => {
                            ApiError::new(400, "CodeStorageExceededException", e.to_string())
                        }
                        other => ApiError::invalid(other.to_string()),
                    })
            }
            _ => Err(ApiError::invalid(
                "Code needs either ZipFile or both S3Bucket and S3Key",
            )),
        }
    }

    pub(super) async fn create_function(&self, body: &[u8]) -> Answer {
        let input: CreateFunctionInput = shapes::parse_body(body)?;
        shapes::check_unsupported(&input.configuration)?;
        let name = self.function_name(&input.function_name)?;
        let zip = self.package(&input.code).await?;
        let c = input.configuration;
        let config = FunctionConfig {
            name,
            description: c.description.unwrap_or_default(),
            runtime: c.runtime.unwrap_or_default(),
            handler: c.handler.unwrap_or_default(),
            memory_mb: c.memory_size,
            timeout_seconds: c.timeout,
            environment: c.environment.map(|e| e.variables).unwrap_or_default(),
            tags: input.tags,
            ephemeral_storage_mb: c.ephemeral_storage.map(|e| e.size),
            role: c.role.unwrap_or_default(),
            layers: c.layers.unwrap_or_default(),
            dead_letter_target: c
                .dead_letter_config
                .and_then(|d| d.target_arn)
                .unwrap_or_default(),
            ..Default::default()
        };
        let functions = self.functions.clone();
        let info = blocking(move || functions.create(config, &zip)).await?;
        let runtime = info
            .config
            .as_ref()
            .map(|c| c.runtime.as_str())
            .unwrap_or_default();
        if let Some(warning) = self.agents.runtime_warning(runtime) {
            tracing::warn!(function = %info.function_arn, "{warning}");
        }
        if input.publish {
            let version = self
                .publish(&info.function_arn, PublishInput::default())
                .await?;
            return Ok((201, Some(shapes::version_configuration(&version))));
        }
        Ok((201, Some(shapes::latest_configuration(&info))))
    }

    pub(super) async fn list_functions(&self, request: &ApiRequest) -> Answer {
        let functions = self.functions.clone();
        let list = blocking(move || functions.list()).await?;
        listing(
            request,
            "Functions",
            list,
            |info| {
                info.config
                    .as_ref()
                    .map(|c| c.name.clone())
                    .unwrap_or_default()
            },
            shapes::latest_configuration,
        )
    }

    /// The configuration of `$LATEST`, a version or the version an alias
    /// points at.
    async fn configuration_of(
        &self,
        given: &str,
        qualifier: Option<String>,
    ) -> Result<(serde_json::Value, String), ApiError> {
        let name = self.function_name(given)?;
        let functions = self.functions.clone();
        let versions = self.versions.clone();
        blocking(move || {
            let latest = functions.get(&name)?;
            let Some(qualifier) = qualifier.filter(|q| q != LATEST) else {
                return Ok((shapes::latest_configuration(&latest), name));
            };
            let (version, alias_arn) = if is_version_number(&qualifier) {
                (qualifier, None)
            } else {
                let alias = versions.get_alias(&name, &qualifier)?;
                let version = alias.config.map(|c| c.version).unwrap_or_default();
                (version, Some(alias.alias_arn))
            };
            if version == LATEST {
                let mut value = shapes::latest_configuration(&latest);
                value["FunctionArn"] = json!(alias_arn);
                return Ok((value, name));
            }
            let info = versions
                .list(&name)?
                .into_iter()
                .find(|v| v.version == version)
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "Function not found: {}",
                        functions.arn(&name, Some(&version))
                    ))
                })?;
            let mut value = shapes::version_configuration(&info);
            if let Some(arn) = alias_arn {
                value["FunctionArn"] = json!(arn);
            }
            Ok::<_, ApiError>((value, name))
        })
        .await
    }

    pub(super) async fn get_function(&self, given: &str, request: &ApiRequest) -> Answer {
        let (configuration, name) = self
            .configuration_of(given, query_param(request, "Qualifier"))
            .await?;
        let functions = self.functions.clone();
        let latest = blocking(move || functions.get(&name)).await?;
        let config = latest.config.unwrap_or_default();
        let mut body = json!({
            "Configuration": configuration,
            "Code": {"RepositoryType": "Kumo", "Location": ""},
            "Tags": config.tags,
        });
        if let Some(reserved) = config.reserved_concurrency {
            body["Concurrency"] = json!({"ReservedConcurrentExecutions": reserved});
        }
        Ok((200, Some(body)))
    }

    pub(super) async fn get_configuration(&self, given: &str, request: &ApiRequest) -> Answer {
        let (configuration, _) = self
            .configuration_of(given, query_param(request, "Qualifier"))
            .await?;
        Ok((200, Some(configuration)))
    }

    pub(super) async fn delete_function(&self, given: &str, request: &ApiRequest) -> Answer {
        let name = self.function_name(given)?;
        let qualifier = query_param(request, "Qualifier").filter(|q| q != LATEST);
        match qualifier {
            None => {
                let functions = self.functions.clone();
                blocking(move || functions.delete(&name)).await?;
            }
            Some(version) if is_version_number(&version) => {
                let versions = self.versions.clone();
                blocking(move || versions.delete(&name, &version)).await?;
            }
            Some(alias) => {
                return Err(ApiError::invalid(format!(
                "Qualifier {alias:?}: deleting an alias this way is not supported; use DeleteAlias"
            )))
            }
        }
        Ok((204, None))
    }

    pub(super) async fn update_code(&self, given: &str, body: &[u8]) -> Answer {
        let input: shapes::UpdateCodeInput = shapes::parse_body(body)?;
        shapes::check_architectures(input.architectures.as_deref())?;
        let name = self.function_name(given)?;
        let zip = self.package(&input.code).await?;
        let functions = self.functions.clone();
        let expected = input.revision_id.clone().unwrap_or_default();
        let info = blocking(move || functions.update_code(&name, &zip, &expected)).await?;
        if input.publish {
            let version = self
                .publish(&info.function_arn, PublishInput::default())
                .await?;
            return Ok((200, Some(shapes::version_configuration(&version))));
        }
        Ok((200, Some(shapes::latest_configuration(&info))))
    }

    pub(super) async fn update_configuration(&self, given: &str, body: &[u8]) -> Answer {
        let input: ConfigurationInput = shapes::parse_body(body)?;
        shapes::check_unsupported(&input)?;
        let name = self.function_name(given)?;
        let request = UpdateFunctionConfigurationRequest {
            name: name.clone(),
            description: input.description,
            runtime: input.runtime,
            handler: input.handler,
            memory_mb: input.memory_size,
            timeout_seconds: input.timeout,
            set_environment: input.environment.is_some(),
            environment: input.environment.map(|e| e.variables).unwrap_or_default(),
            ephemeral_storage_mb: input.ephemeral_storage.map(|e| e.size),
            role: input.role,
            set_layers: input.layers.is_some(),
            layers: input.layers.unwrap_or_default(),
            expect_revision_id: input.revision_id.unwrap_or_default(),
            dead_letter_target: input
                .dead_letter_config
                .map(|d| d.target_arn.unwrap_or_default()),
            ..Default::default()
        };
        Ok((200, Some(self.update_latest(request).await?)))
    }

    /// Applies a configuration update (refused unless its
    /// `expect_revision_id`, when given, is current) and answers with the
    /// new `$LATEST` configuration.
    pub(super) async fn update_latest(
        &self,
        request: UpdateFunctionConfigurationRequest,
    ) -> Result<serde_json::Value, ApiError> {
        let functions = self.functions.clone();
        let info = blocking(move || functions.update_configuration(request)).await?;
        Ok(shapes::latest_configuration(&info))
    }

    async fn publish(&self, given: &str, input: PublishInput) -> Result<VersionInfo, ApiError> {
        let name = self.function_name(given)?;
        let versions = self.versions.clone();
        blocking(move || {
            let request = PublishVersionRequest {
                function_name: name,
                description: input.description.unwrap_or_default(),
                expect_code_sha256: input.code_sha256.unwrap_or_default(),
                expect_revision_id: input.revision_id.unwrap_or_default(),
            };
            versions.publish(&request).map_err(ApiError::from)
        })
        .await
    }

    pub(super) async fn publish_version(&self, given: &str, body: &[u8]) -> Answer {
        let input: PublishInput = shapes::parse_body(body)?;
        let version = self.publish(given, input).await?;
        Ok((201, Some(shapes::version_configuration(&version))))
    }

    pub(super) async fn list_versions(&self, given: &str, request: &ApiRequest) -> Answer {
        let name = self.function_name(given)?;
        let versions = self.versions.clone();
        let list = blocking(move || versions.list(&name)).await?;
        listing(
            request,
            "Versions",
            list,
            |v| v.version.clone(),
            shapes::version_configuration,
        )
    }
}
