//! The broker's background passes over every partition: uploads to the
//! cold tier, retention on both tiers, fsyncs that `flush.ms` and rolls ask
//! for, and the per-partition gauges set at each metrics scrape. `main.rs`
//! runs them periodically; each pass takes the topics as they are when it
//! starts.

use std::sync::Arc;

use tracing::warn;

use crate::broker::Broker;
use crate::clock::now_ms;

impl Broker {
    /// Uploads sealed segments of topics with the cold tier enabled.
    pub async fn upload_pass(self: Arc<Self>) {
        // Nothing is uploaded before the catalogue names its topic, so the
        // bucket never holds segments of a topic it does not describe.
        if !self.bucket.writes() || self.publish_catalogue().await.is_err() {
            return;
        }
        self.write_offsets_snapshot().await;
        for topic in self.topics() {
            if !self.config().tier_policy(&topic.configs).remote {
                continue;
            }
            for p in &topic.partitions {
                // Failures are logged and backed off inside; the hot tier
                // is not affected.
                let _ = p.upload().await;
            }
        }
    }

    /// Runs retention on every partition: total retention on both tiers,
    /// then local retention, which for tiered topics only deletes segments
    /// whose upload is finished. Idle idempotent producers are forgotten in
    /// the same pass (`producer.id.expiration.ms`).
    pub async fn retention_pass(self: Arc<Self>) {
        // `log.cleaner.threads` may have grown at run time.
        self.ensure_cleaner_threads();
        // A fenced broker deletes nothing in a bucket another one writes.
        if !self.bucket.writes() {
            return;
        }
        let now = now_ms();
        for topic in self.topics() {
            let policy = self.config().tier_policy(&topic.configs);
            for (index, p) in topic.partitions.iter().enumerate() {
                if let Err(e) = p.enforce_retention(now, policy).await {
                    warn!(topic = %topic.name, partition = index, error = %e, "retention failed");
                }
                let log = Arc::clone(p.log());
                let expired = tokio::task::spawn_blocking(move || log.expire_producers(now)).await;
                if let Ok(Err(e)) = expired {
                    warn!(topic = %topic.name, partition = index, error = %e, "producer expiry failed");
                }
            }
        }
    }

    /// Sets the per-partition gauges of the metrics endpoint from the
    /// partitions' current state: log sizes per tier, offsets, and the
    /// sealed segments the uploader has not copied yet. Called at each
    /// scrape; reads in-memory state only.
    pub fn record_partition_gauges(&self) {
        for topic in self.topics() {
            let remote_enabled = self.config().tier_policy(&topic.configs).remote;
            for (index, p) in topic.partitions.iter().enumerate() {
                let labels = [
                    ("topic", topic.name.clone()),
                    ("partition", index.to_string()),
                ];
                let gauge = |name: &'static str, extra: Option<(&'static str, &'static str)>| {
                    let mut l: Vec<(&'static str, String)> = labels.to_vec();
                    if let Some((k, v)) = extra {
                        l.push((k, v.to_string()));
                    }
                    metrics::gauge!(name, &l)
                };
                let offsets = p.offsets();
                if let Some(c) = p.log().cleanability(now_ms()) {
                    gauge("strata_partition_dirty_ratio", None).set(c.ratio());
                    if let Some(t) = self.cleaner.last_clean_ms(p.log()) {
                        gauge("strata_partition_seconds_since_clean", None)
                            .set((now_ms() - t) as f64 / 1000.0);
                    }
                }
                gauge("strata_partition_bytes", Some(("tier", "local")))
                    .set(p.log().size_bytes() as f64);
                gauge("strata_partition_bytes", Some(("tier", "remote")))
                    .set(p.remote().remote_bytes() as f64);
                gauge("strata_partition_log_start_offset", None).set(offsets.log_start.0 as f64);
                gauge("strata_partition_local_start_offset", None)
                    .set(offsets.local_start.0 as f64);
                gauge("strata_partition_high_watermark", None).set(offsets.high_watermark.0 as f64);
                let (segments, bytes) = if remote_enabled {
                    p.upload_lag()
                } else {
                    (0, 0)
                };
                gauge("strata_partition_upload_lag_segments", None).set(segments as f64);
                gauge("strata_partition_upload_lag_bytes", None).set(bytes as f64);
            }
        }
    }

    /// Rolls tiered partitions whose active segment is `segment.ms` old,
    /// fsyncs partitions whose `flush.ms` has passed, and segments sealed
    /// since the last pass whose fsync is still pending. Blocking.
    pub fn flush_due(&self) {
        let now = now_ms();
        for topic in self.topics() {
            // A tiered topic's active segment is sealed once it is
            // `segment.ms` old even without appends, so that its records
            // reach the bucket within that bound (the loss window).
            let tiered = self.config().tier_policy(&topic.configs).remote;
            for (index, p) in topic.partitions.iter().enumerate() {
                let log = p.log();
                let rolled = if tiered { log.roll_if_due(now) } else { Ok(()) };
                if let Err(e) = rolled
                    .and_then(|()| log.maybe_flush(now))
                    .and_then(|()| log.flush_sealed())
                {
                    warn!(topic = %topic.name, partition = index, error = %e, "flush failed");
                }
            }
        }
    }
}
