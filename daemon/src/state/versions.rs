//! Publishing versions and managing aliases (docs/wire-formats.md §8): a version
//! is an immutable snapshot of `$LATEST`; an alias points at a version and
//! can route a share of calls to a second one.

use std::sync::Arc;

use kumo_proto::control::{AliasConfig, AliasInfo, PublishVersionRequest, VersionInfo};
use kumo_proto::model::LATEST;

use crate::state::functions::{FunctionError, Functions};
use crate::state::qualifiers::is_version_number;
use crate::state::store::{AliasRecord, Store, StoreError, TriggerSource, VersionRecord};

/// A version or alias operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// The function (or the version/alias as an ARN) does not exist.
    #[error(transparent)]
    Function(#[from] FunctionError),
    /// `--expect-sha256` did not match `$LATEST`.
    #[error("PreconditionFailedException: CodeSha256 {actual} of $LATEST does not match the expected {expected}")]
    ShaMismatch {
        /// What the caller expected.
        expected: String,
        /// What `$LATEST` has.
        actual: String,
    },
    /// The version is used by an alias or a trigger.
    #[error("ResourceConflictException: version {version} of {function} is used by {user}; move or delete that first")]
    InUse {
        /// The function.
        function: String,
        /// The version.
        version: String,
        /// Who uses it.
        user: String,
    },
    /// An alias setting breaks a rule.
    #[error("invalid alias: {0}")]
    Invalid(String),
    /// The alias exists already.
    #[error("ResourceConflictException: alias {arn} already exists")]
    AliasExists {
        /// Its ARN.
        arn: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Versions and aliases.
#[derive(Clone)]
pub struct Versions {
    functions: Functions,
}

/// 1-128 letters, digits, `-` and `_`, not all digits.
fn alias_name_ok(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !is_version_number(name)
}

impl Versions {
    /// Versions over these functions.
    pub fn new(functions: Functions) -> Self {
        Self { functions }
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.functions.store()
    }

    fn not_found(&self, name: &str, qualifier: &str) -> VersionError {
        VersionError::Function(FunctionError::NotFound {
            arn: self.functions.arn(name, Some(qualifier)),
        })
    }

    /// Publishes `$LATEST`, or returns the last version when nothing changed.
    pub fn publish(&self, request: &PublishVersionRequest) -> Result<VersionInfo, VersionError> {
        let name = &request.function_name;
        let _writes = self.functions.lock_writes();
        let mut record = self.functions.get_record(name)?;
        self.functions
            .check_record_revision(&record, request.expect_revision_id.trim())?;
        let expected = request.expect_code_sha256.trim();
        if !expected.is_empty() && expected != record.code_sha256 {
            return Err(VersionError::ShaMismatch {
                expected: expected.to_string(),
                actual: record.code_sha256,
            });
        }
        let versions = self.store().list_versions(name)?;
        if let Some(last) = versions.last() {
            if last.code_sha256 == record.code_sha256 && last.config == record.config {
                return Ok(self.info(last));
            }
        }
        let number = record
            .published
            .max(versions.last().map_or(0, |v| v.version))
            + 1;
        let version = VersionRecord {
            function: name.clone(),
            version: number,
            description: request.description.clone(),
            config: record.config.clone(),
            package_digest: record.package_digest.clone(),
            code_sha256: record.code_sha256.clone(),
            code_size: record.code_size,
            revision: record.revision,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        self.store().put_version(&version)?;
        record.published = number;
        self.store().put_function(&record)?;
        tracing::info!(function = %name, version = number, "version published");
        Ok(self.info(&version))
    }

    /// A function's versions, `$LATEST` first.
    pub fn list(&self, name: &str) -> Result<Vec<VersionInfo>, VersionError> {
        let record = self.functions.get_record(name)?;
        let latest = VersionInfo {
            function_name: name.to_string(),
            version: LATEST.to_string(),
            description: record.config.description.clone(),
            code_sha256: record.code_sha256.clone(),
            config: Some(record.config.to_proto()),
            function_arn: self.functions.arn(name, Some(LATEST)),
            created_at: record.last_modified.clone(),
            code_size: record.code_size,
            layers: record.config.layer_infos(),
        };
        let mut list = vec![latest];
        list.extend(
            self.store()
                .list_versions(name)?
                .iter()
                .map(|v| self.info(v)),
        );
        Ok(list)
    }

    /// Deletes a version no alias or trigger uses.
    pub fn delete(&self, name: &str, version: &str) -> Result<(), VersionError> {
        self.functions.get_record(name)?;
        let number: u64 = version
            .parse()
            .map_err(|_| VersionError::Invalid(format!("{version:?} is not a published version number ($LATEST cannot be deleted this way)")))?;
        let record = self
            .store()
            .get_version(name, number)?
            .ok_or_else(|| self.not_found(name, version))?;
        for alias in self.store().list_aliases(name)? {
            let extra = alias.extra.as_ref().map(|(v, _)| v.as_str());
            if alias.version == version || extra == Some(version) {
                return Err(VersionError::InUse {
                    function: name.to_string(),
                    version: version.to_string(),
                    user: format!("alias {}", alias.name),
                });
            }
        }
        for trigger in self.store().list_triggers()? {
            if trigger.function == *name && trigger.qualifier.as_deref() == Some(version) {
                return Err(VersionError::InUse {
                    function: name.to_string(),
                    version: version.to_string(),
                    user: format!("trigger {}", trigger.name),
                });
            }
        }
        self.store().delete_version(name, number)?;
        self.functions.collect_package(&record.package_digest)?;
        Ok(())
    }

    fn info(&self, version: &VersionRecord) -> VersionInfo {
        let number = version.version.to_string();
        VersionInfo {
            function_name: version.function.clone(),
            function_arn: self.functions.arn(&version.function, Some(&number)),
            version: number,
            description: version.description.clone(),
            code_sha256: version.code_sha256.clone(),
            config: Some(version.config.to_proto()),
            created_at: version.created.clone(),
            code_size: version.code_size,
            layers: version.config.layer_infos(),
        }
    }

    fn check_alias(&self, config: &AliasConfig) -> Result<AliasRecord, VersionError> {
        let name = &config.function_name;
        self.functions.get_record(name)?;
        if !alias_name_ok(&config.name) {
            return Err(VersionError::Invalid(format!(
                "name {:?} must be 1-128 letters, digits, '-' or '_', and not all digits (that would be a version)",
                config.name
            )));
        }
        let version_exists = |v: &str| -> Result<bool, VersionError> {
            if v == LATEST {
                return Ok(true);
            }
            match v.parse::<u64>() {
                Ok(n) if is_version_number(v) => Ok(self.store().get_version(name, n)?.is_some()),
                _ => Ok(false),
            }
        };
        if !version_exists(&config.version)? {
            return Err(VersionError::Invalid(format!(
                "version {:?} of {name} is not published (an alias points at a published version or $LATEST, never another alias)",
                config.version
            )));
        }
        let extra = if config.extra_version.is_empty() {
            if config.extra_weight != 0.0 {
                return Err(VersionError::Invalid(
                    "a weight needs --extra-version".into(),
                ));
            }
            None
        } else {
            if !(0.0..=1.0).contains(&config.extra_weight) || config.extra_weight.is_nan() {
                return Err(VersionError::Invalid(format!(
                    "weight {} is outside 0-1",
                    config.extra_weight
                )));
            }
            if config.version == LATEST || config.extra_version == LATEST {
                return Err(VersionError::Invalid(
                    "a weighted alias routes between published versions, not $LATEST".into(),
                ));
            }
            if config.extra_version == config.version {
                return Err(VersionError::Invalid(
                    "the extra version must differ from the main version".into(),
                ));
            }
            if config.extra_version.contains(',') || !version_exists(&config.extra_version)? {
                return Err(VersionError::Invalid(format!(
                    "extra version {:?} of {name} is not a published version (one extra version at most)",
                    config.extra_version
                )));
            }
            Some((config.extra_version.clone(), config.extra_weight))
        };
        Ok(AliasRecord {
            function: name.clone(),
            name: config.name.clone(),
            version: config.version.clone(),
            extra,
            description: config.description.clone(),
            revision: 1,
        })
    }

    /// Creates an alias.
    pub fn create_alias(&self, config: &AliasConfig) -> Result<AliasInfo, VersionError> {
        let alias = self.check_alias(config)?;
        if self
            .store()
            .get_alias(&alias.function, &alias.name)?
            .is_some()
        {
            return Err(VersionError::AliasExists {
                arn: self.functions.arn(&alias.function, Some(&alias.name)),
            });
        }
        self.store().put_alias(&alias)?;
        Ok(self.alias_info(&alias))
    }

    /// Moves an alias (takes effect for the next call).
    pub fn update_alias(&self, config: &AliasConfig) -> Result<AliasInfo, VersionError> {
        let mut alias = self.check_alias(config)?;
        let old = self
            .store()
            .get_alias(&alias.function, &alias.name)?
            .ok_or_else(|| self.not_found(&config.function_name, &config.name))?;
        alias.revision = old.revision + 1;
        self.store().put_alias(&alias)?;
        Ok(self.alias_info(&alias))
    }

    /// One alias.
    pub fn get_alias(&self, name: &str, alias: &str) -> Result<AliasInfo, VersionError> {
        self.functions.get_record(name)?;
        let record = self
            .store()
            .get_alias(name, alias)?
            .ok_or_else(|| self.not_found(name, alias))?;
        Ok(self.alias_info(&record))
    }

    /// A function's aliases.
    pub fn list_aliases(&self, name: &str) -> Result<Vec<AliasInfo>, VersionError> {
        self.functions.get_record(name)?;
        Ok(self
            .store()
            .list_aliases(name)?
            .iter()
            .map(|a| self.alias_info(a))
            .collect())
    }

    /// Deletes an alias no trigger uses.
    pub fn delete_alias(&self, name: &str, alias: &str) -> Result<(), VersionError> {
        self.get_alias(name, alias)?;
        for trigger in self.store().list_triggers()? {
            if trigger.function == name && trigger.qualifier.as_deref() == Some(alias) {
                let kind = match trigger.source {
                    TriggerSource::Schedule { .. } => "schedule",
                    TriggerSource::Bucket { .. } => "bucket",
                    TriggerSource::Http { .. } => "HTTP",
                    TriggerSource::Sqs(_) => "SQS",
                    TriggerSource::Sns(_) => "SNS",
                };
                return Err(VersionError::InUse {
                    function: name.to_string(),
                    version: alias.to_string(),
                    user: format!("{kind} trigger {}", trigger.name),
                });
            }
        }
        self.store().delete_alias(name, alias)?;
        Ok(())
    }

    fn alias_info(&self, alias: &AliasRecord) -> AliasInfo {
        let (extra_version, extra_weight) = alias.extra.clone().unwrap_or_default();
        AliasInfo {
            alias_arn: self.functions.arn(&alias.function, Some(&alias.name)),
            config: Some(AliasConfig {
                function_name: alias.function.clone(),
                name: alias.name.clone(),
                version: alias.version.clone(),
                extra_version,
                extra_weight,
                description: alias.description.clone(),
            }),
        }
    }
}
