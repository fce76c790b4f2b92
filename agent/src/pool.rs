//! Accounting for this node's instances: idle warm instances per function
//! revision (most recently used first), capacity by instance count and
//! memory, one unprivileged uid per live instance, and idle expiry.
//!
//! The pool never awaits: instances it gives up (evicted, expired, not
//! reusable) are handed back to the caller to shut down outside the lock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::instance::Instance;

/// Which instances may serve an invocation: same function, version and
/// configuration revision.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// Function name.
    pub name: String,
    /// Executing version.
    pub version: String,
    /// Configuration revision.
    pub revision: u64,
}

/// An instance with the uid it runs as.
#[derive(Debug)]
pub struct Pooled {
    /// The instance.
    pub instance: Instance,
    /// Its sandbox uid (returned to the pool when it goes).
    pub uid: u32,
}

/// Capacity reserved for a cold start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// The uid the new instance must run as.
    pub uid: u32,
    /// The memory reserved for it.
    pub memory_mb: u32,
}

/// What [`Pool::acquire`] found.
#[derive(Debug)]
pub enum Acquired {
    /// A warm instance, now busy.
    Warm(Box<Pooled>),
    /// No warm instance: capacity was reserved for a cold start.
    Cold(Reservation),
}

/// The node has no room for another instance.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no capacity for a {memory_mb} MB instance: {live} instances using {reserved_mb} of {allocatable_mb} MB (at most {max_instances} instances)")]
pub struct CapacityExceeded {
    /// Memory asked for.
    pub memory_mb: u32,
    /// Live instances.
    pub live: u32,
    /// Memory reserved by them.
    pub reserved_mb: u64,
    /// Memory available to instances.
    pub allocatable_mb: u64,
    /// Instance limit.
    pub max_instances: u32,
}

/// Counters for heartbeats and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Live instances (busy + idle + starting).
    pub instances: u32,
    /// Instances running an invocation or starting.
    pub busy: u32,
    /// Memory reserved by live instances.
    pub memory_reserved_mb: u64,
}

/// Limits of the pool.
#[derive(Debug, Clone)]
pub struct PoolLimits {
    /// Largest number of live instances.
    pub max_instances: u32,
    /// Memory available to instances.
    pub allocatable_memory_mb: u64,
    /// Idle instances older than this are reclaimed.
    pub idle_timeout: Duration,
    /// First sandbox uid.
    pub uid_base: u32,
    /// Number of sandbox uids.
    pub uid_count: u32,
}

struct Idle {
    pooled: Pooled,
    since: Instant,
}

struct State {
    idle: HashMap<PoolKey, Vec<Idle>>,
    live: u32,
    busy: u32,
    memory_reserved_mb: u64,
    free_uids: Vec<u32>,
    next_uid: u32,
}

/// The pool.
pub struct Pool {
    limits: PoolLimits,
    state: Mutex<State>,
}

