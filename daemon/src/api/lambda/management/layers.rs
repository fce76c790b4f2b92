//! PublishLayerVersion, GetLayerVersion (also by ARN), ListLayers,
//! ListLayerVersions and DeleteLayerVersion (docs/wire-formats.md §12, §13):
//! Lambda's shapes over `state::layers`.

use kumo_proto::control::{LayerVersionInfo, PublishLayerVersionRequest};
use kumo_proto::model;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{blocking, listing, query_param, Answer, Management};
use crate::api::lambda::errors::ApiError;
use crate::api::lambda::shapes::{self, CodeInput};
use crate::api::lambda::ApiRequest;
use crate::state::layers::LayerError;

/// The body of PublishLayerVersion.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublishLayerInput {
    #[serde(default)]
    content: CodeInput,
    description: Option<String>,
    #[serde(default)]
    compatible_runtimes: Vec<String>,
    license_info: Option<String>,
    compatible_architectures: Option<Vec<String>>,
}

/// The fields ListLayerVersions and ListLayers' `LatestMatchingVersion`
/// show of a version.
fn version_summary(info: &LayerVersionInfo) -> Value {
    json!({
        "LayerVersionArn": info.layer_version_arn,
        "Version": info.version,
        "Description": info.description,
        "CreatedDate": shapes::lambda_time(&info.created),
        "CompatibleRuntimes": info.compatible_runtimes,
        "LicenseInfo": info.license_info,
        "CompatibleArchitectures": [shapes::host_architecture()],
    })
}

/// The answer of PublishLayerVersion and GetLayerVersion.
fn layer_version(info: &LayerVersionInfo) -> Value {
    let mut value = version_summary(info);
    value["LayerArn"] = json!(info.layer_arn);
    value["Content"] = json!({
        "Location": "",
        "CodeSha256": info.code_sha256,
        "CodeSize": info.code_size,
    });
    value
}

/// Whether a version lists `runtime` (a `CompatibleRuntime` filter).
fn matches_runtime(info: &LayerVersionInfo, runtime: Option<&str>) -> bool {
    runtime.is_none_or(|r| info.compatible_runtimes.iter().any(|c| c == r))
}

impl Management {
    /// The layer name a path segment gives: a name, or a layer ARN of this
    /// kumod's region and account.
    fn layer_name(&self, given: &str) -> Result<String, ApiError> {
        let name = match given.rsplit_once(":layer:") {
            Some((prefix, name)) => {
                let (region, account) = self.functions.region_and_account();
                if prefix != format!("arn:aws:lambda:{region}:{account}") {
                    return Err(ApiError::not_found(format!(
                        "Layer {given} does not exist (kumod serves {region}, account {account})"
                    )));
                }
                name
            }
            None => given,
        };
        model::validate_layer_name(name).map_err(|e| ApiError::invalid(e.to_string()))?;
        Ok(name.to_string())
    }

    pub(super) async fn publish_layer_version(&self, given: &str, body: &[u8]) -> Answer {
        let input: PublishLayerInput = shapes::parse_body(body)?;
        shapes::check_architectures(input.compatible_architectures.as_deref())?;
        let layer_name = self.layer_name(given)?;
        let zip = self.package(&input.content).await?;
        let request = PublishLayerVersionRequest {
            layer_name,
            description: input.description.unwrap_or_default(),
            zip,
            code_s3: None,
            compatible_runtimes: input.compatible_runtimes,
            license_info: input.license_info.unwrap_or_default(),
        };
        let layers = self.layers.clone();
        let info = blocking(move || layers.publish(&request)).await?;
        Ok((201, Some(layer_version(&info))))
    }

    pub(super) async fn get_layer_version(&self, given: &str, version: &str) -> Answer {
        let name = self.layer_name(given)?;
        let number = parse_version(version)?;
        let layers = self.layers.clone();
        let info = blocking(move || layers.get(&name, number)).await?;
        Ok((200, Some(layer_version(&info))))
    }

    /// `GET /2018-10-31/layers?find=LayerVersion&Arn=…` (GetLayerVersionByArn)
    /// or ListLayers.
    pub(super) async fn layers_query(&self, request: &ApiRequest) -> Answer {
        if query_param(request, "find").as_deref() == Some("LayerVersion") {
            let arn = query_param(request, "Arn")
                .ok_or_else(|| ApiError::invalid("GetLayerVersionByArn needs Arn"))?;
            let layers = self.layers.clone();
            let info = blocking(move || layers.get(&arn, 0)).await?;
            return Ok((200, Some(layer_version(&info))));
        }
        let runtime = query_param(request, "CompatibleRuntime");
        let layers = self.layers.clone();
        let latest = blocking(move || layers.list_layers(runtime.as_deref())).await?;
        listing(
            request,
            "Layers",
            latest,
            |info| info.layer_name.clone(),
            |info| {
                json!({
                    "LayerName": info.layer_name,
                    "LayerArn": info.layer_arn,
                    "LatestMatchingVersion": version_summary(info),
                })
            },
        )
    }

    pub(super) async fn list_layer_versions(&self, given: &str, request: &ApiRequest) -> Answer {
        let name = self.layer_name(given)?;
        let runtime = query_param(request, "CompatibleRuntime");
        let layers = self.layers.clone();
        let mut versions = blocking(move || layers.list_versions(&name)).await?;
        versions.retain(|v| matches_runtime(v, runtime.as_deref()));
        versions.reverse();
        listing(
            request,
            "LayerVersions",
            versions,
            |info| info.version.to_string(),
            version_summary,
        )
    }

    pub(super) async fn delete_layer_version(&self, given: &str, version: &str) -> Answer {
        let name = self.layer_name(given)?;
        let number = parse_version(version)?;
        let layers = self.layers.clone();
        // As on Lambda, deleting a version that does not exist succeeds.
        blocking(move || match layers.delete(&name, number) {
            Err(LayerError::NotFound { .. }) => Ok(()),
            other => other,
        })
        .await?;
        Ok((204, None))
    }
}

/// A `VersionNumber` path segment.
fn parse_version(given: &str) -> Result<u64, ApiError> {
    given.parse::<u64>().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError::invalid(format!("VersionNumber {given:?} is not a positive number"))
    })
}
