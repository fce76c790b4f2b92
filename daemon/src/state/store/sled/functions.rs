//! [`FunctionStore`] in sled: functions by name, versions and aliases by
//! function.

use super::{function_key, function_prefix, SledStore};
use crate::state::store::{AliasRecord, FunctionRecord, FunctionStore, StoreError, VersionRecord};

/// Version keys: function, NUL, version (big-endian), so a scan is in order.
fn version_key(function: &str, version: u64) -> Vec<u8> {
    let mut key = function_prefix(function);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

impl FunctionStore for SledStore {
    fn put_function(&self, record: &FunctionRecord) -> Result<(), StoreError> {
        let name = &record.config.name;
        self.put_json(&self.functions, name.as_bytes(), name, record)
    }

    fn get_function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError> {
        Self::get_json(&self.functions, name, name)
    }

    fn list_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        Self::scan_json(&self.functions, b"", "functions")
    }

    fn delete_function(&self, name: &str) -> Result<bool, StoreError> {
        self.remove_flushed(&self.functions, name.as_bytes(), name)
    }

    fn put_version(&self, version: &VersionRecord) -> Result<(), StoreError> {
        let key = version_key(&version.function, version.version);
        self.put_json(&self.versions, key, &version.function, version)
    }

    fn get_version(
        &self,
        function: &str,
        version: u64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        Self::get_json(&self.versions, version_key(function, version), function)
    }

    fn list_versions(&self, function: &str) -> Result<Vec<VersionRecord>, StoreError> {
        Self::scan_json(&self.versions, function_prefix(function), function)
    }

    fn delete_version(&self, function: &str, version: u64) -> Result<bool, StoreError> {
        self.remove_flushed(&self.versions, version_key(function, version), function)
    }

    fn put_alias(&self, alias: &AliasRecord) -> Result<(), StoreError> {
        let key = function_key(&alias.function, &alias.name);
        self.put_json(&self.aliases, key, &alias.name, alias)
    }

    fn get_alias(&self, function: &str, name: &str) -> Result<Option<AliasRecord>, StoreError> {
        Self::get_json(&self.aliases, function_key(function, name), name)
    }

    fn list_aliases(&self, function: &str) -> Result<Vec<AliasRecord>, StoreError> {
        Self::scan_json(&self.aliases, function_prefix(function), function)
    }

    fn delete_alias(&self, function: &str, name: &str) -> Result<bool, StoreError> {
        self.remove_flushed(&self.aliases, function_key(function, name), name)
    }
}
