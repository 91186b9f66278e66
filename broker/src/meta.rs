//! Durable cluster and topic metadata: `DATA_DIR/meta/topics.json`,
//! `DATA_DIR/meta/cluster.json` and `DATA_DIR/meta/broker-configs.json`,
//! replaced atomically (write a temporary
//! file, fsync, rename, fsync the directory). See FORMAT.md.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid metadata: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// One topic as persisted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicRecord {
    pub name: String,
    pub id: Uuid,
    pub partitions: u32,
    /// Topic-level config overrides, by Kafka name.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct TopicsFile {
    format_version: u32,
    topics: Vec<TopicRecord>,
}

/// Config values by Kafka name.
pub type Configs = BTreeMap<String, String>;

/// `broker-configs.json`: the dynamic broker configs of both layers.
#[derive(Serialize, Deserialize)]
struct BrokerConfigsFile {
    format_version: u32,
    #[serde(default)]
    cluster_default: Configs,
    #[serde(default)]
    this_broker: Configs,
}

#[derive(Serialize, Deserialize)]
struct ProducerIdCounter {
    format_version: u32,
    next: i64,
}

#[derive(Serialize, Deserialize)]
struct ClusterFile {
    format_version: u32,
    cluster_id: String,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MetaError {
    let path = path.to_owned();
    move |source| MetaError::Io { op, path, source }
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), MetaError> {
    let dir = path.parent().expect("metadata files live in a directory");
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    let tmp = path.with_extension("json.tmp");
    let mut f = fs::File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(bytes).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    fs::rename(&tmp, path).map_err(io("rename", path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync", dir))
}

pub(crate) fn read_json<T: for<'a> Deserialize<'a>>(path: &Path) -> Result<Option<T>, MetaError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| MetaError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", path)(e)),
    }
}

/// The metadata directory. Callers serialize writes (the broker holds its
/// topics lock while saving).
pub struct MetaStore {
    dir: PathBuf,
}

impl MetaStore {
    pub fn new(data_dir: &Path) -> Self {
        MetaStore {
            dir: data_dir.join("meta"),
        }
    }

    fn check_version(path: &Path, version: u32) -> Result<(), MetaError> {
        if version != FORMAT_VERSION {
            return Err(MetaError::Corrupt {
                path: path.to_owned(),
                reason: format!("unsupported format_version {version}"),
            });
        }
        Ok(())
    }

    /// The cluster id, created and persisted on first start.
    pub fn cluster_id(&self) -> Result<String, MetaError> {
        let path = self.dir.join("cluster.json");
        if let Some(f) = read_json::<ClusterFile>(&path)? {
            Self::check_version(&path, f.format_version)?;
            return Ok(f.cluster_id);
        }
        let id = Uuid::new_v4().simple().to_string();
        self.save_cluster_id(&id)?;
        Ok(id)
    }

    /// A list of topics in the `topics.json` format, empty without a file.
    fn load_topic_list(&self, name: &str) -> Result<Vec<TopicRecord>, MetaError> {
        let path = self.dir.join(name);
        match read_json::<TopicsFile>(&path)? {
            Some(f) => {
                Self::check_version(&path, f.format_version)?;
                Ok(f.topics)
            }
            None => Ok(Vec::new()),
        }
    }

    fn save_topic_list(&self, name: &str, topics: Vec<TopicRecord>) -> Result<(), MetaError> {
        let file = TopicsFile {
            format_version: FORMAT_VERSION,
            topics,
        };
        write_atomically(
            &self.dir.join(name),
            &serde_json::to_vec_pretty(&file).expect("serializable"),
        )
    }

    pub fn load_topics(&self) -> Result<Vec<TopicRecord>, MetaError> {
        self.load_topic_list("topics.json")
    }

    pub fn save_topics(&self, topics: Vec<TopicRecord>) -> Result<(), MetaError> {
        self.save_topic_list("topics.json", topics)
    }

    /// A new producer id, unique across restarts: the counter in
    /// `producer_ids.json` is persisted before the id is handed out.
    /// Callers serialize calls.
    pub fn next_producer_id(&self) -> Result<i64, MetaError> {
        let next = self.peek_producer_id()?;
        self.set_next_producer_id(next + 1)?;
        Ok(next)
    }

