//! An internal log of keyed records, as Kafka keeps its coordinators' state
//! in `__consumer_offsets` and `__transaction_state`: a `storage::Log` in the
//! data directory whose records have a key and a value (none for a
//! deletion), appended durably before a change is acknowledged, replayed into
//! the latest value per key at start, and rewritten with only the live keys
//! once most of it is superseded. The committed-offsets store is built on it;
//! the transaction coordinator will be too. FORMAT.md describes the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strata_storage::{Log, LogConfig, Offset, StorageError};
use tracing::info;

use crate::clock::now_ms;

/// The latest value of every live key.
pub type Latest = BTreeMap<Bytes, Bytes>;

/// A keyed internal log in `DATA_DIR/<name>`. May be called from any thread
/// (appends are serialized by the log); every method does blocking file
/// I/O, so async callers run it on a blocking thread.
pub struct KeyedLog {
    log: Log,
}

impl KeyedLog {
    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 64 * 1024 * 1024,
            retention_ms: -1,
            segment_index_bytes: 1024 * 1024,
            ..LogConfig::default()
        }
    }

    /// Opens (or creates) the log `name` in `data_dir` (`what` names its
    /// contents in log messages, "committed offsets" say), replays it and
    /// returns it with the latest value of every live key. When more than
    /// `compact_factor` times as many records as live keys are stored (and
    /// over a thousand), the log is first rewritten with only the live
    /// ones. Blocking.
    pub fn open(
        data_dir: &Path,
        name: &str,
        what: &str,
        clean: bool,
        compact_factor: usize,
    ) -> Result<(KeyedLog, Latest), StorageError> {
        let dir = data_dir.join(name);
        let compacted = data_dir.join(format!("{name}.compacted"));
        let old = data_dir.join(format!("{name}.old"));
        // A compaction that was renamed into place but not cleaned up.
        if compacted.exists() && !dir.exists() {
            let _ = std::fs::rename(&compacted, &dir);
        }
        let _ = std::fs::remove_dir_all(&compacted);
        // The previous log of a compaction that stopped before removing it.
        let _ = std::fs::remove_dir_all(&old);
        let log = KeyedLog {
            log: Log::open(&dir, Self::config(), clean, now_ms())?,
        };
        let (latest, records) = log.replay()?;
        if records > 1000 && records > compact_factor * latest.len() {
            // Crash-safe order: write the live keys to a new log, close
            // both, move the old log aside, move the new one in, and only
            // then remove the old one. A crash at any step leaves either
            // the old log or the complete new one at `dir`.
            let fresh = KeyedLog {
                log: Log::open(&compacted, Self::config(), true, now_ms())?,
            };
            let live: Vec<(Bytes, Option<Bytes>)> = latest
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
            for chunk in live.chunks(1000) {
                fresh.append(chunk)?;
            }
            fresh.log.close()?;
            log.log.close()?;
            rename(&dir, &old)?;
            rename(&compacted, &dir)?;
            let _ = std::fs::remove_dir_all(&old);
            info!(
                log = name,
                records,
                live = latest.len(),
                "compacted the {what} log"
            );
            let log = KeyedLog {
                log: Log::open(&dir, Self::config(), true, now_ms())?,
            };
            return Ok((log, latest));
        }
        Ok((log, latest))
    }

    /// The latest value per key and the number of records read.
    fn replay(&self) -> Result<(Latest, usize), StorageError> {
        let mut latest = Latest::new();
        let mut records = 0;
        let mut at = self.log.log_start_offset();
        let end = self.log.log_end_offset();
        while at < end {
            let data = self.log.read(at, 16 * 1024 * 1024, true)?;
            let mut buf = data.records.clone();
            let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap_or_default();
            let mut next = at;
            for set in sets {
                for r in set.records {
                    next = Offset(r.offset + 1);
                    records += 1;
                    let Some(key) = r.key else { continue };
                    match r.value {
                        Some(v) => {
                            latest.insert(key, v);
                        }
                        None => {
                            latest.remove(&key);
                        }
                    }
                }
            }
            if next <= at {
                break;
            }
            at = next;
        }
        Ok((latest, records))
    }

    /// Appends one batch of (key, value) records, a `None` value deleting
    /// its key. The records are in the log file (which survives a crash of
    /// the process) when this returns. Returns whether the append sealed a
    /// segment, whose fsync the caller then asks for with
    /// [`KeyedLog::flush_sealed`] (outside any lock it holds). Blocking.
    pub fn append(&self, records: &[(Bytes, Option<Bytes>)]) -> Result<bool, StorageError> {
        if records.is_empty() {
            return Ok(false);
        }
        let now = now_ms();
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp: now,
                key: Some(key.clone()),
                value: value.clone(),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("internal records encode");
        Ok(self.log.append(&mut buf, now)?.rolled)
    }

    /// fsyncs the segments appends have sealed. Blocking.
    pub fn flush_sealed(&self) -> Result<(), StorageError> {
        self.log.flush_sealed()
    }

    /// Flushes and seals the log for a clean shutdown. Blocking.
    pub fn close(&self) -> Result<(), StorageError> {
        self.log.close()
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), StorageError> {
    std::fs::rename(from, to).map_err(|source| StorageError::Io {
        op: "rename",
        path: PathBuf::from(from),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    #[test]
    fn replays_the_latest_value_per_key_and_compacts() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, latest) = KeyedLog::open(dir.path(), "__test-0", "test", true, 4).unwrap();
            assert!(latest.is_empty());
            log.append(&[(b("a"), Some(b("1"))), (b("b"), Some(b("1")))])
                .unwrap();
            for i in 0..1500 {
                log.append(&[(b("a"), Some(b(&i.to_string())))]).unwrap();
            }
            log.append(&[(b("b"), None)]).unwrap();
            log.close().unwrap();
        }
        // 1503 records for one live key: the log is compacted at open.
        let (log, latest) = KeyedLog::open(dir.path(), "__test-0", "test", true, 4).unwrap();
        assert_eq!(latest, Latest::from([(b("a"), b("1499"))]));
        assert_eq!(log.replay().unwrap().1, 1, "only the live key is left");
        assert!(!dir.path().join("__test-0.old").exists());
        assert!(!dir.path().join("__test-0.compacted").exists());
    }
}