impl Pool {
    /// An empty pool.
    pub fn new(limits: PoolLimits) -> Self {
        Self {
            state: Mutex::new(State {
                idle: HashMap::new(),
                live: 0,
                busy: 0,
                memory_reserved_mb: 0,
                free_uids: Vec::new(),
                next_uid: 0,
            }),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a warm instance for `key`, or reserves room for a cold start
    /// (evicting idle instances of other functions, least recently used
    /// first, when needed; they are returned for shutdown). Idle instances
    /// of older revisions of the same function version are drained (returned
    /// for shutdown) as soon as a newer revision is asked for.
    pub fn acquire(
        &self,
        key: &PoolKey,
        memory_mb: u32,
    ) -> (Result<Acquired, CapacityExceeded>, Vec<Pooled>) {
        let mut state = self.lock();
        let stale: Vec<PoolKey> = state
            .idle
            .keys()
            .filter(|k| k.name == key.name && k.version == key.version && k.revision < key.revision)
            .cloned()
            .collect();
        let mut drained = Vec::new();
        for old in stale {
            for idle in state.idle.remove(&old).unwrap_or_default() {
                Self::account_gone(
                    &mut state,
                    idle.pooled.uid,
                    idle.pooled.instance.memory_mb(),
                );
                drained.push(idle.pooled);
            }
        }
        if let Some(list) = state.idle.get_mut(key) {
            if let Some(idle) = list.pop() {
                if list.is_empty() {
                    state.idle.remove(key);
                }
                state.busy += 1;
                return (Ok(Acquired::Warm(Box::new(idle.pooled))), drained);
            }
        }
        let mut evicted = drained;
        while !self.fits(&state, memory_mb) {
            match Self::evict_oldest(&mut state) {
                Some(pooled) => evicted.push(pooled),
                None => break,
            }
        }
        if !self.fits(&state, memory_mb) {
            let err = CapacityExceeded {
                memory_mb,
                live: state.live,
                reserved_mb: state.memory_reserved_mb,
                allocatable_mb: self.limits.allocatable_memory_mb,
                max_instances: self.limits.max_instances,
            };
            return (Err(err), evicted);
        }
        let uid = self.allocate_uid(&mut state);
        state.live += 1;
        state.busy += 1;
        state.memory_reserved_mb += u64::from(memory_mb);
        (Ok(Acquired::Cold(Reservation { uid, memory_mb })), evicted)
    }

    fn allocate_uid(&self, state: &mut State) -> u32 {
        match state.free_uids.pop() {
            Some(uid) => uid,
            None => {
                let uid = self.limits.uid_base + state.next_uid % self.limits.uid_count.max(1);
                state.next_uid += 1;
                uid
            }
        }
    }

    /// A uid for a pre-started sandbox, unique among live instances and
    /// other pre-started sandboxes (it is not counted as an instance).
    pub fn take_uid(&self) -> u32 {
        let mut state = self.lock();
        self.allocate_uid(&mut state)
    }

    /// Hands back a uid from [`Pool::take_uid`], or a cold reservation's
    /// uid when the instance runs as a pre-started sandbox's uid instead.
    pub fn give_back_uid(&self, uid: u32) {
        self.lock().free_uids.push(uid);
    }

    fn fits(&self, state: &State, memory_mb: u32) -> bool {
        state.live < self.limits.max_instances
            && state.memory_reserved_mb + u64::from(memory_mb) <= self.limits.allocatable_memory_mb
    }

    fn evict_oldest(state: &mut State) -> Option<Pooled> {
        let key = state
            .idle
            .iter()
            .filter_map(|(k, list)| list.first().map(|i| (k.clone(), i.since)))
            .min_by_key(|(_, since)| *since)?
            .0;
        let list = state.idle.get_mut(&key)?;
        let idle = list.remove(0);
        if list.is_empty() {
            state.idle.remove(&key);
        }
        Self::account_gone(state, idle.pooled.uid, idle.pooled.instance.memory_mb());
        Some(idle.pooled)
    }

    fn account_gone(state: &mut State, uid: u32, memory_mb: u32) {
        state.live = state.live.saturating_sub(1);
        state.memory_reserved_mb = state
            .memory_reserved_mb
            .saturating_sub(u64::from(memory_mb));
        state.free_uids.push(uid);
    }

    /// Returns a busy instance: kept warm if `reusable`, otherwise handed
    /// back for shutdown.
    pub fn release(&self, key: PoolKey, pooled: Pooled, reusable: bool) -> Option<Pooled> {
        let mut state = self.lock();
        state.busy = state.busy.saturating_sub(1);
        if reusable {
            state.idle.entry(key).or_default().push(Idle {
                pooled,
                since: Instant::now(),
            });
            None
        } else {
            Self::account_gone(&mut state, pooled.uid, pooled.instance.memory_mb());
            Some(pooled)
        }
    }

    /// Gives back a reservation whose cold start failed.
    pub fn cancel(&self, reservation: Reservation) {
        let mut state = self.lock();
        state.busy = state.busy.saturating_sub(1);
        Self::account_gone(&mut state, reservation.uid, reservation.memory_mb);
    }

    /// Removes idle instances older than the idle timeout.
    pub fn take_expired(&self) -> Vec<Pooled> {
        let mut state = self.lock();
        let timeout = self.limits.idle_timeout;
        let mut expired = Vec::new();
        let keys: Vec<PoolKey> = state.idle.keys().cloned().collect();
        for key in keys {
            let Some(list) = state.idle.get_mut(&key) else {
                continue;
            };
            let (old, keep): (Vec<Idle>, Vec<Idle>) =
                list.drain(..).partition(|i| i.since.elapsed() >= timeout);
            *list = keep;
            if list.is_empty() {
                state.idle.remove(&key);
            }
            for idle in old {
                Self::account_gone(
                    &mut state,
                    idle.pooled.uid,
                    idle.pooled.instance.memory_mb(),
                );
                expired.push(idle.pooled);
            }
        }
        expired
    }

    /// Removes every idle instance (for shutdown).
    pub fn take_all_idle(&self) -> Vec<Pooled> {
        let mut state = self.lock();
        let all: Vec<Idle> = state.idle.drain().flat_map(|(_, list)| list).collect();
        all.into_iter()
            .map(|idle| {
                Self::account_gone(
                    &mut state,
                    idle.pooled.uid,
                    idle.pooled.instance.memory_mb(),
                );
                idle.pooled
            })
            .collect()
    }

    /// Idle instances waiting for `key`.
    pub fn idle_count(&self, key: &PoolKey) -> u32 {
        self.lock()
            .idle
            .get(key)
            .map_or(0, |idle| idle.len() as u32)
    }

    /// Idle instances per key (keys with none left out).
    pub fn idle_counts(&self) -> Vec<(PoolKey, u32)> {
        self.lock()
            .idle
            .iter()
            .filter(|(_, idle)| !idle.is_empty())
            .map(|(key, idle)| (key.clone(), idle.len() as u32))
            .collect()
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        let state = self.lock();
        PoolStats {
            instances: state.live,
            busy: state.busy,
            memory_reserved_mb: state.memory_reserved_mb,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(max_instances: u32, memory: u64) -> Pool {
        Pool::new(PoolLimits {
            max_instances,
            allocatable_memory_mb: memory,
            idle_timeout: Duration::from_secs(60),
            uid_base: 1000,
            uid_count: 10,
        })
    }

    fn key(name: &str) -> PoolKey {
        PoolKey {
            name: name.into(),
            version: "$LATEST".into(),
            revision: 1,
        }
    }

    fn cold(pool: &Pool, name: &str, memory: u32) -> Result<Reservation, CapacityExceeded> {
        match pool.acquire(&key(name), memory).0? {
            Acquired::Cold(reservation) => Ok(reservation),
            Acquired::Warm(_) => panic!("no warm instance exists"),
        }
    }

    #[test]
    fn memory_capacity_is_enforced_and_released() {
        let pool = pool(10, 512);
        let a = cold(&pool, "f", 256).unwrap();
        let b = cold(&pool, "f", 256).unwrap();
        let err = cold(&pool, "f", 128).unwrap_err();
        assert!(err.to_string().contains("512 of 512 MB"), "{err}");
        assert_eq!(
            pool.stats(),
            PoolStats {
                instances: 2,
                busy: 2,
                memory_reserved_mb: 512
            }
        );
        pool.cancel(a);
        assert!(cold(&pool, "g", 256).is_ok());
        pool.cancel(b);
        assert_eq!(pool.stats().memory_reserved_mb, 256);
    }

    #[test]
    fn instance_count_is_enforced() {
        let pool = pool(2, 10_000);
        cold(&pool, "f", 128).unwrap();
        cold(&pool, "f", 128).unwrap();
        assert!(cold(&pool, "f", 128).is_err());
    }

    #[test]
    fn uids_are_unique_among_live_instances_and_reused() {
        let pool = pool(10, 10_000);
        let a = cold(&pool, "f", 128).unwrap();
        let b = cold(&pool, "f", 128).unwrap();
        assert_ne!(a.uid, b.uid);
        assert!((1000..1010).contains(&a.uid) && (1000..1010).contains(&b.uid));
        pool.cancel(a);
        let c = cold(&pool, "f", 128).unwrap();
        assert_eq!(c.uid, a.uid, "a freed uid is handed out again");
    }
}
