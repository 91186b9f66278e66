//! The lake view's background pass: each topic with `lake.enable=true` has
//! a translator (`strata_lake::Translator`) that turns its uploaded
//! segments into its Iceberg table. The pass runs on a runtime of its own
//! (one thread at nice 10), under `lake.translation.max.bytes.per.second`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use strata_lake::{Source, Translator};
use strata_tiering::ByteQuota;
use tracing::warn;
use uuid::Uuid;

use crate::broker::Broker;
use crate::clock::now_ms;

/// The translators of the topics with the lake enabled, by topic name,
/// with the id of the topic each was made for. Safe to share: a pass takes
/// a translator out of the map for its work and puts it back after, so the
/// lock is never held across I/O.
pub struct LakeTranslators {
    idle: Mutex<HashMap<String, (Uuid, Translator)>>,
    quota: Arc<ByteQuota>,
}

impl LakeTranslators {
    pub fn new() -> LakeTranslators {
        LakeTranslators {
            idle: Mutex::default(),
            quota: Arc::new(ByteQuota::unlimited()),
        }
    }

    fn take(&self, topic: &str, id: Uuid) -> Translator {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        match idle.remove(topic) {
            Some((old, t)) if old == id => t,
            _ => Translator::new(topic, Arc::clone(&self.quota)),
        }
    }

    fn put(&self, topic: &str, id: Uuid, t: Translator) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.to_string(), (id, t));
    }

    fn forget(&self, topic: &str) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(topic);
    }
}

impl Broker {
    /// Translates what is due in every topic with the lake enabled, one
    /// topic at a time, and sets the lag gauges.
    pub async fn lake_pass(self: Arc<Self>) {
        // A fenced broker writes nothing into a bucket another one owns.
        if !self.bucket.writes() {
            return;
        }
        let config = self.config();
        self.lake
            .quota
            .set_rate(config.i64("lake.translation.max.bytes.per.second") as f64);
        for topic in self.topics() {
            let lake = config.lake_config(&topic.configs);
            if !lake.enabled {
                self.lake.forget(&topic.name);
                continue;
            }
            let mut t = self.lake.take(&topic.name, topic.id);
            let sources: Vec<Source> = topic
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| Source {
                    partition: i as i32,
                    tiered: Arc::clone(p),
                })
                .collect();
            let now = now_ms();
            if let Err(e) = t.pass(&self.remote_store, &lake, &sources, now).await {
                warn!(topic = %topic.name, error = %e, retriable = e.is_retriable(), "lake translation failed");
            }
            let every = config.i64("lake.retention.check.interval.ms");
            if let Err(e) = t.enforce_retention(&lake, now, every).await {
                warn!(topic = %topic.name, error = %e, retriable = e.is_retriable(), "lake retention failed");
            }
            let committed = t.committed();
            let mut lag = 0i64;
            for s in &sources {
                let o = s.tiered.offsets();
                let end = committed.resume_at(s.partition, o.log_start.0);
                lag += (o.last_stable.0 - end).max(0);
            }
            let behind_ms = match committed.committed_ms {
                _ if lag == 0 => 0,
                Some(at) => (now - at).max(0),
                None => 0,
            };
            metrics::gauge!("strata_lake_lag_records", "topic" => topic.name.clone())
                .set(lag as f64);
            metrics::gauge!("strata_lake_lag_seconds", "topic" => topic.name.clone())
                .set(behind_ms as f64 / 1000.0);
            self.lake.put(&topic.name, topic.id, t);
        }
    }
}