    /// The producer id the next [`MetaStore::next_producer_id`] hands out.
    pub fn peek_producer_id(&self) -> Result<i64, MetaError> {
        let path = self.dir.join("producer_ids.json");
        Ok(read_json::<ProducerIdCounter>(&path)?.map_or(0, |c| c.next))
    }

    /// Sets the producer id counter (a restore continues past the ids the
    /// lost disk may have handed out).
    pub fn set_next_producer_id(&self, next: i64) -> Result<(), MetaError> {
        let path = self.dir.join("producer_ids.json");
        let file = ProducerIdCounter {
            format_version: FORMAT_VERSION,
            next,
        };
        write_atomically(&path, &serde_json::to_vec(&file).expect("serializable"))
    }

    /// Whether the data directory has never been started in: no cluster id.
    pub fn is_new(&self) -> bool {
        !self.dir.join("cluster.json").exists()
    }

    /// Records the cluster id: a new cluster's at its first start, or a
    /// restored cluster's before it starts.
    pub fn save_cluster_id(&self, cluster_id: &str) -> Result<(), MetaError> {
        let file = ClusterFile {
            format_version: FORMAT_VERSION,
            cluster_id: cluster_id.into(),
        };
        write_atomically(
            &self.dir.join("cluster.json"),
            &serde_json::to_vec_pretty(&file).expect("serializable"),
        )
    }

    /// This data directory's broker instance id, created on first use: it
    /// tells the bucket's lease and catalogue which broker wrote them, and
    /// a restarted broker recognises its own lease.
    pub fn instance_id(&self) -> Result<Uuid, MetaError> {
        #[derive(Serialize, Deserialize)]
        struct InstanceFile {
            format_version: u32,
            instance: Uuid,
        }
        let path = self.dir.join("instance.json");
        if let Some(f) = read_json::<InstanceFile>(&path)? {
            Self::check_version(&path, f.format_version)?;
            return Ok(f.instance);
        }
        let instance = Uuid::new_v4();
        let file = InstanceFile {
            format_version: FORMAT_VERSION,
            instance,
        };
        write_atomically(
            &path,
            &serde_json::to_vec_pretty(&file).expect("serializable"),
        )?;
        Ok(instance)
    }

    /// Deleted topics whose objects in the store are still being removed.
    pub fn load_deleting(&self) -> Result<Vec<TopicRecord>, MetaError> {
        self.load_topic_list("deleting.json")
    }

    pub fn save_deleting(&self, topics: Vec<TopicRecord>) -> Result<(), MetaError> {
        self.save_topic_list("deleting.json", topics)
    }

    /// The dynamic broker configs: (cluster-wide default, this broker),
    /// empty when none were ever set.
    pub fn load_broker_configs(&self) -> Result<(Configs, Configs), MetaError> {
        let path = self.dir.join("broker-configs.json");
        match read_json::<BrokerConfigsFile>(&path)? {
            Some(f) => {
                Self::check_version(&path, f.format_version)?;
                Ok((f.cluster_default, f.this_broker))
            }
            None => Ok(Default::default()),
        }
    }

    pub fn save_broker_configs(
        &self,
        cluster_default: &Configs,
        this_broker: &Configs,
    ) -> Result<(), MetaError> {
        let file = BrokerConfigsFile {
            format_version: FORMAT_VERSION,
            cluster_default: cluster_default.clone(),
            this_broker: this_broker.clone(),
        };
        write_atomically(
            &self.dir.join("broker-configs.json"),
            &serde_json::to_vec_pretty(&file).expect("serializable"),
        )
    }

    fn clean_marker(&self) -> PathBuf {
        self.dir.join("clean_shutdown")
    }

    /// Whether the last run ended with a clean shutdown; removes the marker
    /// so that a crash of this run is noticed next time.
    pub fn take_clean_shutdown(&self) -> Result<bool, MetaError> {
        let marker = self.clean_marker();
        match fs::remove_file(&marker) {
            Ok(()) => {
                fs::File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io("fsync", &self.dir))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("remove", &marker)(e)),
        }
    }

    pub fn mark_clean_shutdown(&self) -> Result<(), MetaError> {
        write_atomically(&self.clean_marker(), b"")
    }
}
