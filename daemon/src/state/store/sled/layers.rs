//! [`LayerStore`] in sled: layer versions by layer and number, and each
//! layer's last allocated number.

use super::{err, function_prefix, SledStore};
use crate::state::store::{LayerStore, LayerVersionRecord, StoreError};

/// Layer version keys: layer, NUL, version (big-endian), so a scan is in
/// order.
fn layer_version_key(layer: &str, version: u64) -> Vec<u8> {
    let mut key = function_prefix(layer);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

impl LayerStore for SledStore {
    fn next_layer_version(&self, layer: &str) -> Result<u64, StoreError> {
        let next = self
            .layer_counters
            .update_and_fetch(layer.as_bytes(), |old| {
                let last = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, u64::from_be_bytes);
                Some((last + 1).to_be_bytes().to_vec())
            })
            .map_err(|e| err("allocate version", layer, e))?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| err("allocate version", layer, "counter missing after update"))?;
        self.flush(layer)?;
        Ok(next)
    }

    fn put_layer_version(&self, record: &LayerVersionRecord) -> Result<(), StoreError> {
        let key = layer_version_key(&record.layer, record.version);
        self.put_json(&self.layer_versions, key, &record.layer, record)
    }

    fn get_layer_version(
        &self,
        layer: &str,
        version: u64,
    ) -> Result<Option<LayerVersionRecord>, StoreError> {
        Self::get_json(
            &self.layer_versions,
            layer_version_key(layer, version),
            layer,
        )
    }

    fn list_layer_versions(&self, layer: &str) -> Result<Vec<LayerVersionRecord>, StoreError> {
        Self::scan_json(&self.layer_versions, function_prefix(layer), layer)
    }

    fn list_layers(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = Vec::new();
        for item in self.layer_versions.iter().keys() {
            let key = item.map_err(|e| err("scan", "layers", e))?;
            let name = key.split(|b| *b == 0).next().unwrap_or_default();
            let name = String::from_utf8_lossy(name).into_owned();
            if names.last() != Some(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn delete_layer_version(&self, layer: &str, version: u64) -> Result<bool, StoreError> {
        self.remove_flushed(
            &self.layer_versions,
            layer_version_key(layer, version),
            layer,
        )
    }
}
