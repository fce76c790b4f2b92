//! Function management at `$LATEST`: create, update code or configuration,
//! get, list, delete — validated with the shared rules of
//! `kumo_proto::model`, packages stored content-addressed.

use std::sync::{Arc, Mutex, MutexGuard};

use kumo_proto::control::{FunctionConfig, FunctionInfo, UpdateFunctionConfigurationRequest};
use kumo_proto::model::{self, ValidationError, LATEST};
use kumo_proto::package::PackageTree;

use crate::dispatch::concurrency::{ConcurrencyLimiter, ReservationTooLarge};
use crate::s3::S3Profiles;
use crate::state::layers;
use crate::state::packages::{self, PackageError, PackageStore, StoredPackage};
use crate::state::store::{FunctionRecord, LayerVersionRecord, Store, StoreError, StoredConfig};

/// A function operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// No such function.
    #[error("Function not found: {arn}")]
    NotFound {
        /// The ARN asked for.
        arn: String,
    },
    /// A function with this name exists.
    #[error("Function already exists: {name}")]
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// A configuration value breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A queue or topic destination without credentials to send with.
    #[error("invalid destination {arn}: a queue or topic (on-failure destination or dead-letter target) is sent to through the function's credentials profile; set --credentials PROFILE")]
    DestinationNeedsCredentials {
        /// The destination's ARN.
        arn: String,
    },
    /// The on-failure destination is not a function.
    #[error("invalid {field}: Function not found: {arn}")]
    UnknownDestination {
        /// `on_failure_destination` or `on_success_destination`.
        field: &'static str,
        /// The destination's ARN.
        arn: String,
    },
    /// The credentials profile is not configured.
    #[error("invalid credentials_profile: {0}")]
    Credentials(#[source] crate::aws_profiles::ProfileError),
    /// The reserved concurrency does not fit the cluster limit.
    #[error(transparent)]
    Reservation(#[from] ReservationTooLarge),
    /// The package was refused or could not be stored.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The caller's RevisionId is not the function's current one.
    #[error("PreconditionFailedException: the RevisionId {given} does not match the current {current} of {arn}; get the function again")]
    RevisionMismatch {
        /// The function.
        arn: String,
        /// What the caller sent.
        given: String,
        /// The current one.
        current: String,
    },
    /// A listed layer version does not exist (here).
    #[error("invalid layers: Layer version {arn} does not exist")]
    UnknownLayer {
        /// The layer version as given.
        arn: String,
    },
    /// The package and its layers unpack to more than Lambda's limit.
    #[error("invalid layers: the function's package and its layers unpack to {bytes} bytes; at most {} are allowed", model::MAX_PACKAGE_UNZIPPED_BYTES)]
    LayersTooLarge {
        /// The total.
        bytes: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Function management.
#[derive(Clone)]
pub struct Functions {
    store: Arc<dyn Store>,
    packages: PackageStore,
    region: String,
    account_id: String,
    limiter: ConcurrencyLimiter,
    s3: S3Profiles,
    /// Held by every change of a function record (a RevisionId check and
    /// the change it guards happen under it, and no concurrent change is
    /// lost) and while a layer version is deleted (never under a function
    /// being given it).
    writes: Arc<Mutex<()>>,
}

impl Functions {
    /// Functions over this store and blob directory; their reservations
    /// are registered with `limiter`.
    pub fn new(
        store: Arc<dyn Store>,
        packages: PackageStore,
        region: String,
        account_id: String,
        limiter: ConcurrencyLimiter,
        s3: S3Profiles,
    ) -> Result<Self, FunctionError> {
        for record in store.list_functions()? {
            limiter.set_reservation(&record.config.name, record.config.reserved_concurrency);
        }
        Ok(Self {
            store,
            packages,
            region,
            account_id,
            limiter,
            s3,
            writes: Arc::default(),
        })
    }

    /// The package blobs.
    pub fn packages(&self) -> &PackageStore {
        &self.packages
    }

    /// This kumod's region and account (the parts of its ARNs).
    pub fn region_and_account(&self) -> (&str, &str) {
        (&self.region, &self.account_id)
    }

    /// Serializes changes of function records, and layer deletes with them.
    pub fn lock_writes(&self) -> MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves `config`'s layers into `stored` and checks the runtime's
    /// entry point: in the package (`tree`, or the stored `digest`) or, for
    /// a function with layers, in one of them (`/opt/bootstrap`).
    fn resolve_layers(
        &self,
        config: &FunctionConfig,
        stored: &mut StoredConfig,
        package: PackageRef<'_>,
    ) -> Result<(), FunctionError> {
        let (layers, records) = layers::resolve(
            self.store.as_ref(),
            self.region_and_account(),
            &config.layers,
            || match package {
                PackageRef::Checked(tree) => Ok(tree.bytes()),
                PackageRef::Stored(digest) => self.packages.unpacked_size(digest),
            },
        )?;
        stored.layers = layers;
        let Some(needed) = entry_point(config) else {
            return Ok(());
        };
        let in_package = match package {
            PackageRef::Checked(tree) => tree.executable(needed).map_err(PackageError::from),
            PackageRef::Stored(digest) => self.packages.check_entry_point(digest, needed),
        };
        match in_package {
            Err(_) if records.iter().any(|r: &LayerVersionRecord| r.has_bootstrap) => Ok(()),
            other => Ok(other?),
        }
    }

    /// The S3 profiles of kumod.
    pub fn s3(&self) -> &S3Profiles {
        &self.s3
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The cluster's concurrency limiter.
    pub fn limiter(&self) -> &ConcurrencyLimiter {
        &self.limiter
    }

    /// Checks and records a function's reservation, then stores the record.
    fn store_record(&self, record: &FunctionRecord) -> Result<(), FunctionError> {
        let name = &record.config.name;
        let reserved = record.config.reserved_concurrency;
        self.limiter.check_reservation(name, reserved)?;
        let profile = &record.config.credentials_profile;
        if !profile.is_empty() {
            self.s3
                .profile(profile)
                .map_err(FunctionError::Credentials)?;
        }
        for (field, destination) in [
            (
                "on_failure_destination",
                &record.config.on_failure_destination,
            ),
            (
                "on_success_destination",
                &record.config.on_success_destination,
            ),
            ("dead_letter_target", &record.config.dead_letter_target),
        ] {
            self.check_destination(field, destination, profile)?;
        }
        self.store.put_function(record)?;
        self.limiter.set_reservation(name, reserved);
        Ok(())
    }

    /// Checks a destination: a queue or topic needs the credentials
    /// profile to send with; a function must exist here (the name, or an
    /// ARN of this kumod's region and account). Normalized already.
    fn check_destination(
        &self,
        field: &'static str,
        destination: &str,
        profile: &str,
    ) -> Result<(), FunctionError> {
        if destination.is_empty() {
            return Ok(());
        }
        if model::is_queue_or_topic_arn(destination) {
            if profile.is_empty() {
                return Err(FunctionError::DestinationNeedsCredentials {
                    arn: destination.to_string(),
                });
            }
            return Ok(());
        }
        let unknown = |arn| FunctionError::UnknownDestination { field, arn };
        let target = model::FunctionRef::parse(destination, None)
            .map_err(|_| unknown(destination.to_string()))?;
        if let Err(FunctionError::NotFound { arn }) = self.check_here(&target) {
            return Err(unknown(arn));
        }
        if self.store.get_function(&target.name)?.is_none() {
            return Err(unknown(self.arn(&target.name, None)));
        }
        Ok(())
    }

    /// The unqualified (or qualified) ARN of a function.
    pub fn arn(&self, name: &str, qualifier: Option<&str>) -> String {
        model::function_arn(&self.region, &self.account_id, name, qualifier)
    }

    /// NotFound (with the ARN as given) when an ARN names another region
    /// or account than this kumod's.
    pub fn check_here(&self, function: &model::FunctionRef) -> Result<(), FunctionError> {
        if function.is_in(&self.region, &self.account_id) {
            return Ok(());
        }
        Err(FunctionError::NotFound {
            arn: model::function_arn(
                function.region.as_deref().unwrap_or(&self.region),
                function.account.as_deref().unwrap_or(&self.account_id),
                &function.name,
                function.qualifier.as_deref(),
            ),
        })
    }

    /// Reads a function or fails with NotFound.
    pub fn get_record(&self, name: &str) -> Result<FunctionRecord, FunctionError> {
        self.store
            .get_function(name)?
            .ok_or_else(|| FunctionError::NotFound {
                arn: self.arn(name, None),
            })
    }

    /// Creates a function from a configuration and a ZIP.
    pub fn create(
        &self,
        mut config: FunctionConfig,
        zip: &[u8],
    ) -> Result<FunctionInfo, FunctionError> {
        model::normalize_config(&mut config)?;
        if self.store.get_function(&config.name)?.is_some() {
            return Err(FunctionError::AlreadyExists { name: config.name });
        }
        let tree = packages::validate(zip)?;
        let mut stored = StoredConfig::from_proto(&config);
        let _writes = self.lock_writes();
        self.resolve_layers(&config, &mut stored, PackageRef::Checked(&tree))?;
        let package = self.packages.put_validated(zip)?;
        let record = FunctionRecord {
            config: stored,
            package_digest: package.digest.clone(),
            code_sha256: package.code_sha256.clone(),
            code_size: package.size,
            revision: 1,
            last_modified: now(),
            published: 0,
        };
        if let Err(err) = self.store_record(&record) {
            self.collect_package(&record.package_digest)?;
            return Err(err);
        }
        Ok(self.info(&record))
    }

    /// Replaces the package of `$LATEST`.
    /// With `expected_revision` (not empty), refuses unless it is the
    /// function's current RevisionId.
    pub fn update_code(
        &self,
        name: &str,
        zip: &[u8],
        expected_revision: &str,
    ) -> Result<FunctionInfo, FunctionError> {
        let tree = packages::validate(zip)?;
        let _writes = self.lock_writes();
        let mut record = self.get_record(name)?;
        self.check_record_revision(&record, expected_revision)?;
        let config = record.config.to_proto();
        self.resolve_layers(&config, &mut record.config, PackageRef::Checked(&tree))?;
        let StoredPackage {
            digest,
            code_sha256,
            size,
        } = self.packages.put_validated(zip)?;
        let old = std::mem::replace(&mut record.package_digest, digest);
        record.code_sha256 = code_sha256;
        record.code_size = size;
        self.bump(&mut record)?;
        self.collect_package(&old)?;
        Ok(self.info(&record))
    }

    /// Changes configuration fields of `$LATEST`.
    pub fn update_configuration(
        &self,
        update: UpdateFunctionConfigurationRequest,
    ) -> Result<FunctionInfo, FunctionError> {
        let _writes = self.lock_writes();
        let mut record = self.get_record(&update.name)?;
        self.check_record_revision(&record, &update.expect_revision_id)?;
        let mut config = record.config.to_proto();
        let (entry_before, layers_before) = (entry_point(&config), config.layers.clone());
        merge_update(&mut config, update);
        model::normalize_config(&mut config)?;
        let mut stored = StoredConfig::from_proto(&config);
        let entry_changed = entry_point(&config).is_some_and(|e| entry_before != Some(e));
        if entry_changed || config.layers != layers_before {
            let package = PackageRef::Stored(&record.package_digest);
            self.resolve_layers(&config, &mut stored, package)?;
        } else {
            stored.layers = record.config.layers.clone();
        }
        record.config = stored;
        self.bump(&mut record)?;
        Ok(self.info(&record))
    }

    fn bump(&self, record: &mut FunctionRecord) -> Result<(), FunctionError> {
        record.revision += 1;
        record.last_modified = now();
        self.store_record(record)
    }

    /// One function.
    pub fn get(&self, name: &str) -> Result<FunctionInfo, FunctionError> {
        Ok(self.info(&self.get_record(name)?))
    }

    /// Every function, by name.
    pub fn list(&self) -> Result<Vec<FunctionInfo>, FunctionError> {
        Ok(self
            .store
            .list_functions()?
            .iter()
            .map(|r| self.info(r))
            .collect())
    }

    /// Deletes a function with its versions, aliases, logs and dead
    /// letters, and its packages if nothing else uses them. Its queued
    /// events are dropped when they fall due.
    pub fn delete(&self, name: &str) -> Result<(), FunctionError> {
        let record = self.get_record(name)?;
        self.store.delete_function(name)?;
        let versions = self.store.list_versions(name)?;
        for version in &versions {
            self.store.delete_version(name, version.version)?;
        }
        for alias in self.store.list_aliases(name)? {
            self.store.delete_alias(name, &alias.name)?;
        }
        for version in &versions {
            self.collect_package(&version.package_digest)?;
        }
        self.limiter.set_reservation(name, None);
        self.store.delete_logs(name)?;
        for letter in self.store.list_dead_letters(name)? {
            self.store.delete_dead_letter(name, &letter.id)?;
        }
        for event in self.store.list_test_events(name)? {
            self.store.delete_test_event(name, &event.name)?;
        }
        self.collect_package(&record.package_digest)?;
        Ok(())
    }

    /// Removes a package blob when no function or layer version refers to
    /// it any more.
    pub(crate) fn collect_package(&self, digest: &str) -> Result<(), FunctionError> {
        let mut in_use = false;
        for record in self.store.list_functions()? {
            in_use = in_use
                || record.package_digest == digest
                || self
                    .store
                    .list_versions(&record.config.name)?
                    .iter()
                    .any(|v| v.package_digest == digest);
        }
        for layer in self.store.list_layers()? {
            in_use = in_use
                || self
                    .store
                    .list_layer_versions(&layer)?
                    .iter()
                    .any(|v| v.package_digest == digest);
        }
        if !in_use {
            self.packages.remove(digest);
        }
        Ok(())
    }

    /// The protocol view of a record.
    pub fn info(&self, record: &FunctionRecord) -> FunctionInfo {
        FunctionInfo {
            config: Some(record.config.to_proto()),
            code_sha256: record.code_sha256.clone(),
            package_digest: record.package_digest.clone(),
            code_size: record.code_size,
            version: LATEST.to_string(),
            function_arn: self.arn(&record.config.name, None),
            last_modified: record.last_modified.clone(),
            revision: record.revision,
            queue: None,
            runtime_warning: String::new(),
            layers: record.config.layer_infos(),
        }
    }
}

/// A function's package while its layers are resolved: just checked
/// (create, new code) or already stored (a configuration change).
#[derive(Clone, Copy)]
enum PackageRef<'a> {
    Checked(&'a PackageTree),
    Stored(&'a str),
}

/// The executable `config`'s runtime starts from the package root, which
/// its package (or, for a function with layers, one of its layers: the
/// agent then runs `/opt/bootstrap`) must hold: the `provided` runtime's
/// `bootstrap` (docs/wire-formats.md §1, §13).
fn entry_point(config: &FunctionConfig) -> Option<&'static str> {
    config
        .runtime
        .parse::<model::Runtime>()
        .ok()
        .and_then(model::Runtime::package_entry_point)
}

/// Applies an update's given fields to `config`: the one place an
/// update's optional fields are merged (every field is named, so a new
/// one cannot be forgotten).
fn merge_update(config: &mut FunctionConfig, update: UpdateFunctionConfigurationRequest) {
    let UpdateFunctionConfigurationRequest {
        name: _,
        description,
        runtime,
        handler,
        memory_mb,
        timeout_seconds,
        set_environment,
        environment,
        network,
        ephemeral_storage_mb,
        max_retry_attempts,
        max_event_age_seconds,
        reserved_concurrency,
        clear_reserved_concurrency,
        on_failure_destination,
        credentials_profile,
        dead_letter_target,
        on_success_destination,
        set_egress_allow,
        egress_allow,
        role,
        set_layers,
        layers,
        expect_revision_id: _,
    } = update;
    if set_egress_allow {
        config.egress_allow = egress_allow;
    }
    if set_layers {
        config.layers = layers;
    }
    let replace = |field: &mut String, value: Option<String>| {
        if let Some(value) = value {
            *field = value;
        }
    };
    replace(&mut config.description, description);
    replace(&mut config.runtime, runtime);
    replace(&mut config.handler, handler);
    replace(&mut config.network, network);
    replace(&mut config.on_failure_destination, on_failure_destination);
    replace(&mut config.credentials_profile, credentials_profile);
    replace(&mut config.dead_letter_target, dead_letter_target);
    replace(&mut config.on_success_destination, on_success_destination);
    replace(&mut config.role, role);
    config.memory_mb = memory_mb.or(config.memory_mb);
    config.timeout_seconds = timeout_seconds.or(config.timeout_seconds);
    config.ephemeral_storage_mb = ephemeral_storage_mb.or(config.ephemeral_storage_mb);
    config.max_retry_attempts = max_retry_attempts.or(config.max_retry_attempts);
    config.max_event_age_seconds = max_event_age_seconds.or(config.max_event_age_seconds);
    config.reserved_concurrency = if clear_reserved_concurrency {
        None
    } else {
        reserved_concurrency.or(config.reserved_concurrency)
    };
    if set_environment {
        config.environment = environment;
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
#[path = "functions_tests.rs"]
pub(crate) mod tests;
