//! Concurrency limits, as on Lambda: a cluster-wide limit on running
//! invocations, per-function reservations carved out of it (a reservation
//! is also the function's maximum; 0 disables the function), and an
//! unreserved pool shared by every function without a reservation.
//!
//! A [`Permit`] is one running invocation; dropping it frees the slot and
//! wakes whoever waits in [`ConcurrencyLimiter::released`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Lambda's name for a function over its reserved concurrency.
pub const RESERVED_LIMIT_EXCEEDED: &str = "ReservedFunctionConcurrentInvocationLimitExceeded";
/// Lambda's name for the account (here: cluster) limit being reached.
pub const ACCOUNT_LIMIT_EXCEEDED: &str = "ConcurrentInvocationLimitExceeded";

/// An invocation may not start now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Throttle {
    /// The function's reservation is 0: it is disabled.
    #[error("{RESERVED_LIMIT_EXCEEDED}: function {function} has reserved concurrency 0 (disabled); raise it with `kumo function update {function} --concurrency N` or remove it with --no-concurrency")]
    Disabled {
        /// The function.
        function: String,
    },
    /// The function runs as many invocations as it has reserved.
    #[error("{RESERVED_LIMIT_EXCEEDED}: Rate Exceeded. function {function} already runs {limit} invocation(s), its reserved concurrency")]
    Reserved {
        /// The function.
        function: String,
        /// Its reservation.
        limit: u32,
    },
    /// The unreserved pool of the cluster is in use.
    #[error("{ACCOUNT_LIMIT_EXCEEDED}: Rate Exceeded. {running} unreserved invocation(s) run, the cluster's unreserved concurrency (limit {cluster_limit} minus {reserved} reserved)")]
    Cluster {
        /// Running invocations without a reservation.
        running: u32,
        /// The cluster limit.
        cluster_limit: u32,
        /// Sum of all reservations.
        reserved: u32,
    },
}

impl Throttle {
    /// The Lambda error name of this throttle.
    pub fn reason(&self) -> &'static str {
        match self {
            Throttle::Disabled { .. } | Throttle::Reserved { .. } => RESERVED_LIMIT_EXCEEDED,
            Throttle::Cluster { .. } => ACCOUNT_LIMIT_EXCEEDED,
        }
    }
}

/// A reservation that does not fit the cluster limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reserved_concurrency: {requested} for {function} leaves too little unreserved concurrency (cluster limit {cluster_limit}, {reserved_elsewhere} reserved by other functions)")]
pub struct ReservationTooLarge {
    /// The function.
    pub function: String,
    /// What was asked for.
    pub requested: u32,
    /// The cluster limit.
    pub cluster_limit: u32,
    /// Reserved by other functions.
    pub reserved_elsewhere: u32,
}

#[derive(Default)]
struct State {
    reservations: HashMap<String, u32>,
    reserved_sum: u32,
    running: HashMap<String, u32>,
    running_unreserved: u32,
}

/// The cluster's concurrency accounting (shared by sync and async paths).
#[derive(Clone)]
pub struct ConcurrencyLimiter {
    state: Arc<Mutex<State>>,
    released: Arc<Notify>,
    cluster_limit: u32,
}

