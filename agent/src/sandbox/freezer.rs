//! Freezing idle sandboxes (cgroup freezer), so that nothing a function
//! leaves running between invocations uses CPU, as on Lambda.
//!
//! v1: `freezer.state` (`FROZEN` / `THAWED`) of the cgroup in the `freezer`
//! hierarchy; v2: `cgroup.freeze` (`1` / `0`) of the unified cgroup (done
//! once `cgroup.events` says `frozen 1`).
//!
//! The state machine keeps the warm path cheap: [`Freezer::park`] marks the
//! sandbox idle and returns a ticket; a freeze with that ticket (made a
//! short delay later, by the supervisor) only happens if the sandbox is
//! still idle since; [`Freezer::unpark`] marks it busy and thaws only if it
//! really was frozen. File writes go through the [`Syscall`] seam.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::syscall::Syscall;

/// The freezer of one sandbox's cgroup.
#[derive(Debug)]
pub struct Freezer {
    file: PathBuf,
    v2: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Bumped by every park and unpark: a freeze ticket is valid only while
    /// nothing happened since it was issued.
    generation: u64,
    idle: bool,
    frozen: bool,
    /// A freeze timer is waiting (one per idle spell, not one per park).
    timer: bool,
}

/// A freeze or thaw write failed.
#[derive(Debug, thiserror::Error)]
#[error("writing {value:?} to {}: {source}", file.display())]
pub struct FreezerError {
    /// The control file.
    pub file: PathBuf,
    /// What was written.
    pub value: &'static str,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

impl Freezer {
    /// The freezer of the cgroup directory `dir` (in the freezer hierarchy
    /// on v1, the unified one on v2).
    pub fn new(dir: &Path, v2: bool) -> Self {
        Self {
            file: dir.join(Self::file_name(v2)),
            v2,
            state: Mutex::new(State::default()),
        }
    }

    /// The control file.
    pub fn file_name(v2: bool) -> &'static str {
        if v2 {
            "cgroup.freeze"
        } else {
            "freezer.state"
        }
    }

    fn value(&self, frozen: bool) -> &'static str {
        match (self.v2, frozen) {
            (true, true) => "1",
            (true, false) => "0",
            (false, true) => "FROZEN",
            (false, false) => "THAWED",
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, sys: &dyn Syscall, frozen: bool) -> Result<(), FreezerError> {
        let value = self.value(frozen);
        sys.write_file(&self.file, value)
            .map_err(|source| FreezerError {
                file: self.file.clone(),
                value,
                source,
            })
    }

    /// Marks the sandbox idle; returns the ticket for [`Freezer::freeze_if_idle`].
    pub fn park(&self) -> u64 {
        let mut state = self.lock();
        state.generation += 1;
        state.idle = true;
        state.generation
    }

    /// Claims the sandbox's one freeze timer: true when none is waiting, so
    /// the caller starts it; false when the waiting one will see this park.
    pub fn start_timer(&self) -> bool {
        !std::mem::replace(&mut self.lock().timer, true)
    }

    /// A freeze timer started at `ticket` has waited its delay. When the
    /// sandbox was parked again since, returns the newer ticket to wait for
    /// (the timer keeps running); otherwise freezes it if still idle and
    /// releases the timer (`None`: the next park starts a new one).
    pub fn timer_fired(&self, sys: &dyn Syscall, ticket: u64) -> Result<Option<u64>, FreezerError> {
        {
            let mut state = self.lock();
            if state.idle && !state.frozen && state.generation != ticket {
                return Ok(Some(state.generation));
            }
            state.timer = false;
        }
        self.freeze_if_idle(sys, ticket).map(|_| None)
    }

    /// Freezes the sandbox if it has stayed idle since `ticket` was issued.
    /// Returns whether it froze it.
    pub fn freeze_if_idle(&self, sys: &dyn Syscall, ticket: u64) -> Result<bool, FreezerError> {
        let mut state = self.lock();
        if !state.idle || state.frozen || state.generation != ticket {
            return Ok(false);
        }
        self.write(sys, true)?;
        state.frozen = true;
        Ok(true)
    }

    /// Marks the sandbox busy, thawing it first if it is frozen (no write
    /// otherwise). Returns whether it thawed it.
    pub fn unpark(&self, sys: &dyn Syscall) -> Result<bool, FreezerError> {
        let mut state = self.lock();
        state.generation += 1;
        state.idle = false;
        if !state.frozen {
            return Ok(false);
        }
        self.write(sys, false)?;
        state.frozen = false;
        Ok(true)
    }

