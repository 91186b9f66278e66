//! An internal log of keyed records, as Kafka keeps its coordinators' state
//! in `__consumer_offsets` and `__transaction_state`: a `storage::Log` in the
//! data directory whose records have a key and a value (none for a
//! deletion), appended durably before a change is acknowledged, and replayed
//! into the latest value per key at start. It is a compacted log: the
//! broker's log cleaner keeps only the latest record of every key, as for
//! any compacted topic, so that replay stays short. The committed-offsets
//! store is built on it; the transaction coordinator will be too. FORMAT.md
//! describes the files.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

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
    log: Arc<Log>,
}

impl KeyedLog {
    fn config(segment_bytes: u64) -> LogConfig {
        LogConfig {
            segment_bytes,
            retention_ms: -1,
            segment_index_bytes: 1024 * 1024,
            compact: true,
            ..LogConfig::default()
        }
    }

    /// Opens (or creates) the log `name` in `data_dir` (`what` names its
    /// contents in log messages, "committed offsets" say), with segments of
    /// `segment_bytes`, replays it and returns it with the latest value of
    /// every live key. Blocking.
    pub fn open(
        data_dir: &Path,
        name: &str,
        what: &str,
        clean: bool,
        segment_bytes: u64,
    ) -> Result<(KeyedLog, Latest), StorageError> {
        let dir = data_dir.join(name);
        // Earlier versions compacted the log at start into `.compacted` and
        // moved the old one to `.old`: finish or discard what a crash left.
        let compacted = data_dir.join(format!("{name}.compacted"));
        if compacted.exists() && !dir.exists() {
            let _ = std::fs::rename(&compacted, &dir);
        }
        let _ = std::fs::remove_dir_all(&compacted);
        let _ = std::fs::remove_dir_all(data_dir.join(format!("{name}.old")));
        let log = KeyedLog {
            log: Arc::new(Log::open(
                &dir,
                Self::config(segment_bytes),
                clean,
                now_ms(),
            )?),
        };
        let (latest, records) = log.replay()?;
        info!(
            log = name,
            records,
            live = latest.len(),
            "replayed the {what} log"
        );
        Ok((log, latest))
    }

    /// The log itself, for the cleaner.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
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

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    #[test]
    fn replays_the_latest_value_per_key_and_is_compacted_by_the_cleaner() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, latest) = KeyedLog::open(dir.path(), "__test-0", "test", true, 4096).unwrap();
            assert!(latest.is_empty());
            log.append(&[(b("a"), Some(b("1"))), (b("b"), Some(b("1")))])
                .unwrap();
            for i in 0..1500 {
                log.append(&[(b("a"), Some(b(&i.to_string())))]).unwrap();
            }
            log.append(&[(b("b"), None)]).unwrap();
            let stats = log
                .log()
                .clean(1 << 20, now_ms(), &mut |_| {})
                .unwrap()
                .unwrap();
            assert!(stats.records_removed > 1000);
            log.close().unwrap();
        }
        let (log, latest) = KeyedLog::open(dir.path(), "__test-0", "test", true, 4096).unwrap();
        assert_eq!(latest, Latest::from([(b("a"), b("1499"))]));
        assert!(log.replay().unwrap().1 < 200, "superseded records are gone");
    }
}
