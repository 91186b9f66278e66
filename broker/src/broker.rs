//! The broker's shared state: the configuration in force, the topic
//! registry and its admin changes (create, delete, add partitions, configs),
//! producer ids, and start-up and shutdown. Background passes are in
//! `tasks.rs`; each partition is a `strata_tiering::TieredPartition`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use strata_storage::Log;
use strata_tiering::{
    ChunkCache, IndexCache, PartitionKey, RemotePartition, RemoteStore, TieredPartition,
    TieringError,
};
use tracing::{info, warn};
use uuid::Uuid;

use crate::clock::now_ms;
use crate::config::{BrokerConfig, Layer};
use crate::error::AdminError;
use crate::group::Coordinator;
use crate::meta::{MetaError, MetaStore};
use crate::topic::{validate_topic_name, Topic, TopicCounters};

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
    /// The address the Kafka listener is bound to, once it is.
    pub listen: Option<std::net::SocketAddr>,
    pub remote_store: RemoteStore,
    pub cache: Arc<ChunkCache>,
    /// Remote segments' indexes, bounded by
    /// `remote.log.index.file.cache.total.size.bytes`.
    pub index_cache: Arc<IndexCache>,
    data_dir: PathBuf,
    /// The data directory's canonical path, as DescribeLogDirs and
    /// AlterReplicaLogDirs name the one log directory (found once at open,
    /// so that no request makes the file system call).
    pub log_dir: String,
    meta: MetaStore,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    admin: Mutex<()>,
    /// Consumer groups and their committed offsets.
    pub groups: Coordinator,
    /// The transaction coordinator of every transactional id.
    pub txns: crate::txn::TxnCoordinator,
    /// The log cleaner's state: logs being cleaned, last passes.
    pub cleaner: crate::log_cleaner::CleanerStatus,
    /// The lake view's translators, one per topic with the lake enabled.
    pub lake: crate::lake::LakeTranslators,
    /// Listeners' TLS, SASL credentials, ACLs and the authorizer.
    pub security: crate::security::Security,
    /// Set by [`Broker::shutdown`]; background threads end when they see it.
    shut_down: std::sync::atomic::AtomicBool,
    /// This broker's standing toward its bucket: primary or read replica,
    /// the catalogue generation, the lease.
    pub bucket: crate::bucket::BucketState,
}