impl ConcurrencyLimiter {
    /// A limiter with this cluster-wide limit.
    pub fn new(cluster_limit: u32) -> Self {
        Self {
            state: Arc::default(),
            released: Arc::new(Notify::new()),
            cluster_limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cluster-wide limit.
    pub fn cluster_limit(&self) -> u32 {
        self.cluster_limit
    }

    /// Checks that `function` may reserve `requested` without leaving the
    /// unreserved pool empty.
    pub fn check_reservation(
        &self,
        function: &str,
        requested: Option<u32>,
    ) -> Result<(), ReservationTooLarge> {
        let Some(requested) = requested else {
            return Ok(());
        };
        let state = self.lock();
        let elsewhere = state.reserved_sum - state.reservations.get(function).copied().unwrap_or(0);
        if requested + elsewhere >= self.cluster_limit {
            return Err(ReservationTooLarge {
                function: function.to_string(),
                requested,
                cluster_limit: self.cluster_limit,
                reserved_elsewhere: elsewhere,
            });
        }
        Ok(())
    }

    /// Records a function's reservation (`None` removes it).
    pub fn set_reservation(&self, function: &str, reserved: Option<u32>) {
        let mut state = self.lock();
        let old = match reserved {
            Some(r) => state.reservations.insert(function.to_string(), r),
            None => state.reservations.remove(function),
        };
        state.reserved_sum = state.reserved_sum - old.unwrap_or(0) + reserved.unwrap_or(0);
        drop(state);
        self.released.notify_waiters();
    }

    /// Takes a slot for one invocation of `function`, or says why not.
    pub fn try_acquire(&self, function: &str) -> Result<Permit, Throttle> {
        let mut state = self.lock();
        let running = state.running.get(function).copied().unwrap_or(0);
        let unreserved = match state.reservations.get(function).copied() {
            Some(0) => {
                return Err(Throttle::Disabled {
                    function: function.to_string(),
                })
            }
            Some(limit) if running >= limit => {
                return Err(Throttle::Reserved {
                    function: function.to_string(),
                    limit,
                })
            }
            Some(_) => false,
            None => {
                let pool = self.cluster_limit.saturating_sub(state.reserved_sum);
                if state.running_unreserved >= pool {
                    return Err(Throttle::Cluster {
                        running: state.running_unreserved,
                        cluster_limit: self.cluster_limit,
                        reserved: state.reserved_sum,
                    });
                }
                true
            }
        };
        *state.running.entry(function.to_string()).or_default() += 1;
        if unreserved {
            state.running_unreserved += 1;
        }
        Ok(Permit {
            limiter: self.clone(),
            function: function.to_string(),
            unreserved,
        })
    }

    /// Invocations of `function` running now.
    pub fn running(&self, function: &str) -> u32 {
        self.lock().running.get(function).copied().unwrap_or(0)
    }

    /// Woken whenever a slot is freed or a reservation changes.
    pub fn released(&self) -> &Notify {
        &self.released
    }

    fn release(&self, function: &str, unreserved: bool) {
        let mut state = self.lock();
        if let Some(count) = state.running.get_mut(function) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.running.remove(function);
            }
        }
        if unreserved {
            state.running_unreserved = state.running_unreserved.saturating_sub(1);
        }
        drop(state);
        self.released.notify_waiters();
    }
}

/// One running invocation's slot; freed on drop.
pub struct Permit {
    limiter: ConcurrencyLimiter,
    function: String,
    unreserved: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.release(&self.function, self.unreserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_cap_their_function_and_shrink_the_pool() {
        let limiter = ConcurrencyLimiter::new(4);
        limiter.set_reservation("a", Some(2));
        let a1 = limiter.try_acquire("a").unwrap();
        let _a2 = limiter.try_acquire("a").unwrap();
        let err = limiter.try_acquire("a").err().unwrap();
        assert_eq!(err.reason(), RESERVED_LIMIT_EXCEEDED);
        // The unreserved pool is 4 - 2 = 2.
        let _b1 = limiter.try_acquire("b").unwrap();
        let _c1 = limiter.try_acquire("c").unwrap();
        let err = limiter.try_acquire("b").err().unwrap();
        assert_eq!(err.reason(), ACCOUNT_LIMIT_EXCEEDED);
        assert!(
            err.to_string().contains("limit 4 minus 2 reserved"),
            "{err}"
        );
        drop(a1);
        assert_eq!(limiter.running("a"), 1);
        assert!(limiter.try_acquire("a").is_ok());
    }

    #[test]
    fn zero_disables_and_removal_restores() {
        let limiter = ConcurrencyLimiter::new(10);
        limiter.set_reservation("f", Some(0));
        assert!(matches!(
            limiter.try_acquire("f").err().unwrap(),
            Throttle::Disabled { .. }
        ));
        limiter.set_reservation("f", None);
        assert!(limiter.try_acquire("f").is_ok());
    }

    #[test]
    fn reservations_must_leave_an_unreserved_pool() {
        let limiter = ConcurrencyLimiter::new(10);
        limiter.set_reservation("a", Some(5));
        assert!(limiter.check_reservation("b", Some(4)).is_ok());
        let err = limiter.check_reservation("b", Some(5)).unwrap_err();
        assert!(err.to_string().contains("5 reserved by other"), "{err}");
        // Changing a's own reservation does not count its old value twice.
        assert!(limiter.check_reservation("a", Some(9)).is_ok());
        assert!(limiter.check_reservation("a", None).is_ok());
    }

    #[test]
    fn a_permit_taken_before_a_reservation_changes_is_released_correctly() {
        let limiter = ConcurrencyLimiter::new(2);
        let p = limiter.try_acquire("f").unwrap();
        limiter.set_reservation("f", Some(1));
        drop(p);
        let _q = limiter.try_acquire("g").unwrap();
        assert!(limiter.try_acquire("g").is_err());
        // g's pool is 2 - 1 = 1 and g holds it; f's own slot is free.
        assert!(limiter.try_acquire("f").is_ok());
    }
}
