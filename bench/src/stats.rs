//! Percentiles and summaries of latency samples.

use std::time::Duration;

use serde::Serialize;

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Mean.
    pub mean: f64,
    /// Every sample, sorted ascending, for the chart; kept out of the JSON.
    #[serde(skip)]
    pub sorted_ms: Vec<f64>,
}

/// The `q` quantile (0-1) of sorted values, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Summary {
    /// Summarizes durations.
    pub fn of(samples: &[Duration]) -> Summary {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        Summary {
            n: ms.len(),
            p50: quantile(&ms, 0.50),
            p90: quantile(&ms, 0.90),
            p99: quantile(&ms, 0.99),
            p999: quantile(&ms, 0.999),
            mean: ms.iter().sum::<f64>() / ms.len().max(1) as f64,
            sorted_ms: ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::of(&samples);
        assert_eq!((s.p50, s.p90, s.p99, s.p999), (50.0, 90.0, 99.0, 100.0));
        assert!(Summary::of(&[]).p50.is_nan());
    }
}
