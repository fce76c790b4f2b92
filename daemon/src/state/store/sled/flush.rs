//! Group commit: callers that need their writes on disk share flushes. A
//! caller waits for a flush that started after its write; whoever finds
//! none running starts one for everybody waiting.

use std::sync::{Condvar, Mutex, MutexGuard};

use super::SledStore;
use crate::state::store::StoreError;

/// Shared flushes of one database.
#[derive(Default)]
pub(super) struct FlushGate {
    pub(super) state: Mutex<FlushState>,
    done: Condvar,
}

#[derive(Default)]
pub(super) struct FlushState {
    /// Tickets handed out (one per caller).
    pub(super) issued: u64,
    /// Every ticket up to this one is on disk.
    pub(super) flushed: u64,
    /// A flush is in progress.
    pub(super) running: bool,
}

fn lock(m: &Mutex<FlushState>) -> MutexGuard<'_, FlushState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SledStore {
    /// Returns once everything written before the call is on disk, sharing
    /// one flush among concurrent callers.
    pub(super) fn flush_shared(&self, key: &str) -> Result<(), StoreError> {
        let gate = &self.flushes;
        let mut state = lock(&gate.state);
        state.issued += 1;
        let ticket = state.issued;
        loop {
            if state.flushed >= ticket {
                return Ok(());
            }
            if state.running {
                state = gate.done.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state.running = true;
            let target = state.issued;
            drop(state);
            let result = self.flush(key);
            state = lock(&gate.state);
            state.running = false;
            if result.is_ok() {
                state.flushed = state.flushed.max(target);
            }
            gate.done.notify_all();
            result?;
        }
    }
}
