//! Layers (docs/wire-formats.md §13): versioned, content-addressed packages
//! a function lists (at most five) and the agent unpacks, in order, into the
//! sandbox's read-only `/opt`. A version is immutable; one that a function
//! (`$LATEST` or a published version) uses cannot be deleted.

use std::sync::Arc;

use kumo_proto::control::{LayerVersionInfo, PublishLayerVersionRequest};
use kumo_proto::model::{
    self, LayerVersionRef, ValidationError, MAX_COMPATIBLE_RUNTIMES, MAX_DESCRIPTION_CHARS,
    MAX_PACKAGE_UNZIPPED_BYTES,
};

use crate::state::functions::{FunctionError, Functions};
use crate::state::packages::PackageError;
use crate::state::store::{LayerVersionRecord, Store, StoreError, StoredLayer};

/// Longest `license_info`, as on Lambda.
const MAX_LICENSE_CHARS: usize = 512;

/// A layer operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// No such layer version.
    #[error("Layer version {arn} does not exist")]
    NotFound {
        /// The ARN asked for.
        arn: String,
    },
    /// A value breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Functions use the version.
    #[error("Layer version {arn} is used by {}; remove it from their layers (and delete the versions that list it) first", users.join(", "))]
    InUse {
        /// The layer version.
        arn: String,
        /// `NAME` ($LATEST) or `NAME:VERSION`.
        users: Vec<String>,
    },
    /// The ZIP was refused or could not be stored.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The functions' side failed.
    #[error(transparent)]
    Function(#[from] FunctionError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Layer management.
#[derive(Clone)]
pub struct Layers {
    functions: Functions,
}

impl Layers {
    /// Layers of these functions' kumod (same store, blobs and ARNs).
    pub fn new(functions: Functions) -> Self {
        Self { functions }
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.functions.store()
    }

    /// Publishes a new version of a layer from a ZIP.
    pub fn publish(
        &self,
        request: &PublishLayerVersionRequest,
    ) -> Result<LayerVersionInfo, LayerError> {
        check_publish(request)?;
        let (package, tree) = self.functions.packages().put_with_tree(&request.zip)?;
        let _writes = self.functions.lock_writes();
        let version = self.store().next_layer_version(&request.layer_name)?;
        let record = LayerVersionRecord {
            layer: request.layer_name.clone(),
            version,
            description: request.description.clone(),
            compatible_runtimes: request.compatible_runtimes.clone(),
            license_info: request.license_info.clone(),
            package_digest: package.digest,
            code_sha256: package.code_sha256,
            code_size: package.size,
            unzipped_size: tree.bytes(),
            has_bootstrap: tree.executable(model::PROVIDED_BOOTSTRAP).is_ok(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        self.store().put_layer_version(&record)?;
        tracing::info!(layer = %record.layer, version, "layer version published");
        Ok(self.info(&record, Vec::new()))
    }

    /// One layer version (`NAME:VERSION`, an ARN, or a name with
    /// `version`), with the functions using it.
    pub fn get(&self, layer: &str, version: u64) -> Result<LayerVersionInfo, LayerError> {
        let wanted = self.reference(layer, version)?;
        let record = self.record(&wanted)?;
        let users = self.users(&self.arn(&record.layer, record.version))?;
        Ok(self.info(&record, users))
    }

    /// Every layer, as its newest version (with `runtime`: its newest
    /// version listing that compatible runtime; layers with none are left
    /// out).
    pub fn list_layers(&self, runtime: Option<&str>) -> Result<Vec<LayerVersionInfo>, LayerError> {
        let mut latest = Vec::new();
        for name in self.store().list_layers()? {
            let versions = self.store().list_layer_versions(&name)?;
            let newest = versions
                .iter()
                .rev()
                .find(|v| runtime.is_none_or(|r| v.compatible_runtimes.iter().any(|c| c == r)));
            if let Some(record) = newest {
                latest.push(self.info(record, Vec::new()));
            }
        }
        Ok(latest)
    }

    /// A layer's versions, oldest first (none for an unknown layer, as on
    /// Lambda).
    pub fn list_versions(&self, layer: &str) -> Result<Vec<LayerVersionInfo>, LayerError> {
        model::validate_layer_name(layer)?;
        Ok(self
            .store()
            .list_layer_versions(layer)?
            .iter()
            .map(|r| self.info(r, Vec::new()))
            .collect())
    }

    /// Deletes a layer version no function uses; its blob goes when nothing
    /// else refers to it.
    pub fn delete(&self, layer: &str, version: u64) -> Result<(), LayerError> {
        let wanted = self.reference(layer, version)?;
        let _writes = self.functions.lock_writes();
        let record = self.record(&wanted)?;
        let arn = self.arn(&record.layer, record.version);
        let users = self.users(&arn)?;
        if !users.is_empty() {
            return Err(LayerError::InUse { arn, users });
        }
        self.store()
            .delete_layer_version(&record.layer, record.version)?;
        self.functions.collect_package(&record.package_digest)?;
        tracing::info!(layer = %record.layer, version = record.version, "layer version deleted");
        Ok(())
    }

    /// Parses what a caller named, refusing another region's or account's.
    fn reference(&self, layer: &str, version: u64) -> Result<LayerVersionRef, LayerError> {
        let given = if version > 0 && !layer.contains(':') {
            format!("{layer}:{version}")
        } else {
            layer.to_string()
        };
        let wanted = LayerVersionRef::parse(&given)?;
        if version > 0 && wanted.version != version {
            return Err(ValidationError {
                field: "version",
                message: format!("{layer:?} names version {}, not {version}", wanted.version),
            }
            .into());
        }
        let (region, account) = self.functions.region_and_account();
        if !wanted.is_in(region, account) {
            return Err(LayerError::NotFound { arn: given });
        }
        Ok(wanted)
    }

    fn record(&self, wanted: &LayerVersionRef) -> Result<LayerVersionRecord, LayerError> {
        self.store()
            .get_layer_version(&wanted.name, wanted.version)?
            .ok_or_else(|| LayerError::NotFound {
                arn: self.arn(&wanted.name, wanted.version),
            })
    }

    fn arn(&self, layer: &str, version: u64) -> String {
        let (region, account) = self.functions.region_and_account();
        model::layer_version_arn(region, account, layer, version)
    }

    /// Functions whose `$LATEST` (`NAME`) or published versions
    /// (`NAME:VERSION`) list the layer version `arn`.
    fn users(&self, arn: &str) -> Result<Vec<String>, StoreError> {
        let uses = |layers: &[StoredLayer]| layers.iter().any(|l| l.arn == arn);
        let mut users = Vec::new();
        for function in self.store().list_functions()? {
            let name = &function.config.name;
            if uses(&function.config.layers) {
                users.push(name.clone());
            }
            for version in self.store().list_versions(name)? {
                if uses(&version.config.layers) {
                    users.push(format!("{name}:{}", version.version));
                }
            }
        }
        Ok(users)
    }

    fn info(&self, record: &LayerVersionRecord, used_by: Vec<String>) -> LayerVersionInfo {
        let (region, account) = self.functions.region_and_account();
        LayerVersionInfo {
            layer_name: record.layer.clone(),
            version: record.version,
            layer_arn: model::layer_arn(region, account, &record.layer),
            layer_version_arn: self.arn(&record.layer, record.version),
            description: record.description.clone(),
            compatible_runtimes: record.compatible_runtimes.clone(),
            license_info: record.license_info.clone(),
            code_sha256: record.code_sha256.clone(),
            package_digest: record.package_digest.clone(),
            code_size: record.code_size,
            unzipped_size: record.unzipped_size,
            created: record.created.clone(),
            used_by,
        }
    }
}

/// The checks of a publish request other than its ZIP's.
fn check_publish(request: &PublishLayerVersionRequest) -> Result<(), ValidationError> {
    let invalid = |field, message: String| Err(ValidationError { field, message });
    model::validate_layer_name(&request.layer_name)?;
    if request.description.chars().count() > MAX_DESCRIPTION_CHARS {
        return invalid(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        );
    }
    if request.license_info.chars().count() > MAX_LICENSE_CHARS {
        return invalid(
            "license_info",
            format!("at most {MAX_LICENSE_CHARS} characters"),
        );
    }
    if request.compatible_runtimes.len() > MAX_COMPATIBLE_RUNTIMES {
        return invalid(
            "compatible_runtimes",
            format!("at most {MAX_COMPATIBLE_RUNTIMES} runtimes"),
        );
    }
    for runtime in &request.compatible_runtimes {
        runtime
            .parse::<model::Runtime>()
            .map_err(|e| ValidationError {
                field: "compatible_runtimes",
                message: e.message,
            })?;
    }
    if request.zip.is_empty() {
        return invalid("zip", "a layer needs its ZIP content".into());
    }
    Ok(())
}

/// Resolves a function's layer list (normalized by
/// [`model::validate_layer_list`]) to stored layers, in order: each must
/// exist in this kumod's region and account, and the function's unpacked
/// package (`package_bytes`) plus the layers must fit the 250 MB limit.
pub(crate) fn resolve(
    store: &dyn Store,
    (region, account): (&str, &str),
    layers: &[String],
    package_bytes: impl FnOnce() -> Result<u64, PackageError>,
) -> Result<(Vec<StoredLayer>, Vec<LayerVersionRecord>), FunctionError> {
    let mut stored = Vec::with_capacity(layers.len());
    let mut records = Vec::with_capacity(layers.len());
    for given in layers {
        let wanted = LayerVersionRef::parse(given.trim())?;
        let arn = model::layer_version_arn(region, account, &wanted.name, wanted.version);
        let record = match store.get_layer_version(&wanted.name, wanted.version)? {
            Some(record) if wanted.is_in(region, account) => record,
            _ => {
                return Err(FunctionError::UnknownLayer {
                    arn: given.trim().to_string(),
                })
            }
        };
        stored.push(StoredLayer {
            arn,
            package_digest: record.package_digest.clone(),
            code_size: record.code_size,
        });
        records.push(record);
    }
    if !records.is_empty() {
        let total = package_bytes()? + records.iter().map(|r| r.unzipped_size).sum::<u64>();
        if total > MAX_PACKAGE_UNZIPPED_BYTES {
            return Err(FunctionError::LayersTooLarge { bytes: total });
        }
    }
    Ok((stored, records))
}

#[cfg(test)]
#[path = "layers_tests.rs"]
mod tests;
