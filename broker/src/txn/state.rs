//! The state of one transactional id, and its transitions (Kafka's
//! `TransactionMetadata`): pure functions of the current state, the request
//! and the clock passed in, so that every rule is unit-tested without a
//! broker. The coordinator persists each new state before acting on it.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

/// Where a transactional id's transaction is, in Kafka's names.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnState {
    /// No transaction open.
    Empty,
    /// Partitions or a group were added: records may be in the logs.
    Ongoing,
    /// Committing: the decision is durable; markers are being written.
    PrepareCommit,
    /// Aborting: the decision is durable; markers are being written.
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl TxnState {
    /// The name ListTransactions and DescribeTransactions report.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// One transactional id's state, as stored in the transaction log.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TxnMeta {
    pub producer_id: i64,
    pub epoch: i16,
    /// The epoch before the last bump by InitProducerId, so that a producer
    /// that retries InitProducerId after a lost answer is recognised
    /// (KIP-360); -1 when none.
    pub last_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// The partitions of the open transaction, as (topic, partition).
    pub partitions: BTreeSet<(String, i32)>,
    /// The groups whose offsets the open transaction commits.
    pub groups: BTreeSet<String>,
    /// When the open transaction began (its first partition was added),
    /// broker clock in milliseconds; -1 when none is open.
    pub start_ms: i64,
    pub update_ms: i64,
}

/// What InitProducerId decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Init {
    /// Answer with the meta's producer id and epoch once it is stored.
    Ready(TxnMeta),
    /// An open transaction must be aborted first, with the epoch already
    /// bumped in `abort` (which fences the old producer); then the id is
    /// ready as `then`.
    AbortFirst { abort: TxnMeta, then: TxnMeta },
}

fn fail<T>(e: ResponseError) -> Result<T, ResponseError> {
    Err(e)
}

impl TxnMeta {
    fn fresh(producer_id: i64, timeout_ms: i32, now_ms: i64) -> TxnMeta {
        TxnMeta {
            producer_id,
            epoch: 0,
            last_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            start_ms: -1,
            update_ms: now_ms,
        }
    }

    /// The same id ready for a new transaction at the next epoch (or under a
    /// new producer id when the epoch is exhausted).
    fn bumped(&self, timeout_ms: i32, new_id: &mut dyn FnMut() -> i64, now_ms: i64) -> TxnMeta {
        if self.epoch >= i16::MAX - 1 {
            return TxnMeta::fresh(new_id(), timeout_ms, now_ms);
        }
        TxnMeta {
            epoch: self.epoch + 1,
            last_epoch: self.epoch,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            start_ms: -1,
            update_ms: now_ms,
            ..self.clone()
        }
    }

    /// InitProducerId for a transactional id. `current` is the id and
    /// epoch the producer already has (v3+, KIP-360), if any.
    pub fn init(
        existing: Option<&TxnMeta>,
        timeout_ms: i32,
        current: Option<(i64, i16)>,
        new_id: &mut dyn FnMut() -> i64,
        now_ms: i64,
    ) -> Result<Init, ResponseError> {
        let Some(m) = existing else {
            if current.is_some() {
                // A producer id the coordinator does not know for this
                // transactional id.
                return fail(ResponseError::InvalidProducerIdMapping);
            }
            return Ok(Init::Ready(TxnMeta::fresh(new_id(), timeout_ms, now_ms)));
        };
        if m.state.is_prepare() {
            return fail(ResponseError::ConcurrentTransactions);
        }
        if let Some((id, epoch)) = current {
            let retry =
                id == m.producer_id && epoch == m.last_epoch && m.state != TxnState::Ongoing;
            if retry {
                // The answer to an earlier InitProducerId was lost, or the
                // coordinator bumped the epoch when it aborted the
                // producer's timed-out transaction (KIP-360): the producer
                // recovers with the current epoch.
                return Ok(Init::Ready(TxnMeta {
                    timeout_ms,
                    update_ms: now_ms,
                    ..m.clone()
                }));
            }
            if id != m.producer_id || epoch != m.epoch {
                return fail(ResponseError::ProducerFenced);
            }
        }
        if m.state == TxnState::Ongoing {
            // The open transaction is aborted at a bumped epoch, which
            // fences the producer that left it; the new instance gets that
            // epoch.
            let mut abort = m.bumped(m.timeout_ms, new_id, now_ms);
            abort.state = TxnState::PrepareAbort;
            abort.partitions = m.partitions.clone();
            abort.groups = m.groups.clone();
            abort.start_ms = m.start_ms;
            let mut then = abort.clone();
            then.state = TxnState::Empty;
            then.partitions.clear();
            then.groups.clear();
            then.start_ms = -1;
            then.timeout_ms = timeout_ms;
            return Ok(Init::AbortFirst { abort, then });
        }
        Ok(Init::Ready(m.bumped(timeout_ms, new_id, now_ms)))
    }