/// Sets the cold tier's byte quotas from `config`.
fn apply_store_quotas(store: &RemoteStore, config: &BrokerConfig) {
    let rate = |key| config.i64(key) as f64;
    store
        .quotas
        .copy
        .set_rate(rate("remote.log.manager.copy.max.bytes.per.second"));
    store
        .quotas
        .fetch
        .set_rate(rate("remote.log.manager.fetch.max.bytes.per.second"));
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
        bucket: crate::bucket::BucketState,
        security: crate::security::Security,
    ) -> Result<Broker, AdminError> {
        let index_cache = Arc::new(IndexCache::new(
            config.i64("remote.log.index.file.cache.total.size.bytes") as u64,
        ));
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
        let groups = Coordinator::open(data_dir, config.group_settings(), clean)?;
        let txns = crate::txn::TxnCoordinator::open(data_dir, config.txn_settings(), clean)?;
        let config = load_dynamic_configs(config, &meta)?;
        apply_store_quotas(&remote_store, &config);
        let mut broker = Broker {
            node_id: config.i64("node.id") as i32,
            config: RwLock::new(Arc::new(config)),
            cluster_id,
            advertised_host: advertised.0,
            advertised_port: advertised.1,
            listen: None,
            remote_store,
            cache,
            index_cache,
            data_dir: data_dir.to_owned(),
            log_dir: data_dir
                .canonicalize()
                .unwrap_or_else(|_| data_dir.to_owned())
                .display()
                .to_string(),
            meta,
            topics: RwLock::new(BTreeMap::new()),
            admin: Mutex::new(()),
            groups,
            txns,
            cleaner: Default::default(),
            lake: crate::lake::LakeTranslators::new(),
            security,
            shut_down: Default::default(),
            bucket,
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
        // Transactions a crash left between their decision and their
        // markers are completed before anything is served.
        broker.txns.recover(&broker);
        Ok(broker)
    }

    fn open_partition(
        &self,
        topic: &str,
        id: Uuid,
        configs: &BTreeMap<String, String>,
        partition: usize,
        clean: bool,
    ) -> Result<Arc<TieredPartition>, AdminError> {
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
                Arc::clone(&self.index_cache),
                &dir,
            )
        };
        let remote = match open(key.clone()) {
            Ok(remote) => remote,
            Err(e @ TieringError::Manifest { .. }) => {
                warn!(topic, partition, error = %e, "the remote manifest is unreadable; restoring it from the copy in the object store");
                self.restore_manifest(&key, &dir)?;
                open(key)?
            }
            Err(e) => return Err(AdminError::Tiering(e)),
        };
        Ok(Arc::new(TieredPartition::new(log, Arc::new(remote))))
    }

    /// The metadata directory.
    pub(crate) fn meta(&self) -> &MetaStore {
        &self.meta
    }

    /// The data directory.
    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Keeps the topics `keep` accepts and returns the others, removed
    /// from the registry and its file. Blocking.
    pub(crate) fn retain_topics(
        &self,
        keep: impl Fn(&Topic) -> bool,
    ) -> Result<Vec<Arc<Topic>>, AdminError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<String> = map
            .values()
            .filter(|t| !keep(t))
            .map(|t| t.name.clone())
            .collect();
        if gone.is_empty() {
            return Ok(Vec::new());
        }
        let removed: Vec<Arc<Topic>> = gone.iter().filter_map(|n| map.remove(n)).collect();
        self.save(&map)?;
        Ok(removed)
    }

    /// A read replica takes the catalogue's topics: new ones and new
    /// partitions (their directories prepared from the bucket) are opened,
    /// changed configs applied. Blocking.
    pub(crate) fn install_replica_topics(
        &self,
        catalogue: &strata_tiering::Catalogue,
    ) -> Result<(), AdminError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.topics();
        let mut next = BTreeMap::new();
        for t in &catalogue.topics {
            let have = current.iter().find(|h| h.name == t.name && h.id == t.id);
            let mut partitions = have.map(|h| h.partitions.clone()).unwrap_or_default();
            let unchanged = have.is_some_and(|h| {
                h.configs == t.configs && h.partitions.len() as u32 == t.partitions
            });
            if unchanged {
                next.insert(t.name.clone(), Arc::clone(have.expect("present")));
                continue;
            }
            for p in partitions.len()..t.partitions as usize {
                partitions.push(self.open_partition(&t.name, t.id, &t.configs, p, true)?);
            }
            let log_config = self.config().log_config(&t.configs);
            for p in &partitions {
                p.log().set_config(log_config.clone());
            }
            next.insert(
                t.name.clone(),
                Arc::new(Topic {
                    counters: have
                        .map(|h| h.counters.clone())
                        .unwrap_or_else(|| TopicCounters::new(&t.name)),
                    name: t.name.clone(),
                    id: t.id,
                    configs: t.configs.clone(),
                    partitions,
                }),
            );
        }
        let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
        *map = next;
        self.save(&map)
    }

    /// Refuses a change of topics (or of their records) on a read replica,
    /// or on a primary another broker fenced.
    pub(crate) fn writable_topics(&self) -> Result<(), AdminError> {
        if self.bucket.is_read_replica() {
            return Err(AdminError::ReadReplicaTopic(self.remote_store.url.clone()));
        }
        if !self.bucket.writes() {
            return Err(AdminError::Fenced(self.remote_store.url.clone()));
        }
        Ok(())
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
        if self.bucket.is_read_replica() {
            return Err(AdminError::ReadReplicaCluster(
                self.remote_store.url.clone(),
            ));
        }
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
        apply_store_quotas(&self.remote_store, &next);
        for topic in self.topics() {
            let log_config = next.log_config(&topic.configs);
            for p in &topic.partitions {
                p.log().set_config(log_config.clone());
            }
        }
        self.bucket.mark_dirty();
        info!(layer = ?layer, configs = ?next.dynamic(layer), "changed dynamic broker configs");
        Ok(())
    }

    /// Replaces an unreadable local manifest with the store's copy, or
    /// explains why the partition cannot be opened. Blocking; called from
    /// start-up, which runs on the runtime's blocking threads.
    fn restore_manifest(&self, key: &PartitionKey, dir: &Path) -> Result<(), AdminError> {
        let fail = |reason: String| {
            AdminError::ManifestUnreadable(format!(
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
            Ok(Some(_)) => {
                info!(partition = %key.dir(), "restored the remote manifest from the object store");
                Ok(())
            }
            Ok(None) => Err(fail("the object store has no copy".into())),
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
        self.writable_topics()?;
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
        self.bucket.mark_dirty();
        info!(topic = name, partitions, topic_id = %id, "created topic");
        Ok(topic)
    }

    /// Deletes a topic and its data in both tiers. Blocking; the remote
    /// objects are deleted by a background task that retries until the
    /// store has let them go, and resumes after a restart: the deletion is
    /// recorded in `meta/deleting.json` in the same step as the topic
    /// leaves `meta/topics.json`.
    pub fn delete_topic(self: &Arc<Self>, name: &str) -> Result<Uuid, AdminError> {
        self.writable_topics()?;
        if !self.config().bool("delete.topic.enable") {
            return Err(AdminError::DeletionDisabled);
        }
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = {
            let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
            let topic = map.remove(name).ok_or(AdminError::UnknownTopic)?;
            let mut deleting = self.meta.load_deleting()?;
            deleting.push(topic.record());
            // The deletion is recorded before the topic goes, so that a
            // crash between the two leaves a deletion to finish rather than
            // objects nobody removes.
            let saved = self
                .meta
                .save_deleting(deleting)
                .map_err(AdminError::from)
                .and_then(|()| self.save(&map));
            if let Err(e) = saved {
                map.insert(name.into(), topic);
                return Err(e);
            }
            topic
        };
        self.bucket.mark_dirty();
        // The topic is gone from the metadata; its directories are renamed
        // before removal so that a crash midway leaves only `-delete`
        // directories, which the next start removes.
        self.remove_local_partitions(&topic);
        self.spawn_remote_deletion(topic.record());
        self.groups.forget_topic(name);
        // Fetches parked on the topic answer now that it is gone.
        for p in &topic.partitions {
            p.wake_waiters();
        }
        info!(topic = name, "deleted topic");
        Ok(topic.id)
    }

    /// Removes a topic's local partition directories (renamed to
    /// `*-delete` first). Blocking.
    pub(crate) fn remove_local_partitions(&self, topic: &Topic) {
        for p in &topic.partitions {
            let log = p.log();
            let mut doomed = log.dir().as_os_str().to_owned();
            doomed.push(format!(".{}-delete", Uuid::new_v4().simple()));
            let doomed = PathBuf::from(doomed);
            if let Err(e) = fs::rename(log.dir(), &doomed) {
                warn!(dir = %log.dir().display(), error = %e, "could not rename a deleted partition");
            }
            if let Err(e) = log.delete() {
                warn!(error = %e, "could not mark a deleted partition");
            }
            if let Err(e) = fs::remove_dir_all(&doomed) {
                warn!(dir = %doomed.display(), error = %e, "could not remove a deleted partition");
            }
        }
    }

    /// Forgets a finished deletion of a topic's objects. Blocking.
    pub(crate) fn forget_deletion(&self, id: Uuid) -> Result<(), AdminError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let mut deleting = self.meta.load_deleting()?;
        deleting.retain(|t| t.id != id);
        self.meta.save_deleting(deleting)?;
        self.bucket.mark_dirty();
        Ok(())
    }

    /// Raises a topic's partition count. Blocking.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        self.writable_topics()?;
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
        self.bucket.mark_dirty();
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
        self.writable_topics()?;
        self.config().validate_topic_configs(&configs)?;
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self.topic(name).ok_or(AdminError::UnknownTopic)?;
        // A tiered topic's history is in the cold tier, which compaction
        // does not reach: Kafka refuses the change, and so does Strata.
        let config = self.config();
        if config.has_policy(&configs, "compact") && config.tier_policy(&topic.configs).remote {
            return Err(crate::config::ConfigError::BadValue {
                key: "cleanup.policy".into(),
                value: config.topic_value("cleanup.policy", &configs).0,
                reason: "Remote log storage is unsupported for the compacted topics".into(),
            }
            .into());
        }
        if validate_only {
            return Ok(());
        }
        let log_config = self.config().log_config(&configs);
        for p in &topic.partitions {
            p.log().set_config(log_config.clone());
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
        self.bucket.mark_dirty();
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
    /// A new producer id, for the transaction coordinator. Blocking.
    pub fn new_producer_id(&self) -> Result<i64, AdminError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self.meta.next_producer_id()?)
    }

    pub fn init_producer_id(&self, current: Option<(i64, i16)>) -> Result<(i64, i16), AdminError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        match current {
            Some((id, epoch)) if id >= 0 && (0..i16::MAX - 1).contains(&epoch) => {
                Ok((id, epoch + 1))
            }
            _ => Ok((self.meta.next_producer_id()?, 0)),
        }
    }

    /// Flushes and seals every log and records the clean shutdown. Blocking.
    /// Whether [`Broker::shutdown`] has begun.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn shutdown(&self) -> Result<(), AdminError> {
        self.shut_down
            .store(true, std::sync::atomic::Ordering::Release);
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        for topic in self.topics() {
            for p in &topic.partitions {
                p.log().close()?;
            }
        }
        self.groups.close()?;
        self.txns.close()?;
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
