//! The broker's shared state: configuration, topics and their partitions
//! (hot-tier log and cold-tier state), and the wake-up signal for
//! long-polling fetches.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_storage::{Log, Offset};
use strata_tiering::{
    ChunkCache, PartitionKey, RemotePartition, RemoteStore, RetentionLimits, TieringError,
};
use tokio::sync::Notify;
use tracing::{info, warn};
use uuid::Uuid;

use crate::config::{BrokerConfig, Layer};
use crate::error::AdminError;
use crate::groups::Coordinator;
use crate::meta::{MetaError, MetaStore, TopicRecord};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One partition: its hot tier (the local log) and its cold tier (the
/// remote manifest and reads). Shared by every task serving it.
pub struct Partition {
    pub log: Arc<Log>,
    pub remote: Arc<RemotePartition>,
}

impl Partition {
    /// The partition's log start offset across both tiers.
    pub fn log_start(&self) -> Offset {
        let local = self.log.log_start_offset();
        self.remote.log_start().map_or(local, |r| r.min(local))
    }
}

/// A topic as it is now. Immutable: changes replace the whole `Arc<Topic>`
/// in the broker's map, sharing the partitions that stay.
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<Arc<Partition>>,
    pub counters: TopicCounters,
}

/// A topic's traffic counters, registered once when the topic is opened so
/// that produce and fetch only add to them (no label formatting or registry
/// lookup per request). Cheap to clone; safe to use from any thread.
#[derive(Clone)]
pub struct TopicCounters {
    pub bytes_in: metrics::Counter,
    pub records_in: metrics::Counter,
    pub bytes_out: metrics::Counter,
}

impl TopicCounters {
    pub fn new(topic: &str) -> TopicCounters {
        TopicCounters {
            bytes_in: metrics::counter!("strata_topic_bytes_in_total", "topic" => topic.to_string()),
            records_in: metrics::counter!("strata_topic_records_in_total", "topic" => topic.to_string()),
            bytes_out: metrics::counter!("strata_topic_bytes_out_total", "topic" => topic.to_string()),
        }
    }
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    fn record(&self) -> TopicRecord {
        TopicRecord {
            name: self.name.clone(),
            id: self.id,
            partitions: self.partitions.len() as u32,
            configs: self.configs.clone(),
        }
    }
}