    /// The checks every request of the producer passes: its id and epoch
    /// are the current ones, and no commit or abort is being completed.
    fn check(&self, producer_id: i64, epoch: i16) -> Result<(), ResponseError> {
        if producer_id != self.producer_id {
            return fail(ResponseError::InvalidProducerIdMapping);
        }
        if epoch < self.epoch {
            return fail(ResponseError::ProducerFenced);
        }
        if epoch != self.epoch {
            return fail(ResponseError::InvalidProducerEpoch);
        }
        if self.state.is_prepare() {
            return fail(ResponseError::ConcurrentTransactions);
        }
        Ok(())
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn: the new state, or `None`
    /// when everything is already part of the open transaction.
    pub fn add(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        group: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<TxnMeta>, ResponseError> {
        self.check(producer_id, epoch)?;
        let ongoing = self.state == TxnState::Ongoing;
        let new_parts = partitions.iter().any(|p| !self.partitions.contains(p));
        let new_group = group.is_some_and(|g| !self.groups.contains(g));
        if ongoing && !new_parts && !new_group {
            return Ok(None);
        }
        let mut next = self.clone();
        if !ongoing {
            next.partitions.clear();
            next.groups.clear();
            next.start_ms = now_ms;
        }
        next.state = TxnState::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        if let Some(g) = group {
            next.groups.insert(g.to_string());
        }
        next.update_ms = now_ms;
        Ok(Some(next))
    }

    /// Whether the open transaction includes the partition (the KIP-890
    /// verification of a transactional produce).
    pub fn verify(&self, producer_id: i64, epoch: i16, topic: &str, partition: i32) -> bool {
        self.producer_id == producer_id
            && self.epoch == epoch
            && self.state == TxnState::Ongoing
            && self.partitions.contains(&(topic.to_string(), partition))
    }

    /// EndTxn: the prepared state to store before the markers are written,
    /// or `None` when the transaction already ended the way asked (a
    /// retried EndTxn).
    pub fn end(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<Option<TxnMeta>, ResponseError> {
        // A retried EndTxn of a transaction whose abort bumped the epoch is
        // still the same transaction's.
        let retry_after_bump = producer_id == self.producer_id
            && epoch == self.last_epoch
            && self.state == TxnState::CompleteAbort
            && !commit;
        if retry_after_bump {
            return Ok(None);
        }
        self.check(producer_id, epoch)?;
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = self.clone();
                next.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                next.update_ms = now_ms;
                Ok(Some(next))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(None),
            _ => fail(ResponseError::InvalidTxnState),
        }
    }

    /// The state after every marker of a prepared transaction is written.
    pub fn complete(&self, now_ms: i64) -> TxnMeta {
        let mut next = self.clone();
        next.state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            _ => TxnState::CompleteAbort,
        };
        next.partitions.clear();
        next.groups.clear();
        next.start_ms = -1;
        next.update_ms = now_ms;
        next
    }

    /// The abort of a transaction open past its timeout: prepared at a
    /// bumped epoch, so that the producer that let it time out is fenced.
    pub fn timed_out(&self, now_ms: i64) -> Option<TxnMeta> {
        if self.state != TxnState::Ongoing
            || now_ms < self.start_ms.saturating_add(self.timeout_ms as i64)
            || self.epoch >= i16::MAX - 1
        {
            return None;
        }
        let mut next = self.clone();
        next.last_epoch = self.epoch;
        next.epoch = self.epoch + 1;
        next.state = TxnState::PrepareAbort;
        next.update_ms = now_ms;
        Some(next)
    }

    /// Whether the id has been idle for `transactional.id.expiration.ms`
    /// with no transaction open, and may be forgotten.
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        matches!(
            self.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        ) && now_ms.saturating_sub(self.update_ms) >= expiration_ms
    }

