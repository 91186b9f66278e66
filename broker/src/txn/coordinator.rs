//! The transaction coordinator of every transactional id (Kafka's
//! `TransactionCoordinator`): InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn and EndTxn decided by the pure state in `state.rs`,
//! every new state stored in the transaction log before it is acted on,
//! the markers written through [`Participants`], and transactions open
//! past their timeout aborted.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use kafka_protocol::ResponseError;
use strata_storage::{Marker, StorageError};
use tracing::{info, warn};

use super::state::{Init, TxnMeta, TxnState};
use super::txn_store::TxnStore;

/// The partitions and groups a transaction writes to, as the coordinator
/// sees them: the broker's logs and its group coordinator.
pub trait Participants {
    /// Appends a marker of the producer to one partition. A partition that
    /// no longer exists (its topic was deleted) is not an error.
    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        marker: Marker,
    ) -> Result<(), StorageError>;
    /// Makes the producer's pending offsets of `group` committed offsets,
    /// or drops them.
    fn complete_offsets(
        &self,
        group: &str,
        producer_id: i64,
        commit: bool,
    ) -> Result<(), StorageError>;
}

/// The settings the coordinator reads from the broker's configuration.
#[derive(Copy, Clone, Debug)]
pub struct TxnSettings {
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i64,
    /// `transactional.id.expiration.ms`.
    pub expiration_ms: i64,
    /// `transaction.state.log.segment.bytes`.
    pub segment_bytes: u64,
}

/// One transactional id as DescribeTransactions and ListTransactions show it.
#[derive(Clone, Debug)]
pub struct TxnView {
    pub id: String,
    pub meta: TxnMeta,
}

struct State {
    txns: HashMap<String, TxnMeta>,
    /// The transactional id of each producer id, for the verification of
    /// transactional produce.
    by_pid: HashMap<i64, String>,
}

/// Shared by every connection; may be called from any thread. Every method
/// is blocking (it appends to the transaction log and writes markers) and
/// runs on a blocking thread. One mutex serialises the coordinator's
/// decisions and the writes they imply, so that a state is stored and its
/// markers written before any other request of any transaction is decided;
/// markers are local appends, so it is held briefly.
pub struct TxnCoordinator {
    state: Mutex<State>,
    store: TxnStore,
    settings: TxnSettings,
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
}