/// Kafka's topic name rules.
pub fn validate_topic_name(name: &str) -> Result<(), AdminError> {
    let invalid = |why: &str| {
        Err(AdminError::InvalidTopic(format!(
            "Topic name \"{name}\" is illegal, {why}"
        )))
    };
    if name.is_empty() {
        return invalid("it can't be empty");
    }
    if name == "." || name == ".." {
        return invalid("it can't be '.' or '..'");
    }
    if name.len() > 249 {
        return invalid("it can't be longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid("it contains a character other than ASCII alphanumerics, '.', '_' and '-'");
    }
    Ok(())
}

/// Shared by every connection task. Lookups take a read lock for a map
/// access; admin changes are serialized by `admin` and run on blocking
/// threads because they create and delete files.
pub struct Broker {
    /// The configuration in force; a dynamic change swaps in a new one.
    config: RwLock<Arc<BrokerConfig>>,
    pub node_id: i32,
    pub cluster_id: String,
    pub advertised_host: String,
    pub advertised_port: i32,
    pub remote_store: RemoteStore,
    pub cache: Arc<ChunkCache>,
    data_dir: PathBuf,
    meta: MetaStore,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    admin: Mutex<()>,
    /// Woken after every append so that long-polling fetches re-check.
    pub appended: Notify,
    /// Consumer groups and their committed offsets.
    pub groups: Coordinator,
}

/// The start-up configuration with the persisted dynamic configs on top. A
/// persisted value this build no longer accepts is logged and skipped
/// rather than stopping the broker.
fn load_dynamic_configs(
    config: BrokerConfig,
    meta: &MetaStore,
) -> Result<BrokerConfig, AdminError> {
    let (cluster_default, this_broker) = meta.load_broker_configs()?;
    let mut config = config;
    for (layer, values) in [
        (Layer::ClusterDefault, cluster_default),
        (Layer::ThisBroker, this_broker),
    ] {
        let mut kept = BTreeMap::new();
        for (k, v) in values {
            let mut one = kept.clone();
            one.insert(k.clone(), v.clone());
            match config.with_dynamic(layer, one) {
                Ok(_) => {
                    kept.insert(k, v);
                }
                Err(e) => {
                    warn!(key = %k, value = %v, layer = ?layer, error = %e, "ignoring a persisted dynamic broker config")
                }
            }
        }
        if !kept.is_empty() {
            info!(layer = ?layer, configs = ?kept, "dynamic broker configs");
        }
        config = config.with_dynamic(layer, kept)?;
    }
    Ok(config)
}

fn partition_dir(data_dir: &Path, topic: &str, partition: usize) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

impl Broker {
    /// Opens the data directory: metadata, then every partition's log,
    /// recovering them if the last shutdown was not clean, and its cold
    /// tier manifest. Blocking.
    pub fn open(
        config: BrokerConfig,
        data_dir: &Path,
        advertised: (String, i32),
        remote_store: RemoteStore,
        cache: Arc<ChunkCache>,
    ) -> Result<Broker, AdminError> {
        fs::create_dir_all(data_dir).map_err(|source| MetaError::Io {
            op: "create",
            path: data_dir.to_owned(),
            source,
        })?;
        let meta = MetaStore::new(data_dir);
        let cluster_id = meta.cluster_id()?;
        let clean = meta.take_clean_shutdown()?;
        if !clean {
            info!(data_dir = %data_dir.display(), "no clean shutdown recorded: recovering logs");
        }
        remove_deleted_dirs(data_dir);
        let delay = Duration::from_millis(config.i64("group.initial.rebalance.delay.ms") as u64);
        let retention = Duration::from_secs(config.i64("offsets.retention.minutes") as u64 * 60);
        let groups = Coordinator::open(data_dir, delay, retention, clean)?;
        let config = load_dynamic_configs(config, &meta)?;
        let mut broker = Broker {
            node_id: config.i64("node.id") as i32,
            config: RwLock::new(Arc::new(config)),
            cluster_id,
            advertised_host: advertised.0,
            advertised_port: advertised.1,
            remote_store,
            cache,
            data_dir: data_dir.to_owned(),
            meta,
            topics: RwLock::new(BTreeMap::new()),
            admin: Mutex::new(()),
            appended: Notify::new(),
            groups,
        };
        let mut topics = BTreeMap::new();
        for rec in broker.meta.load_topics()? {
            let partitions = (0..rec.partitions as usize)
                .map(|p| broker.open_partition(&rec.name, rec.id, &rec.configs, p, clean))
                .collect::<Result<Vec<_>, _>>()?;
            topics.insert(
                rec.name.clone(),
                Arc::new(Topic {
                    counters: TopicCounters::new(&rec.name),
                    name: rec.name,
                    id: rec.id,
                    configs: rec.configs,
                    partitions,
                }),
            );
        }
        info!(topics = topics.len(), cluster_id = %broker.cluster_id, "loaded topics");
        broker.topics = RwLock::new(topics);
        Ok(broker)
    }

    fn open_partition(
        &self,
        topic: &str,
        id: Uuid,
        configs: &BTreeMap<String, String>,
        partition: usize,
        clean: bool,
    ) -> Result<Arc<Partition>, AdminError> {
        let dir = partition_dir(&self.data_dir, topic, partition);
        let log = Arc::new(Log::open(
            &dir,
            self.config().log_config(configs),
            clean,
            now_ms(),
        )?);
        let key = PartitionKey {
            topic: topic.to_string(),
            topic_id: id,
            partition: partition as i32,
        };
        let open = |key: PartitionKey| {
            RemotePartition::open(
                key,
                self.remote_store.clone(),
                Arc::clone(&self.cache),
                &dir,
            )
        };
        let remote = match open(key.clone()) {
            Ok(remote) => remote,
            Err(e @ TieringError::Manifest { .. }) => {
                warn!(topic, partition, error = %e, "the remote manifest is unreadable; restoring it from the copy in the object store");
                self.restore_manifest(&key, &dir)?;
                open(key).map_err(|e| AdminError::Tiering(e.to_string()))?
            }
            Err(e) => return Err(AdminError::Tiering(e.to_string())),
        };
        Ok(Arc::new(Partition {
            log,
            remote: Arc::new(remote),
        }))
    }

    /// The configuration in force now.
    pub fn config(&self) -> Arc<BrokerConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces one layer of dynamic broker configs (validated, persisted,
    /// then applied to every partition's log at once and to tiering from
    /// its next pass). Blocking.
    pub fn set_dynamic_configs(
        &self,
        layer: Layer,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let next = self.config().with_dynamic(layer, configs)?;
        if validate_only {
            return Ok(());
        }
        self.meta.save_broker_configs(
            next.dynamic(Layer::ClusterDefault),
            next.dynamic(Layer::ThisBroker),
        )?;
        let next = Arc::new(next);
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&next);
        for topic in self.topics() {
            let log_config = next.log_config(&topic.configs);
            for p in &topic.partitions {
                p.log.set_config(log_config.clone());
            }
        }
        info!(layer = ?layer, configs = ?next.dynamic(layer), "changed dynamic broker configs");
        Ok(())
    }

    /// Replaces an unreadable local manifest with the store's copy, or
    /// explains why the partition cannot be opened. Blocking; called from
    /// start-up, which runs on the runtime's blocking threads.
    fn restore_manifest(&self, key: &PartitionKey, dir: &Path) -> Result<(), AdminError> {
        let fail = |reason: String| {
            AdminError::Tiering(format!(
                "the remote manifest of {} is unreadable and {reason}; \
                 move {}/remote-manifest.json aside to start without the cold tier's history",
                key.dir(),
                dir.display()
            ))
        };
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| fail("no runtime is available to read the store's copy".into()))?;
        match runtime.block_on(RemotePartition::restore_manifest(
            key,
            &self.remote_store,
            dir,
        )) {
            Ok(true) => {
                info!(partition = %key.dir(), "restored the remote manifest from the object store");
                Ok(())
            }
            Ok(false) => Err(fail("the object store has no copy".into())),
            Err(e) => Err(fail(format!(
                "its copy in the object store cannot be read: {e}"
            ))),
        }
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn save(&self, topics: &BTreeMap<String, Arc<Topic>>) -> Result<(), AdminError> {
        Ok(self
            .meta
            .save_topics(topics.values().map(|t| t.record()).collect())?)
    }

    /// Creates a topic, or only checks that it could be created. Blocking.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, AdminError> {
        validate_topic_name(name)?;
        let partitions = if partitions == -1 {
            self.config().i64("num.partitions") as i32
        } else {
            partitions
        };
        if partitions <= 0 {
            return Err(AdminError::InvalidPartitions(format!(
                "Number of partitions must be larger than 0, got {partitions}."
            )));
        }
        let rf = if replication_factor == -1 {
            self.config().i64("default.replication.factor") as i16
        } else {
            replication_factor
        };
        if rf != 1 {
            return Err(AdminError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only 1 broker(s) are registered."
            )));
        }
        self.config().validate_topic_configs(&configs)?;
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        if self.topic(name).is_some() {
            return Err(AdminError::TopicExists(name.to_string()));
        }
        let id = Uuid::new_v4();
        if validate_only {
            return Ok(Arc::new(Topic {
                name: name.into(),
                id,
                configs,
                partitions: Vec::new(),
                counters: TopicCounters::new(name),
            }));
        }
        let parts = (0..partitions as usize)
            .map(|p| self.open_partition(name, id, &configs, p, true))
            .collect::<Result<Vec<_>, _>>()?;
        let topic = Arc::new(Topic {
            name: name.into(),
            id,
            configs,
            partitions: parts,
            counters: TopicCounters::new(name),
        });
        let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
        map.insert(name.into(), Arc::clone(&topic));
        if let Err(e) = self.save(&map) {
            map.remove(name);
            return Err(e);
        }
        info!(topic = name, partitions, topic_id = %id, "created topic");
        Ok(topic)
    }

    /// Deletes a topic and its data in both tiers. Blocking; the remote
    /// objects are deleted by a background task that retries until the
    /// store has let them go.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, AdminError> {
        if !self.config().bool("delete.topic.enable") {
            return Err(AdminError::DeletionDisabled);
        }
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = {
            let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
            let topic = map.remove(name).ok_or(AdminError::UnknownTopic)?;
            if let Err(e) = self.save(&map) {
                map.insert(name.into(), topic);
                return Err(e);
            }
            topic
        };
        // The topic is gone from the metadata; its directories are renamed
        // before removal so that a crash midway leaves only `-delete`
        // directories, which the next start removes.
        for p in &topic.partitions {
            let mut doomed = p.log.dir().as_os_str().to_owned();
            doomed.push(format!(".{}-delete", Uuid::new_v4().simple()));
            let doomed = PathBuf::from(doomed);
            if let Err(e) = fs::rename(p.log.dir(), &doomed) {
                warn!(dir = %p.log.dir().display(), error = %e, "could not rename a deleted partition");
            }
            if let Err(e) = p.log.delete() {
                warn!(error = %e, "could not mark a deleted partition");
            }
            if let Err(e) = fs::remove_dir_all(&doomed) {
                warn!(dir = %doomed.display(), error = %e, "could not remove a deleted partition");
            }
        }
        if let Some(first) = topic.partitions.first() {
            let remote = Arc::clone(&first.remote);
            let topic_name = name.to_string();
            tokio::runtime::Handle::current().spawn(async move {
                let mut delay = Duration::from_millis(200);
                loop {
                    match remote.delete_topic_objects().await {
                        Ok(n) => {
                            info!(topic = %topic_name, objects = n, "deleted the topic's remote objects");
                            return;
                        }
                        Err(e) => {
                            warn!(topic = %topic_name, error = %e, retriable = e.is_retriable(), "deleting remote objects failed; retrying");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(60));
                        }
                    }
                }
            });
        }
        self.groups.forget_topic(name);
        self.appended.notify_waiters();
        info!(topic = name, "deleted topic");
        Ok(topic.id)
    }

    /// Raises a topic's partition count. Blocking.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self.topic(name).ok_or(AdminError::UnknownTopic)?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(AdminError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            )));
        }
        if validate_only {
            return Ok(());
        }
        let mut partitions = topic.partitions.clone();
        for p in current as usize..count as usize {
            partitions.push(self.open_partition(name, topic.id, &topic.configs, p, true)?);
        }
        self.replace(
            name,
            Topic {
                name: topic.name.clone(),
                id: topic.id,
                configs: topic.configs.clone(),
                partitions,
                counters: topic.counters.clone(),
            },
            topic,
        )?;
        info!(topic = name, partitions = count, "added partitions");
        Ok(())
    }

    /// Replaces a topic's config overrides (validated, persisted, applied to
    /// every partition's log at once and to tiering from its next pass).
    /// Blocking.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        self.config().validate_topic_configs(&configs)?;
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self.topic(name).ok_or(AdminError::UnknownTopic)?;
        if validate_only {
            return Ok(());
        }
        let log_config = self.config().log_config(&configs);
        for p in &topic.partitions {
            p.log.set_config(log_config.clone());
        }
        let partitions = topic.partitions.clone();
        self.replace(
            name,
            Topic {
                name: topic.name.clone(),
                id: topic.id,
                configs,
                partitions,
                counters: topic.counters.clone(),
            },
            topic,
        )?;
        info!(topic = name, "changed topic configs");
        Ok(())
    }

    fn replace(&self, name: &str, new: Topic, old: Arc<Topic>) -> Result<(), AdminError> {
        let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
        map.insert(name.into(), Arc::new(new));
        if let Err(e) = self.save(&map) {
            map.insert(name.into(), old);
            return Err(e);
        }
        Ok(())
    }

    /// A producer id and epoch for InitProducerId: the next epoch of the
    /// caller's id when it asks for one (v3+), a new id otherwise. Blocking.
    pub fn init_producer_id(&self, current: Option<(i64, i16)>) -> Result<(i64, i16), AdminError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        match current {
            Some((id, epoch)) if id >= 0 && (0..i16::MAX - 1).contains(&epoch) => {
                Ok((id, epoch + 1))
            }
            _ => Ok((self.meta.next_producer_id()?, 0)),
        }
    }

    /// Uploads sealed segments of topics with the cold tier enabled.
    pub async fn upload_pass(self: Arc<Self>) {
        for topic in self.topics() {
            if !self.config().tier_config(&topic.configs).remote {
                continue;
            }
            for p in &topic.partitions {
                // Failures are logged and backed off inside; the hot tier
                // is not affected.
                let _ = p.remote.upload_pending(&p.log).await;
            }
        }
    }

    /// Runs retention on every partition: total retention on both tiers,
    /// then local retention, which for tiered topics only deletes segments
    /// whose upload is finished.
    pub async fn retention_pass(self: Arc<Self>) {
        let now = now_ms();
        for topic in self.topics() {
            let tier = self.config().tier_config(&topic.configs);
            for (index, p) in topic.partitions.iter().enumerate() {
                if let Err(e) = self.retain(p, tier, now).await {
                    warn!(topic = %topic.name, partition = index, error = %e, "retention failed");
                }
            }
        }
    }

    async fn retain(
        &self,
        p: &Arc<Partition>,
        tier: crate::config::TierConfig,
        now: i64,
    ) -> Result<(), AdminError> {
        if !tier.remote && p.remote.remote_segments() == 0 {
            let log = Arc::clone(&p.log);
            crate::handlers::blocking(move || log.enforce_retention(now)).await?;
            return Ok(());
        }
        let local_only = p
            .log
            .bytes_from(p.remote.uploaded_end().unwrap_or(Offset(i64::MIN)));
        let limits = RetentionLimits {
            retention_ms: tier.retention_ms,
            retention_bytes: tier.retention_bytes,
        };
        // Store failures back off inside and leave the hot tier alone.
        let _ = p.remote.enforce_retention(now, limits, local_only).await;
        let (log, uploaded_end) = (Arc::clone(&p.log), p.remote.uploaded_end());
        crate::handlers::blocking(move || {
            if tier.retention_ms >= 0 {
                log.roll_if_older_than(now, tier.retention_ms)?;
            }
            log.delete_oldest_while(|seg, local_bytes| {
                let uploaded = uploaded_end.is_some_and(|end| seg.next_offset <= end);
                let age = now - seg.last_modified_ms;
                let local_expired = (tier.local_retention_ms >= 0 && age > tier.local_retention_ms)
                    || (tier.local_retention_bytes >= 0
                        && local_bytes - seg.size >= tier.local_retention_bytes as u64);
                let total_expired = tier.retention_ms >= 0 && age > tier.retention_ms;
                (uploaded && local_expired) || total_expired
            })
        })
        .await?;
        Ok(())
    }

    /// Sets the per-partition gauges of the metrics endpoint from the
    /// partitions' current state: log sizes per tier, offsets, and the
    /// sealed segments the uploader has not copied yet. Called at each
    /// scrape; reads in-memory state only.
    pub fn record_partition_gauges(&self) {
        for topic in self.topics() {
            let remote_enabled = self.config().tier_config(&topic.configs).remote;
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
                gauge("strata_partition_bytes", Some(("tier", "local")))
                    .set(p.log.size_bytes() as f64);
                gauge("strata_partition_bytes", Some(("tier", "remote")))
                    .set(p.remote.remote_bytes() as f64);
                gauge("strata_partition_log_start_offset", None).set(p.log_start().0 as f64);
                gauge("strata_partition_local_start_offset", None)
                    .set(p.log.log_start_offset().0 as f64);
                gauge("strata_partition_high_watermark", None).set(p.log.high_watermark().0 as f64);
                let (segments, bytes) = if remote_enabled {
                    p.log
                        .sealed_from(p.remote.uploaded_end().unwrap_or(Offset(i64::MIN)))
                } else {
                    (0, 0)
                };
                gauge("strata_partition_upload_lag_segments", None).set(segments as f64);
                gauge("strata_partition_upload_lag_bytes", None).set(bytes as f64);
            }
        }
    }

    /// The directory of partitions and metadata.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// fsyncs partitions whose `flush.ms` has passed, and segments sealed
    /// since the last pass whose fsync is still pending. Blocking.
    pub fn flush_due(&self) {
        let now = now_ms();
        for topic in self.topics() {
            for (index, p) in topic.partitions.iter().enumerate() {
                if let Err(e) = p.log.maybe_flush(now).and_then(|()| p.log.flush_sealed()) {
                    warn!(topic = %topic.name, partition = index, error = %e, "flush failed");
                }
            }
        }
    }

    /// Flushes and seals every log and records the clean shutdown. Blocking.
    pub fn shutdown(&self) -> Result<(), AdminError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        for topic in self.topics() {
            for p in &topic.partitions {
                p.log.close()?;
            }
        }
        self.groups.close()?;
        self.meta.mark_clean_shutdown()?;
        info!("shut down cleanly");
        Ok(())
    }
}

/// Removes partition directories left behind by a deletion that crashed.
fn remove_deleted_dirs(data_dir: &Path) {
    let Ok(entries) = fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with("-delete") && entry.path().is_dir() {
            match fs::remove_dir_all(entry.path()) {
                Ok(()) => info!(dir = %name, "removed the rest of a deleted partition"),
                Err(e) => warn!(dir = %name, error = %e, "could not remove a deleted partition"),
            }
        }
    }
}