    /// Whether the transaction holds partitions or groups that need markers.
    pub fn is_prepare(&self) -> bool {
        self.state.is_prepare()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> impl FnMut() -> i64 {
        let mut next = 100;
        move || {
            next += 1;
            next
        }
    }

    fn ready(i: Init) -> TxnMeta {
        match i {
            Init::Ready(m) => m,
            other => panic!("{other:?}"),
        }
    }

    fn p(t: &str, n: i32) -> (String, i32) {
        (t.to_string(), n)
    }

    #[test]
    fn a_transaction_commits_and_the_next_starts_clean() {
        let mut new_id = ids();
        let m = ready(TxnMeta::init(None, 60_000, None, &mut new_id, 0).unwrap());
        assert_eq!((m.producer_id, m.epoch, m.state), (101, 0, TxnState::Empty));
        let m = m.add(101, 0, &[p("a", 0)], None, 10).unwrap().unwrap();
        assert_eq!((m.state, m.start_ms), (TxnState::Ongoing, 10));
        assert!(m.verify(101, 0, "a", 0) && !m.verify(101, 0, "a", 1));
        // Adding what is already there changes nothing.
        assert_eq!(m.add(101, 0, &[p("a", 0)], None, 11).unwrap(), None);
        let m = m.add(101, 0, &[], Some("g"), 12).unwrap().unwrap();
        let prepared = m.end(101, 0, true, 20).unwrap().unwrap();
        assert_eq!(prepared.state, TxnState::PrepareCommit);
        // While markers are written, the producer waits.
        assert_eq!(
            prepared.add(101, 0, &[p("a", 1)], None, 21),
            Err(ResponseError::ConcurrentTransactions)
        );
        let done = prepared.complete(22);
        assert_eq!(done.state, TxnState::CompleteCommit);
        assert!(done.partitions.is_empty() && done.groups.is_empty());
        // A retried commit is answered again; an abort now is not valid.
        assert_eq!(done.end(101, 0, true, 23), Ok(None));
        assert_eq!(
            done.end(101, 0, false, 23),
            Err(ResponseError::InvalidTxnState)
        );
        let next = done.add(101, 0, &[p("b", 0)], None, 30).unwrap().unwrap();
        assert_eq!(next.partitions.len(), 1);
        assert_eq!(next.start_ms, 30);
    }

    #[test]
    fn a_new_instance_fences_the_old_and_aborts_its_open_transaction() {
        let mut new_id = ids();
        let m = ready(TxnMeta::init(None, 60_000, None, &mut new_id, 0).unwrap());
        let open = m.add(101, 0, &[p("a", 0)], None, 5).unwrap().unwrap();
        let Init::AbortFirst { abort, then } =
            TxnMeta::init(Some(&open), 30_000, None, &mut new_id, 10).unwrap()
        else {
            panic!("the open transaction must be aborted first");
        };
        assert_eq!((abort.epoch, abort.state), (1, TxnState::PrepareAbort));
        assert_eq!(abort.partitions, open.partitions);
        assert_eq!(
            (then.epoch, then.state, then.timeout_ms),
            (1, TxnState::Empty, 30_000)
        );
        // The old instance is fenced everywhere.
        assert_eq!(
            then.add(101, 0, &[p("a", 0)], None, 11),
            Err(ResponseError::ProducerFenced)
        );
        assert_eq!(
            then.end(101, 0, true, 11),
            Err(ResponseError::ProducerFenced)
        );
        assert_eq!(
            then.end(999, 1, true, 11),
            Err(ResponseError::InvalidProducerIdMapping)
        );
        // KIP-360: an epoch the id never had is fenced; the current one
        // bumps; a retry with the previous epoch (its answer was lost) gets
        // the same answer again.
        assert_eq!(
            TxnMeta::init(Some(&then), 1, Some((101, 7)), &mut new_id, 12),
            Err(ResponseError::ProducerFenced)
        );
        let bumped = ready(TxnMeta::init(Some(&then), 1, Some((101, 1)), &mut new_id, 12).unwrap());
        assert_eq!((bumped.epoch, bumped.last_epoch), (2, 1));
        let again =
            ready(TxnMeta::init(Some(&bumped), 1, Some((101, 1)), &mut new_id, 13).unwrap());
        assert_eq!(again.epoch, 2);
    }

    #[test]
    fn a_transaction_past_its_timeout_is_aborted_at_a_bumped_epoch() {
        let mut new_id = ids();
        let m = ready(TxnMeta::init(None, 1_000, None, &mut new_id, 0).unwrap());
        let open = m.add(101, 0, &[p("a", 0)], None, 100).unwrap().unwrap();
        assert_eq!(open.timed_out(1_099), None);
        let abort = open.timed_out(1_100).unwrap();
        assert_eq!((abort.epoch, abort.state), (1, TxnState::PrepareAbort));
        let done = abort.complete(1_101);
        // The producer's own abort afterwards is answered as done; its
        // commit is fenced.
        assert_eq!(done.end(101, 0, false, 1_102), Ok(None));
        assert_eq!(
            done.end(101, 0, true, 1_102),
            Err(ResponseError::ProducerFenced)
        );
        assert!(!done.expired(1_102, 10_000) && done.expired(11_101, 10_000));
        // KIP-360: the producer recovers with the epoch it had, and gets the
        // bumped one; nothing older does.
        let recovered =
            ready(TxnMeta::init(Some(&done), 1_000, Some((101, 0)), &mut new_id, 1_103).unwrap());
        assert_eq!((recovered.producer_id, recovered.epoch), (101, 1));
        assert_eq!(recovered.state, TxnState::CompleteAbort);
        assert!(!open.expired(1_000_000, 10));
    }

    #[test]
    fn an_exhausted_epoch_gets_a_new_producer_id() {
        let mut new_id = ids();
        let mut m = ready(TxnMeta::init(None, 1, None, &mut new_id, 0).unwrap());
        m.epoch = i16::MAX - 1;
        let next = ready(TxnMeta::init(Some(&m), 1, None, &mut new_id, 0).unwrap());
        assert_eq!((next.producer_id, next.epoch), (102, 0));
    }
}
