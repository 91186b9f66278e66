//! The broker's shared state: configuration, topics and their partition
//! logs, and the wake-up signal for long-polling fetches.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use strata_storage::Log;
use tokio::sync::Notify;
use tracing::{info, warn};
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::error::AdminError;
use crate::meta::{MetaError, MetaStore, TopicRecord};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A topic as it is now. Immutable: changes replace the whole `Arc<Topic>`
/// in the broker's map, sharing the partition logs that stay.
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<Arc<Log>>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<Log>> {
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
    pub config: BrokerConfig,
    pub node_id: i32,
    pub cluster_id: String,
    pub advertised_host: String,
    pub advertised_port: i32,
    data_dir: PathBuf,
    meta: MetaStore,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    admin: Mutex<()>,
    /// Woken after every append so that long-polling fetches re-check.
    pub appended: Notify,
}

fn partition_dir(data_dir: &Path, topic: &str, partition: usize) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

impl Broker {
    /// Opens the data directory: metadata, then every partition's log,
    /// recovering them if the last shutdown was not clean. Blocking.
    pub fn open(
        config: BrokerConfig,
        data_dir: &Path,
        advertised_host: String,
        advertised_port: i32,
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
        let mut topics = BTreeMap::new();
        let now = now_ms();
        for rec in meta.load_topics()? {
            let log_config = config.log_config(&rec.configs);
            let mut partitions = Vec::new();
            for p in 0..rec.partitions as usize {
                let log = Log::open(
                    &partition_dir(data_dir, &rec.name, p),
                    log_config.clone(),
                    clean,
                    now,
                )?;
                partitions.push(Arc::new(log));
            }
            topics.insert(
                rec.name.clone(),
                Arc::new(Topic {
                    name: rec.name,
                    id: rec.id,
                    configs: rec.configs,
                    partitions,
                }),
            );
        }
        info!(topics = topics.len(), cluster_id = %cluster_id, "loaded topics");
        Ok(Broker {
            node_id: config.i64("node.id") as i32,
            config,
            cluster_id,
            advertised_host,
            advertised_port,
            data_dir: data_dir.to_owned(),
            meta,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            appended: Notify::new(),
        })
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
            self.config.i64("num.partitions") as i32
        } else {
            partitions
        };
        if partitions <= 0 {
            return Err(AdminError::InvalidPartitions(format!(
                "Number of partitions must be larger than 0, got {partitions}."
            )));
        }
        let rf = if replication_factor == -1 {
            self.config.i64("default.replication.factor") as i16
        } else {
            replication_factor
        };
        if rf != 1 {
            return Err(AdminError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only 1 broker(s) are registered."
            )));
        }
        self.config.validate_topic_configs(&configs)?;
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        if self.topic(name).is_some() {
            return Err(AdminError::TopicExists(name.to_string()));
        }
        let log_config = self.config.log_config(&configs);
        let id = Uuid::new_v4();
        if validate_only {
            return Ok(Arc::new(Topic {
                name: name.into(),
                id,
                configs,
                partitions: Vec::new(),
            }));
        }
        let now = now_ms();
        let mut logs = Vec::new();
        for p in 0..partitions as usize {
            logs.push(Arc::new(Log::open(
                &partition_dir(&self.data_dir, name, p),
                log_config.clone(),
                true,
                now,
            )?));
        }
        let topic = Arc::new(Topic {
            name: name.into(),
            id,
            configs,
            partitions: logs,
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

    /// Deletes a topic and its data. Blocking.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, AdminError> {
        if !self.config.bool("delete.topic.enable") {
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
        for log in &topic.partitions {
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
        let log_config = self.config.log_config(&topic.configs);
        let mut partitions = topic.partitions.clone();
        let now = now_ms();
        for p in current as usize..count as usize {
            partitions.push(Arc::new(Log::open(
                &partition_dir(&self.data_dir, name, p),
                log_config.clone(),
                true,
                now,
            )?));
        }
        let new = Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            configs: topic.configs.clone(),
            partitions,
        });
        let mut map = self.topics.write().unwrap_or_else(|p| p.into_inner());
        map.insert(name.into(), new);
        if let Err(e) = self.save(&map) {
            map.insert(name.into(), topic);
            return Err(e);
        }
        info!(topic = name, partitions = count, "added partitions");
        Ok(())
    }

    /// Runs retention on every partition. Blocking.
    pub fn enforce_retention(&self) {
        let now = now_ms();
        for topic in self.topics() {
            for (p, log) in topic.partitions.iter().enumerate() {
                if let Err(e) = log.enforce_retention(now) {
                    warn!(topic = %topic.name, partition = p, error = %e, "retention failed");
                }
            }
        }
    }

    /// fsyncs partitions whose `flush.ms` has passed. Blocking.
    pub fn flush_due(&self) {
        let now = now_ms();
        for topic in self.topics() {
            for (p, log) in topic.partitions.iter().enumerate() {
                if let Err(e) = log.maybe_flush(now) {
                    warn!(topic = %topic.name, partition = p, error = %e, "flush failed");
                }
            }
        }
    }

    /// Flushes and seals every log and records the clean shutdown. Blocking.
    pub fn shutdown(&self) -> Result<(), AdminError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        for topic in self.topics() {
            for log in &topic.partitions {
                log.close()?;
            }
        }
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
