//! Round-trip statistics: what a ping role measures and the report prints. A leaf
//! module (the child protocol and the report both use it, neither through the other).

use serde::{Deserialize, Serialize};

/// Round-trip times measured by a ping role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RttStats {
    /// Timed round trips.
    pub(crate) rounds: u64,
    /// Median, nanoseconds.
    pub(crate) p50_ns: u64,
    /// 99th percentile.
    pub(crate) p99_ns: u64,
    /// 99.9th percentile.
    pub(crate) p999_ns: u64,
    /// Largest.
    pub(crate) max_ns: u64,
}

impl RttStats {
    /// Nearest-rank percentiles of `samples` (sorted in place). `None` if empty.
    pub(crate) fn from_samples(samples: &mut [u64]) -> Option<Self> {
        samples.sort_unstable();
        let n = samples.len();
        let rank = |q: f64| samples[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
        (n > 0).then(|| RttStats {
            rounds: n as u64,
            p50_ns: rank(0.5),
            p99_ns: rank(0.99),
            p999_ns: rank(0.999),
            max_ns: samples[n - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<u64> = (1..=1000).rev().collect();
        let s = RttStats::from_samples(&mut v).unwrap();
        assert_eq!((s.p50_ns, s.p99_ns, s.p999_ns, s.max_ns), (500, 990, 999, 1000));
        assert_eq!(RttStats::from_samples(&mut []), None);
        let s = RttStats::from_samples(&mut [7]).unwrap();
        assert_eq!((s.p50_ns, s.p999_ns), (7, 7));
    }
}
