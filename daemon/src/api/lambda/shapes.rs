//! Lambda's JSON shapes (docs/wire-formats.md §12): the request bodies the
//! management API reads and the `FunctionConfiguration` and alias objects it
//! answers with, built from the control API's protocol types.

use std::collections::HashMap;

use base64::Engine;
use kumo_proto::control::{
    AliasConfig, AliasInfo, FunctionConfig, FunctionInfo, FunctionLayer, VersionInfo,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use crate::state::revisions::revision_id;

/// `Code` of CreateFunction, and the body of UpdateFunctionCode.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeInput {
    /// Base64 of the ZIP.
    pub zip_file: Option<String>,
    /// Bucket of the ZIP in S3.
    pub s3_bucket: Option<String>,
    /// Key of the ZIP in S3.
    pub s3_key: Option<String>,
    /// Container image: refused.
    pub image_uri: Option<String>,
}

/// `Environment`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentInput {
    /// The variables.
    #[serde(default)]
    pub variables: HashMap<String, String>,
}

/// `EphemeralStorage`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralStorageInput {
    /// Size in MB.
    pub size: u32,
}

/// `DeadLetterConfig`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterConfigInput {
    /// An SQS queue or SNS topic ARN; "" (or absent) removes it.
    pub target_arn: Option<String>,
}

/// Fields that CreateFunction and UpdateFunctionConfiguration share.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigurationInput {
    /// Runtime identifier.
    pub runtime: Option<String>,
    /// Execution role ARN (echoed back).
    pub role: Option<String>,
    /// Handler.
    pub handler: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Timeout in seconds.
    pub timeout: Option<u32>,
    /// Memory in MB.
    pub memory_size: Option<u32>,
    /// Environment variables.
    pub environment: Option<EnvironmentInput>,
    /// `/tmp` size.
    pub ephemeral_storage: Option<EphemeralStorageInput>,
    /// Layer version ARNs (at most 5), in `/opt` order; `[]` removes them
    /// in an update.
    pub layers: Option<Vec<String>>,
    /// `Zip` (the only kind Kumo runs).
    pub package_type: Option<String>,
    /// Checked against the host's.
    pub architectures: Option<Vec<String>>,
    /// Expected current RevisionId (updates only).
    pub revision_id: Option<String>,
    /// Where events that fail for good are sent (queue or topic).
    pub dead_letter_config: Option<DeadLetterConfigInput>,
}

/// The body of CreateFunction.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateFunctionInput {
    /// Name, or an ARN of this kumod's region and account.
    pub function_name: String,
    /// The package.
    #[serde(default)]
    pub code: CodeInput,
    /// Publish version 1 at once.
    #[serde(default)]
    pub publish: bool,
    /// Tags, echoed back.
    #[serde(default)]
    pub tags: HashMap<String, String>,
    /// The rest of the configuration.
    #[serde(flatten)]
    pub configuration: ConfigurationInput,
}

/// The body of UpdateFunctionCode.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateCodeInput {
    /// The package.
    #[serde(flatten)]
    pub code: CodeInput,
    /// Publish a version afterwards.
    #[serde(default)]
    pub publish: bool,
    /// Expected current RevisionId.
    pub revision_id: Option<String>,
    /// Checked against the host's.
    pub architectures: Option<Vec<String>>,
}

/// The architecture name of this host in Lambda's terms.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    }
}

/// Refuses architectures this host cannot run.
pub fn check_architectures(architectures: Option<&[String]>) -> Result<(), ApiError> {
    let host = host_architecture();
    match architectures {
        None => Ok(()),
        Some([one]) if one == host => Ok(()),
        Some(other) => Err(ApiError::invalid(format!(
            "Architectures {other:?} cannot run here: this Kumo host runs only [\"{host}\"] functions"
        ))),
    }
}

/// Refuses package types other than Zip and foreign architectures.
pub fn check_unsupported(configuration: &ConfigurationInput) -> Result<(), ApiError> {
    match configuration.package_type.as_deref() {
        None | Some("Zip") => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "PackageType {other:?} is not supported: Kumo runs Zip packages only"
            )))
        }
    }
    check_architectures(configuration.architectures.as_deref())
}

