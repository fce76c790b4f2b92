//! The route table: the enabled bucket and HTTP triggers, which every
//! webhook POST and HTTP-trigger request reads. The registry replaces it
//! whenever a trigger changes; readers take a cheap snapshot.

use std::sync::{Arc, RwLock};

use crate::state::store::{TriggerRecord, TriggerSource};

/// A shared handle on the current route table.
#[derive(Clone, Default)]
pub struct Routes {
    current: Arc<RwLock<Arc<Vec<TriggerRecord>>>>,
}

impl Routes {
    /// The enabled bucket and HTTP triggers now.
    pub fn snapshot(&self) -> Arc<Vec<TriggerRecord>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the table with the enabled bucket and HTTP triggers among
    /// `records`.
    pub fn replace(&self, records: Vec<TriggerRecord>) {
        let routes: Vec<TriggerRecord> = records
            .into_iter()
            .filter(|r| {
                r.enabled
                    && !matches!(
                        r.source,
                        TriggerSource::Schedule { .. } | TriggerSource::Sqs(_)
                    )
            })
            .collect();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(routes);
    }
}
