//! The durable store of transaction state: the internal log
//! `__transaction_state-0` (see FORMAT.md), one record per transactional id
//! with the id as key and its state as JSON, a null value when the id is
//! forgotten. Replayed at start, compacted by the log cleaner.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use strata_storage::StorageError;

use super::state::TxnMeta;
use crate::internal_log::KeyedLog;

const NAME: &str = "__transaction_state-0";

/// May be called from any thread; every method does blocking file I/O.
pub struct TxnStore {
    log: KeyedLog,
}

impl TxnStore {
    /// Opens the store in `data_dir` and replays it. Blocking.
    pub fn open(
        data_dir: &Path,
        clean: bool,
        segment_bytes: u64,
    ) -> Result<(TxnStore, HashMap<String, TxnMeta>), StorageError> {
        let (log, latest) =
            KeyedLog::open(data_dir, NAME, "transaction state", clean, segment_bytes)?;
        let mut txns = HashMap::new();
        for (k, v) in latest {
            // A record this build cannot read is left out, as a deletion.
            let (Ok(id), Ok(meta)) = (
                String::from_utf8(k.to_vec()),
                serde_json::from_slice::<TxnMeta>(&v),
            ) else {
                continue;
            };
            txns.insert(id, meta);
        }
        Ok((TxnStore { log }, txns))
    }

    /// Stores the state of `id` durably (`None` forgets it). Blocking.
    pub fn put(&self, id: &str, meta: Option<&TxnMeta>) -> Result<(), StorageError> {
        let value = meta.map(|m| Bytes::from(serde_json::to_vec(m).expect("serializable")));
        if self.log.append(&[(Bytes::from(id.to_string()), value)])? {
            self.log.flush_sealed()?;
        }
        Ok(())
    }

    /// The log, for the cleaner.
    pub fn log(&self) -> &std::sync::Arc<strata_storage::Log> {
        self.log.log()
    }

    pub fn close(&self) -> Result<(), StorageError> {
        self.log.close()
    }
}