/// The package bytes of a base64 `ZipFile`.
pub fn decode_zip(encoded: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| ApiError::invalid(format!("ZipFile is not valid base64: {e}")))
}

/// Parses a JSON body, refusing malformed ones with Lambda's code.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            400,
            "InvalidRequestContentException",
            format!("Could not parse request body into json: {e}"),
        )
    })
}

/// Lambda's `LastModified`: `2026-11-30T10:00:00.000+0000`.
pub fn lambda_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// The parts of a `FunctionConfiguration` that differ between `$LATEST`
/// and a published version.
pub struct Identity<'a> {
    /// The (qualified for versions) ARN.
    pub function_arn: &'a str,
    /// `$LATEST` or the number.
    pub version: &'a str,
    /// Base64 SHA-256 of the package.
    pub code_sha256: &'a str,
    /// Package size.
    pub code_size: u64,
    /// RFC 3339 time of the last change.
    pub last_modified: &'a str,
    /// Lambda's RevisionId.
    pub revision_id: String,
    /// The layers with their sizes.
    pub layers: &'a [FunctionLayer],
}

/// Lambda's `FunctionConfiguration` of a configuration.
pub fn function_configuration(config: &FunctionConfig, identity: Identity<'_>) -> Value {
    let mut configuration = json!({
        "FunctionName": config.name,
        "FunctionArn": identity.function_arn,
        "Runtime": config.runtime,
        "Role": config.role,
        "Handler": config.handler,
        "CodeSize": identity.code_size,
        "Description": config.description,
        "Timeout": config.timeout_seconds,
        "MemorySize": config.memory_mb,
        "LastModified": lambda_time(identity.last_modified),
        "CodeSha256": identity.code_sha256,
        "Version": identity.version,
        "Environment": {"Variables": config.environment},
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": identity.revision_id,
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": [host_architecture()],
        "EphemeralStorage": {"Size": config.ephemeral_storage_mb},
        "Layers": identity.layers.iter().map(|l| json!({"Arn": l.arn, "CodeSize": l.code_size})).collect::<Vec<_>>(),
    });
    if !config.dead_letter_target.is_empty() {
        configuration["DeadLetterConfig"] = json!({"TargetArn": config.dead_letter_target});
    }
    configuration
}

/// `FunctionConfiguration` of `$LATEST`.
pub fn latest_configuration(info: &FunctionInfo) -> Value {
    let config = info.config.clone().unwrap_or_default();
    let revision_id = revision_id(&config.name, info.revision, &info.last_modified);
    function_configuration(
        &config,
        Identity {
            function_arn: &info.function_arn,
            version: &info.version,
            code_sha256: &info.code_sha256,
            code_size: info.code_size,
            last_modified: &info.last_modified,
            revision_id,
            layers: &info.layers,
        },
    )
}

/// `FunctionConfiguration` of a published version (or the `$LATEST` row
/// of a version list).
pub fn version_configuration(info: &VersionInfo) -> Value {
    let config = info.config.clone().unwrap_or_default();
    let revision_id = revision_id(&info.function_arn, 0, &info.created_at);
    let mut value = function_configuration(
        &config,
        Identity {
            function_arn: &info.function_arn,
            version: &info.version,
            code_sha256: &info.code_sha256,
            code_size: info.code_size,
            last_modified: &info.created_at,
            revision_id,
            layers: &info.layers,
        },
    );
    value["Description"] = json!(info.description);
    value
}

/// Lambda's alias object.
pub fn alias_configuration(info: &AliasInfo) -> Value {
    let config = info.config.clone().unwrap_or_default();
    let mut value = json!({
        "AliasArn": info.alias_arn,
        "Name": config.name,
        "FunctionVersion": config.version,
        "Description": config.description,
        "RevisionId": alias_revision_id(&info.alias_arn, &config),
    });
    if !config.extra_version.is_empty() {
        value["RoutingConfig"] = json!({
            "AdditionalVersionWeights": {config.extra_version.clone(): config.extra_weight}
        });
    }
    value
}

/// An alias's RevisionId: changes whenever what it points at changes.
pub fn alias_revision_id(alias_arn: &str, config: &AliasConfig) -> String {
    let state = format!(
        "{}\n{}\n{}\n{}",
        config.version, config.extra_version, config.extra_weight, config.description
    );
    revision_id(alias_arn, 0, &state)
}
