//! Create/Get/Update/Delete/ListAliases with `RoutingConfig`, over
//! `state::versions`.

use std::collections::HashMap;

use kumo_proto::control::AliasConfig;
use serde::Deserialize;

use super::{blocking, listing, Answer, Management};
use crate::api::lambda::errors::ApiError;
use crate::api::lambda::shapes;
use crate::api::lambda::ApiRequest;

/// `RoutingConfig`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoutingInput {
    #[serde(default)]
    additional_version_weights: HashMap<String, f64>,
}

/// The body of CreateAlias and UpdateAlias.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasInput {
    name: Option<String>,
    function_version: Option<String>,
    description: Option<String>,
    routing_config: Option<RoutingInput>,
    revision_id: Option<String>,
}

impl AliasInput {
    /// The alias configuration, fields not given taken from `current`.
    fn into_config(self, current: AliasConfig) -> Result<AliasConfig, ApiError> {
        let (extra_version, extra_weight) = match self.routing_config {
            None => (current.extra_version, current.extra_weight),
            Some(routing) => {
                let mut weights = routing.additional_version_weights.into_iter();
                match (weights.next(), weights.next()) {
                    (None, _) => (String::new(), 0.0),
                    (Some(one), None) => one,
                    (Some(_), Some(_)) => {
                        return Err(ApiError::invalid(
                            "RoutingConfig.AdditionalVersionWeights takes one version",
                        ))
                    }
                }
            }
        };
        Ok(AliasConfig {
            function_name: current.function_name,
            name: self.name.unwrap_or(current.name),
            version: self.function_version.unwrap_or(current.version),
            extra_version,
            extra_weight,
            description: self.description.unwrap_or(current.description),
        })
    }
}

impl Management {
    pub(super) async fn create_alias(&self, given: &str, body: &[u8]) -> Answer {
        let name = self.function_name(given)?;
        let input: AliasInput = shapes::parse_body(body)?;
        let config = input.into_config(AliasConfig {
            function_name: name,
            ..Default::default()
        })?;
        let versions = self.versions.clone();
        let info = blocking(move || versions.create_alias(&config)).await?;
        Ok((201, Some(shapes::alias_configuration(&info))))
    }

    pub(super) async fn get_alias(&self, given: &str, alias: &str) -> Answer {
        let name = self.function_name(given)?;
        let (versions, alias) = (self.versions.clone(), alias.to_string());
        let info = blocking(move || versions.get_alias(&name, &alias)).await?;
        Ok((200, Some(shapes::alias_configuration(&info))))
    }

    pub(super) async fn update_alias(&self, given: &str, alias: &str, body: &[u8]) -> Answer {
        let name = self.function_name(given)?;
        let input: AliasInput = shapes::parse_body(body)?;
        let (versions, alias) = (self.versions.clone(), alias.to_string());
        let info = blocking(move || {
            let current = versions.get_alias(&name, &alias)?;
            let current_config = current.config.clone().unwrap_or_default();
            if let Some(expected) = &input.revision_id {
                let now = shapes::alias_revision_id(&current.alias_arn, &current_config);
                if *expected != now {
                    return Err(ApiError::new(
                        412,
                        "PreconditionFailedException",
                        format!("the RevisionId {expected} does not match the current {now} of {}; get the alias again", current.alias_arn),
                    ));
                }
            }
            let config = AliasInput {
                name: None,
                ..input
            }
            .into_config(current_config)?;
            versions.update_alias(&config).map_err(ApiError::from)
        })
        .await?;
        Ok((200, Some(shapes::alias_configuration(&info))))
    }

    pub(super) async fn delete_alias(&self, given: &str, alias: &str) -> Answer {
        let name = self.function_name(given)?;
        let (versions, alias) = (self.versions.clone(), alias.to_string());
        blocking(move || versions.delete_alias(&name, &alias)).await?;
        Ok((204, None))
    }

    pub(super) async fn list_aliases(&self, given: &str, request: &ApiRequest) -> Answer {
        let name = self.function_name(given)?;
        let versions = self.versions.clone();
        let list = blocking(move || versions.list_aliases(&name)).await?;
        listing(
            request,
            "Aliases",
            list,
            |a| a.alias_arn.clone(),
            shapes::alias_configuration,
        )
    }
}