impl TxnCoordinator {
    /// Opens the transaction log in `data_dir` and replays it. Transactions
    /// a crash left prepared are completed by [`TxnCoordinator::recover`]
    /// once the partitions are open. Blocking.
    pub fn open(
        data_dir: &Path,
        settings: TxnSettings,
        clean: bool,
    ) -> Result<TxnCoordinator, StorageError> {
        let (store, txns) = TxnStore::open(data_dir, clean, settings.segment_bytes)?;
        let by_pid = txns
            .iter()
            .map(|(id, m)| (m.producer_id, id.clone()))
            .collect();
        info!(transactional_ids = txns.len(), "loaded transaction state");
        Ok(TxnCoordinator {
            state: Mutex::new(State { txns, by_pid }),
            store,
            settings,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores `meta` as the state of `id`, then keeps it in memory.
    fn put(&self, st: &mut State, id: &str, meta: TxnMeta) -> Result<(), ResponseError> {
        self.store.put(id, Some(&meta)).map_err(|e| {
            warn!(transactional_id = id, error = %e, "could not store transaction state");
            ResponseError::CoordinatorNotAvailable
        })?;
        st.by_pid.insert(meta.producer_id, id.to_string());
        st.txns.insert(id.to_string(), meta);
        Ok(())
    }

    /// Writes the markers of a prepared transaction and stores it complete:
    /// the second half of Kafka's two-phase commit, after the decision is
    /// durable. A marker that fails leaves the transaction prepared, to be
    /// completed by the next attempt (a retried EndTxn, the timeout pass or
    /// recovery at start).
    fn complete(
        &self,
        st: &mut State,
        id: &str,
        prepared: &TxnMeta,
        parts: &dyn Participants,
    ) -> Result<TxnMeta, ResponseError> {
        let commit = prepared.state == TxnState::PrepareCommit;
        let marker = if commit {
            Marker::Commit
        } else {
            Marker::Abort
        };
        for (topic, partition) in &prepared.partitions {
            parts
                .write_marker(topic, *partition, prepared.producer_id, prepared.epoch, marker)
                .map_err(|e| {
                    warn!(transactional_id = id, topic, partition, error = %e, "could not write a transaction marker");
                    ResponseError::CoordinatorNotAvailable
                })?;
        }
        for group in &prepared.groups {
            parts
                .complete_offsets(group, prepared.producer_id, commit)
                .map_err(|e| {
                    warn!(transactional_id = id, group, error = %e, "could not complete transactional offsets");
                    ResponseError::CoordinatorNotAvailable
                })?;
        }
        let done = prepared.complete(now_ms());
        self.put(st, id, done.clone())?;
        Ok(done)
    }

    /// InitProducerId with a transactional id: the producer id and epoch.
    pub fn init_producer_id(
        &self,
        id: &str,
        timeout_ms: i32,
        current: Option<(i64, i16)>,
        new_id: &mut dyn FnMut() -> i64,
        parts: &dyn Participants,
    ) -> Result<(i64, i16), ResponseError> {
        if timeout_ms <= 0 || timeout_ms as i64 > self.settings.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        let mut st = self.lock();
        let existing = st.txns.get(id).cloned();
        match TxnMeta::init(existing.as_ref(), timeout_ms, current, new_id, now_ms())? {
            Init::Ready(meta) => {
                let answer = (meta.producer_id, meta.epoch);
                self.put(&mut st, id, meta)?;
                Ok(answer)
            }
            Init::AbortFirst { abort, then } => {
                info!(
                    transactional_id = id,
                    producer_id = abort.producer_id,
                    epoch = abort.epoch,
                    "aborting the open transaction of a fenced producer"
                );
                self.put(&mut st, id, abort.clone())?;
                self.complete(&mut st, id, &abort, parts)?;
                let answer = (then.producer_id, then.epoch);
                self.put(&mut st, id, then)?;
                Ok(answer)
            }
        }
    }

    fn known(st: &State, id: &str) -> Result<TxnMeta, ResponseError> {
        // Kafka answers an unknown transactional id this way: the producer
        // never called InitProducerId with it.
        st.txns
            .get(id)
            .cloned()
            .ok_or(ResponseError::InvalidProducerIdMapping)
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn.
    pub fn add(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        group: Option<&str>,
    ) -> Result<(), ResponseError> {
        let mut st = self.lock();
        let meta = Self::known(&st, id)?;
        if let Some(next) = meta.add(producer_id, epoch, partitions, group, now_ms())? {
            self.put(&mut st, id, next)?;
        }
        Ok(())
    }

    /// The verify-only AddPartitionsToTxn (KIP-890): whether each partition
    /// is part of the open transaction, without adding it.
    pub fn verify(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<bool>, ResponseError> {
        let st = self.lock();
        let meta = Self::known(&st, id)?;
        Ok(partitions
            .iter()
            .map(|(t, p)| meta.verify(producer_id, epoch, t, *p))
            .collect())
    }

    /// Whether a transactional batch of `producer_id` at `epoch` may be
    /// appended to the partition: the producer's open transaction includes
    /// it. A batch at an older epoch is let through, for the log to refuse
    /// with its fencing error.
    pub fn verify_produce(
        &self,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> bool {
        let st = self.lock();
        let Some(meta) = st.by_pid.get(&producer_id).and_then(|id| st.txns.get(id)) else {
            return false;
        };
        epoch < meta.epoch || meta.verify(producer_id, epoch, topic, partition)
    }

    /// Whether the producer's open transaction includes `group` at `epoch`,
    /// for TxnOffsetCommit; the error to answer otherwise.
    pub fn check_offsets(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
    ) -> Result<(), ResponseError> {
        let st = self.lock();
        let meta = Self::known(&st, id)?;
        if producer_id != meta.producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if epoch < meta.epoch {
            return Err(ResponseError::ProducerFenced);
        }
        if epoch != meta.epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        if meta.state != TxnState::Ongoing || !meta.groups.contains(group) {
            return Err(ResponseError::InvalidTxnState);
        }
        Ok(())
    }

    /// EndTxn: stores the decision, writes the markers, stores the
    /// transaction complete; answers once all of it is done.
    pub fn end(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        parts: &dyn Participants,
    ) -> Result<(), ResponseError> {
        let mut st = self.lock();
        let meta = Self::known(&st, id)?;
        let Some(prepared) = meta.end(producer_id, epoch, commit, now_ms())? else {
            return Ok(());
        };
        self.put(&mut st, id, prepared.clone())?;
        self.complete(&mut st, id, &prepared, parts)?;
        info!(
            transactional_id = id,
            producer_id, epoch, commit, "ended transaction"
        );
        Ok(())
    }

    /// Completes the transactions a crash left prepared. Blocking; called
    /// once at start, after the partitions are open.
    pub fn recover(&self, parts: &dyn Participants) {
        let mut st = self.lock();
        let prepared: Vec<(String, TxnMeta)> = st
            .txns
            .iter()
            .filter(|(_, m)| m.is_prepare())
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect();
        for (id, meta) in prepared {
            match self.complete(&mut st, &id, &meta, parts) {
                Ok(_) => {
                    info!(transactional_id = %id, state = meta.state.name(), "completed a transaction prepared before the restart")
                }
                Err(e) => {
                    warn!(transactional_id = %id, error = ?e, "could not complete a prepared transaction")
                }
            }
        }
    }

    /// Aborts the transactions open past their timeout, at a bumped epoch
    /// that fences their producers, and retries prepared ones whose markers
    /// failed; forgets ids idle past `transactional.id.expiration.ms`.
    /// Returns how many were aborted. Blocking.
    pub fn expire(&self, parts: &dyn Participants) -> usize {
        let now = now_ms();
        let mut st = self.lock();
        let mut aborted = 0;
        let due: Vec<(String, TxnMeta)> = st
            .txns
            .iter()
            .filter_map(|(id, m)| {
                if m.is_prepare() {
                    Some((id.clone(), m.clone()))
                } else {
                    m.timed_out(now).map(|next| (id.clone(), next))
                }
            })
            .collect();
        for (id, prepared) in due {
            if st
                .txns
                .get(&id)
                .is_some_and(|m| m.state == TxnState::Ongoing)
            {
                info!(transactional_id = %id, producer_id = prepared.producer_id, timeout_ms = prepared.timeout_ms, "aborting a transaction past its timeout");
                if self.put(&mut st, &id, prepared.clone()).is_err() {
                    continue;
                }
                aborted += 1;
            }
            let _ = self.complete(&mut st, &id, &prepared, parts);
        }
        let expired: Vec<String> = st
            .txns
            .iter()
            .filter(|(_, m)| m.expired(now, self.settings.expiration_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if self.store.put(&id, None).is_ok() {
                if let Some(m) = st.txns.remove(&id) {
                    st.by_pid.remove(&m.producer_id);
                }
                info!(transactional_id = %id, "forgot an expired transactional id");
            }
        }
        aborted
    }

    /// The state of each id, `None` for an unknown one.
    pub fn describe(&self, ids: &[String]) -> Vec<Option<TxnView>> {
        let st = self.lock();
        ids.iter()
            .map(|id| {
                st.txns.get(id).map(|m| TxnView {
                    id: id.clone(),
                    meta: m.clone(),
                })
            })
            .collect()
    }

    /// Every id, for ListTransactions.
    pub fn list(&self) -> Vec<TxnView> {
        let st = self.lock();
        let mut out: Vec<TxnView> = st
            .txns
            .iter()
            .map(|(id, m)| TxnView {
                id: id.clone(),
                meta: m.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// The transaction log, for the cleaner.
    pub fn log(&self) -> &std::sync::Arc<strata_storage::Log> {
        self.store.log()
    }

    pub fn close(&self) -> Result<(), StorageError> {
        self.store.close()
    }
}