    /// Thaws unconditionally (before or after killing: a v1-frozen process
    /// only dies once thawed) and keeps it from being frozen again.
    pub fn thaw_for_kill(&self, sys: &dyn Syscall) -> Result<(), FreezerError> {
        let mut state = self.lock();
        state.generation += 1;
        state.idle = false;
        state.frozen = false;
        self.write(sys, false)
    }

    /// Whether it is frozen (as far as this freezer knows).
    pub fn is_frozen(&self) -> bool {
        self.lock().frozen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::syscall::{Call, Recorder};

    fn writes(sys: &Recorder) -> Vec<(PathBuf, String)> {
        sys.calls
            .borrow()
            .iter()
            .filter_map(|c| match c {
                Call::WriteFile(path, value) => Some((path.clone(), value.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn v2_freezes_with_cgroup_freeze_and_thaws_only_when_frozen() {
        let sys = Recorder::default();
        let freezer = Freezer::new(Path::new("/sys/fs/cgroup/kumo/i1"), true);
        // Busy → idle → frozen → busy.
        assert!(!freezer.unpark(&sys).unwrap(), "not frozen: nothing to do");
        let ticket = freezer.park();
        assert!(freezer.freeze_if_idle(&sys, ticket).unwrap());
        assert!(freezer.is_frozen());
        assert!(
            !freezer.freeze_if_idle(&sys, ticket).unwrap(),
            "already frozen"
        );
        assert!(freezer.unpark(&sys).unwrap());
        let file = PathBuf::from("/sys/fs/cgroup/kumo/i1/cgroup.freeze");
        assert_eq!(
            writes(&sys),
            [(file.clone(), "1".to_string()), (file, "0".to_string())]
        );
    }

    #[test]
    fn v1_uses_freezer_state() {
        let sys = Recorder::default();
        let freezer = Freezer::new(Path::new("/sys/fs/cgroup/freezer/kumo/i1"), false);
        let ticket = freezer.park();
        freezer.freeze_if_idle(&sys, ticket).unwrap();
        freezer.thaw_for_kill(&sys).unwrap();
        let file = PathBuf::from("/sys/fs/cgroup/freezer/kumo/i1/freezer.state");
        assert_eq!(
            writes(&sys),
            [
                (file.clone(), "FROZEN".to_string()),
                (file, "THAWED".to_string())
            ]
        );
    }

    #[test]
    fn one_timer_serves_an_idle_spell_of_many_parks() {
        let sys = Recorder::default();
        let freezer = Freezer::new(Path::new("/cg/i1"), true);
        let first = freezer.park();
        assert!(freezer.start_timer());
        freezer.unpark(&sys).unwrap();
        let second = freezer.park();
        assert!(!freezer.start_timer(), "the waiting timer covers this park");
        // Parked again since the timer started: it waits for the newer park.
        assert_eq!(freezer.timer_fired(&sys, first).unwrap(), Some(second));
        assert_eq!(freezer.timer_fired(&sys, second).unwrap(), None);
        assert!(freezer.is_frozen());
        // Busy when the timer fires: no freeze, and the next park starts one.
        freezer.unpark(&sys).unwrap();
        let third = freezer.park();
        assert!(freezer.start_timer());
        freezer.unpark(&sys).unwrap();
        assert_eq!(freezer.timer_fired(&sys, third).unwrap(), None);
        assert!(!freezer.is_frozen());
        freezer.park();
        assert!(freezer.start_timer());
    }

    #[test]
    fn a_stale_ticket_does_not_freeze_a_sandbox_that_was_used_since() {
        let sys = Recorder::default();
        let freezer = Freezer::new(Path::new("/cg/i1"), true);
        let stale = freezer.park();
        freezer.unpark(&sys).unwrap();
        assert!(!freezer.freeze_if_idle(&sys, stale).unwrap(), "busy now");
        let newer = freezer.park();
        assert!(!freezer.freeze_if_idle(&sys, stale).unwrap(), "re-parked");
        assert!(freezer.freeze_if_idle(&sys, newer).unwrap());
        freezer.thaw_for_kill(&sys).unwrap();
        assert!(
            !freezer.freeze_if_idle(&sys, newer).unwrap(),
            "being killed"
        );
        assert_eq!(writes(&sys).len(), 2);
    }
}
