//! [`AgentStore`] in sled: one key per drained agent id.

use std::collections::BTreeSet;

use super::{err, SledStore};
use crate::state::store::{AgentStore, StoreError};

impl AgentStore for SledStore {
    fn drained_agents(&self) -> Result<BTreeSet<String>, StoreError> {
        self.drained_agents
            .iter()
            .keys()
            .map(|key| {
                let key = key.map_err(|e| err("scan", "drained agents", e))?;
                Ok(String::from_utf8_lossy(&key).into_owned())
            })
            .collect()
    }

    fn set_agent_drained(&self, agent_id: &str, drained: bool) -> Result<(), StoreError> {
        let result = if drained {
            self.drained_agents.insert(agent_id, &[][..]).map(|_| ())
        } else {
            self.drained_agents.remove(agent_id).map(|_| ())
        };
        result.map_err(|e| err("set drained", agent_id, e))?;
        self.flush(agent_id)
    }
}
