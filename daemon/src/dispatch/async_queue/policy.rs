//! When failed events are tried again: fixed delays after function errors
//! (Lambda: about 1 and 2 minutes) and exponential backoff after throttles
//! and platform errors (Lambda: 1 s up to 5 min).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[async_invoke]` in kumod.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AsyncConfig {
    /// Delay before retry n (1-based) after a function error; the last
    /// entry repeats.
    pub retry_delays_seconds: Vec<u64>,
    /// First delay after a throttle or platform error; doubles each time.
    pub backoff_initial_ms: u64,
    /// Longest delay after a throttle or platform error.
    pub backoff_max_ms: u64,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        Self {
            retry_delays_seconds: vec![60, 120],
            backoff_initial_ms: 1_000,
            backoff_max_ms: 300_000,
        }
    }
}

impl AsyncConfig {
    /// Delay after the `failed_attempts`-th failed attempt (1-based).
    pub fn retry_delay(&self, failed_attempts: u32) -> Duration {
        let index = (failed_attempts.max(1) - 1) as usize;
        let seconds = self
            .retry_delays_seconds
            .get(index)
            .or(self.retry_delays_seconds.last())
            .copied()
            .unwrap_or(0);
        Duration::from_secs(seconds)
    }

    /// Delay after the `backoffs`-th consecutive throttle or platform error.
    pub fn backoff(&self, backoffs: u32) -> Duration {
        let shift = backoffs.max(1).saturating_sub(1).min(32);
        let ms = self
            .backoff_initial_ms
            .saturating_mul(1u64 << shift)
            .min(self.backoff_max_ms);
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_lambda() {
        let policy = AsyncConfig::default();
        assert_eq!(policy.retry_delay(1), Duration::from_secs(60));
        assert_eq!(policy.retry_delay(2), Duration::from_secs(120));
        assert_eq!(policy.retry_delay(3), Duration::from_secs(120));
        assert_eq!(policy.backoff(1), Duration::from_secs(1));
        assert_eq!(policy.backoff(2), Duration::from_secs(2));
        assert_eq!(policy.backoff(4), Duration::from_secs(8));
        assert_eq!(policy.backoff(40), Duration::from_secs(300));
    }

    #[test]
    fn empty_delays_mean_at_once() {
        let policy = AsyncConfig {
            retry_delays_seconds: vec![],
            ..AsyncConfig::default()
        };
        assert_eq!(policy.retry_delay(1), Duration::ZERO);
    }
}
