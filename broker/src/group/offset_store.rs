//! The durable store of committed offsets: the internal log
//! `__consumer_offsets-0` (see FORMAT.md), one record per partition with key
//! `{"g","t","p"}` and value `{"offset","leader_epoch","metadata"}` as JSON,
//! a null value for a deletion.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strata_storage::{Offset, StorageError};

use crate::internal_log::KeyedLog;

/// The log's directory name in the data directory.
const NAME: &str = "__consumer_offsets-0";

/// A partition's committed offset, as OffsetCommit gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// Stored as the plain JSON number it has always been.
    pub offset: Offset,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct OffsetKey {
    g: String,
    t: String,
    p: i32,
    /// Set for an offset committed inside a transaction of this producer
    /// id and not yet committed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pid: Option<i64>,
}

/// Committed offsets by (group, topic, partition).
pub type Offsets = BTreeMap<(String, String, i32), Committed>;

/// Offsets of open transactions by (group, producer id, topic, partition).
pub type PendingOffsets = BTreeMap<(String, i64, String, i32), Committed>;

/// May be called from any thread; every method does blocking file I/O.
pub struct OffsetStore {
    log: KeyedLog,
}

impl OffsetStore {
    /// Opens the store in `data_dir` and replays it. Blocking.
    pub fn open(
        data_dir: &Path,
        clean: bool,
        segment_bytes: u64,
    ) -> Result<(OffsetStore, Offsets, PendingOffsets), StorageError> {
        let (log, latest) =
            KeyedLog::open(data_dir, NAME, "committed offsets", clean, segment_bytes)?;
        let mut offsets = Offsets::new();
        let mut pending = PendingOffsets::new();
        for (k, v) in latest {
            // A record this build cannot read is left out, as a deletion.
            let (Ok(key), Ok(c)) = (
                serde_json::from_slice::<OffsetKey>(&k),
                serde_json::from_slice::<Committed>(&v),
            ) else {
                continue;
            };
            match key.pid {
                Some(pid) => pending.insert((key.g, pid, key.t, key.p), c),
                None => offsets.insert((key.g, key.t, key.p), c),
            };
        }
        Ok((OffsetStore { log }, offsets, pending))
    }

    fn key(group: &str, topic: &str, partition: i32) -> Bytes {
        Self::key_of(group, topic, partition, None)
    }

    fn key_of(group: &str, topic: &str, partition: i32, pid: Option<i64>) -> Bytes {
        let key = OffsetKey {
            g: group.into(),
            t: topic.into(),
            p: partition,
            pid,
        };
        Bytes::from(serde_json::to_vec(&key).expect("serializable"))
    }

    /// One record per offset, keyed for `pid`'s transaction or, without
    /// one, as the group's committed offset.
    fn records(
        group: &str,
        offsets: &[(String, i32, Committed)],
        pid: Option<i64>,
    ) -> Vec<(Bytes, Option<Bytes>)> {
        offsets
            .iter()
            .map(|(t, p, c)| {
                let value = Bytes::from(serde_json::to_vec(c).expect("serializable"));
                (Self::key_of(group, t, *p, pid), Some(value))
            })
            .collect()
    }

    /// Stores offsets committed inside a transaction of `producer_id`,
    /// apart from the group's committed ones. Blocking.
    pub fn append_pending(
        &self,
        group: &str,
        producer_id: i64,
        offsets: &[(String, i32, Committed)],
    ) -> Result<bool, StorageError> {
        self.log
            .append(&Self::records(group, offsets, Some(producer_id)))
    }

    /// Ends a transaction's offsets in one append: on commit they become
    /// the group's committed offsets; either way the pending records go.
    /// Blocking.
    pub fn complete_pending(
        &self,
        group: &str,
        producer_id: i64,
        offsets: &[(String, i32, Committed)],
        commit: bool,
    ) -> Result<bool, StorageError> {
        let mut records = if commit {
            Self::records(group, offsets, None)
        } else {
            Vec::new()
        };
        for (t, p, _) in offsets {
            records.push((Self::key_of(group, t, *p, Some(producer_id)), None));
        }
        self.log.append(&records)
    }

    /// Stores a group's commit durably; returns whether a segment was
    /// sealed, to be fsynced with [`OffsetStore::flush_sealed`]. Blocking.
    pub fn append(
        &self,
        group: &str,
        offsets: &[(String, i32, Committed)],
    ) -> Result<bool, StorageError> {
        self.log.append(&Self::records(group, offsets, None))
    }

    /// Deletes a group's offsets for these partitions durably. Blocking.
    pub fn delete(&self, group: &str, keys: &[(String, i32)]) -> Result<(), StorageError> {
        let records: Vec<(Bytes, Option<Bytes>)> = keys
            .iter()
            .map(|(t, p)| (Self::key(group, t, *p), None))
            .collect();
        if self.log.append(&records)? {
            self.log.flush_sealed()?;
        }
        Ok(())
    }

    /// fsyncs the segments appends have sealed. Blocking.
    pub fn flush_sealed(&self) -> Result<(), StorageError> {
        self.log.flush_sealed()
    }

    /// The offsets log, for the cleaner.
    pub fn log(&self) -> &std::sync::Arc<strata_storage::Log> {
        self.log.log()
    }

    /// Flushes and seals the log for a clean shutdown. Blocking.
    pub fn close(&self) -> Result<(), StorageError> {
        self.log.close()
    }
}
