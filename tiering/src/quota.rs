//! `ByteQuota`: a byte rate shared by several workers, as Kafka's
//! `remote.log.manager.copy.max.bytes.per.second` and
//! `remote.log.manager.fetch.max.bytes.per.second` bound the cold tier's
//! uploads and reads, and `log.cleaner.io.max.bytes.per.second` the
//! cleaners. Workers charge what they moved and wait as long as they are
//! told to.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket holding at most one second of the rate. A worker charges
/// bytes after (or before) moving them; the answer is how long it must wait
/// so that the bytes moved since the bucket was full stay within the rate.
/// Safe to share between threads and tasks: the bucket is behind a mutex
/// held only for the arithmetic.
#[derive(Debug)]
pub struct ByteQuota {
    /// Bytes per second as `f64` bits; infinite, zero or negative means no
    /// limit. Changed at run time by dynamic configs.
    rate: AtomicU64,
    /// Tokens left (may go negative: a debt the next charges wait out) and
    /// when they were counted.
    bucket: Mutex<(f64, Option<Instant>)>,
}

impl ByteQuota {
    /// A quota of `rate` bytes per second (no limit when it is not a
    /// positive finite number below 10^15).
    pub fn new(rate: f64) -> ByteQuota {
        ByteQuota {
            rate: AtomicU64::new(rate.to_bits()),
            bucket: Mutex::new((0.0, None)),
        }
    }

    /// A quota that never waits.
    pub fn unlimited() -> ByteQuota {
        ByteQuota::new(f64::INFINITY)
    }

    pub fn set_rate(&self, rate: f64) {
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
    }

    /// The rate in force, `None` when unlimited.
    pub fn rate(&self) -> Option<f64> {
        let rate = f64::from_bits(self.rate.load(Ordering::Relaxed));
        (rate.is_finite() && rate > 0.0 && rate < 1e15).then_some(rate)
    }

    /// Charges `bytes` now: how long the caller must wait.
    pub fn charge(&self, bytes: u64) -> Duration {
        self.charge_at(Instant::now(), bytes)
    }

    /// Charges `bytes` at `now` (the clock is the caller's, so that the
    /// arithmetic is tested without sleeping).
    pub fn charge_at(&self, now: Instant, bytes: u64) -> Duration {
        let Some(rate) = self.rate() else {
            return Duration::ZERO;
        };
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = &mut *bucket;
        // A bucket never used starts full: the first second's worth goes at
        // once, as Kafka's quota lets a window fill before it throttles.
        let elapsed = at.map_or(1.0, |a| now.saturating_duration_since(a).as_secs_f64());
        *tokens = (*tokens + elapsed * rate).min(rate);
        *at = Some(now);
        *tokens -= bytes as f64;
        if *tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-*tokens / rate)
        }
    }

    /// Charges `bytes` and sleeps the answer on the async runtime.
    pub async fn take(&self, bytes: u64) {
        let wait = self.charge(bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_lets_one_second_through_then_holds_the_rate() {
        let q = ByteQuota::new(1000.0);
        let t0 = Instant::now();
        assert_eq!(q.charge_at(t0, 1000), Duration::ZERO, "a full bucket");
        assert_eq!(q.charge_at(t0, 500), Duration::from_millis(500));
        // Half a second later the debt is paid; the next 500 bytes wait
        // another half second.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(q.charge_at(t1, 500), Duration::from_millis(500));
        // A long idle period refills only one second's worth.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(q.charge_at(t2, 1000), Duration::ZERO);
        assert_eq!(q.charge_at(t2, 1), Duration::from_millis(1));
    }

    #[test]
    fn an_unlimited_quota_never_waits_and_the_rate_changes_at_run_time() {
        let q = ByteQuota::unlimited();
        let t0 = Instant::now();
        assert_eq!(q.charge_at(t0, u64::MAX / 2), Duration::ZERO);
        q.set_rate(100.0);
        assert_eq!(q.charge_at(t0, 100), Duration::ZERO);
        assert_eq!(q.charge_at(t0, 100), Duration::from_secs(1));
        q.set_rate(f64::MAX);
        assert_eq!(q.rate(), None);
        assert_eq!(q.charge_at(t0, 1 << 40), Duration::ZERO);
    }
}
