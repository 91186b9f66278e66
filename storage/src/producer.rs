//! Idempotent producers: per partition, each producer id's epoch and the
//! sequence numbers and offsets of its last five batches, so that a retried
//! batch is recognised as a duplicate and a gap is refused, as Kafka does.
//! The state is snapshotted beside the segments (see FORMAT.md) and rebuilt
//! from the last snapshot and the batches after it when the log opens. A
//! producer that has appended nothing for `producer.id.expiration.ms` is
//! forgotten, as Kafka forgets it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::batch::BatchHeader;
use crate::Offset;

/// How many batches per producer are remembered for duplicate detection
/// (Kafka's `max.in.flight.requests.per.connection` limit for idempotence).
pub const CACHED_BATCHES: usize = 5;

/// One batch of a producer, as remembered.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: Offset,
    pub last_offset: Offset,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Entry {
    epoch: i16,
    batches: VecDeque<ProducerBatch>,
    /// The broker's clock at the producer's last append (or when its state
    /// was loaded without one), for `producer.id.expiration.ms`.
    last_append_ms: i64,
    /// The first offset of the producer's transaction on this partition
    /// while one is open (a transactional batch appended and no marker
    /// yet): what holds the last stable offset back.
    txn_first_offset: Option<Offset>,
}

/// An open transaction on a partition, for DescribeProducers and the LSO.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OpenTxn {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_offset: Offset,
    pub last_append_ms: i64,
}

/// What a producer's state on a partition looks like, for DescribeProducers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub epoch: i16,
    /// Sequence of the last record appended, -1 when none is remembered.
    pub last_sequence: i32,
    pub last_append_ms: i64,
    /// First offset of the open transaction, if any.
    pub txn_first_offset: Option<Offset>,
}

/// Why a batch of an idempotent producer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerError {
    #[error("producer {producer_id} has epoch {epoch}, older than the current {current}")]
    Fenced {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error("producer {producer_id} sent sequence {got}, expected {expected}")]
    OutOfOrder {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

fn last_seq(h: &BatchHeader) -> i32 {
    ((h.base_sequence as i64 + h.last_offset_delta as i64) % (i32::MAX as i64 + 1)) as i32
}

/// Whether a batch comes from an idempotent producer.
pub fn is_idempotent(h: &BatchHeader) -> bool {
    h.producer_id >= 0 && h.base_sequence >= 0
}

/// Whether a batch is part of a transaction (attributes bit 4).
pub fn is_transactional(h: &BatchHeader) -> bool {
    h.attributes & crate::batch::TRANSACTIONAL_FLAG != 0
}

/// The producer state of one partition. Owned by the log, behind its mutex.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerState {
    producers: HashMap<i64, Entry>,
    /// The open transactions by first offset (to producer id), kept beside
    /// the entries so that the last stable offset, asked for by every
    /// fetch, is the first key rather than a walk over every producer.
    open: BTreeMap<Offset, i64>,
}

impl ProducerState {
    /// The first batch of a producer or of a new epoch must start at
    /// sequence 0.
    fn first_of_epoch(h: &BatchHeader) -> Result<Option<ProducerBatch>, ProducerError> {
        if h.base_sequence == 0 {
            Ok(None)
        } else {
            Err(ProducerError::OutOfOrder {
                producer_id: h.producer_id,
                expected: 0,
                got: h.base_sequence,
            })
        }
    }

    /// Checks a batch against the state: `Ok(None)` to append it,
    /// `Ok(Some(original))` when it repeats one of the last batches.
    pub fn check(&self, h: &BatchHeader) -> Result<Option<ProducerBatch>, ProducerError> {
        let first = h.base_sequence;
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return Self::first_of_epoch(h);
        };
        if h.producer_epoch < entry.epoch {
            return Err(ProducerError::Fenced {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: entry.epoch,
            });
        }
        if h.producer_epoch > entry.epoch {
            return Self::first_of_epoch(h);
        }
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last_seq(h))
        {
            return Ok(Some(*b));
        }
        let expected = entry.batches.back().map_or(0, |b| next_seq(b.last_seq));
        if first != expected {
            return Err(ProducerError::OutOfOrder {
                producer_id: h.producer_id,
                expected,
                got: first,
            });
        }
        Ok(None)
    }

    /// Records an appended batch (with its final offsets), appended at
    /// `now_ms` by the broker's clock.
    pub fn update(&mut self, h: &BatchHeader, now_ms: i64) {
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = h.producer_epoch;
        }
        entry.last_append_ms = entry.last_append_ms.max(now_ms);
        if is_transactional(h) && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(Offset(h.base_offset));
            self.open.insert(Offset(h.base_offset), h.producer_id);
        }
        entry.batches.push_back(ProducerBatch {
            first_seq: h.base_sequence,
            last_seq: last_seq(h),
            base_offset: Offset(h.base_offset),
            last_offset: Offset(h.last_offset()),
        });
        while entry.batches.len() > CACHED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// Records a transaction marker of `producer_id` at epoch `epoch`: the
    /// open transaction (if any) ends, and returns its first offset. A
    /// marker at a newer epoch (the coordinator's abort of a timed-out
    /// transaction bumps it) fences the producer's older epoch.
    pub fn complete_txn(&mut self, producer_id: i64, epoch: i16, now_ms: i64) -> Option<Offset> {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_append_ms = entry.last_append_ms.max(now_ms);
        let first = entry.txn_first_offset.take();
        if let Some(f) = first {
            self.open.remove(&f);
        }
        first
    }

    /// The first offset of the oldest open transaction: the last stable
    /// offset when it is below the high watermark.
    pub fn first_unstable_offset(&self) -> Option<Offset> {
        self.open.keys().next().copied()
    }

    /// The open transactions, oldest first.
    pub fn open_txns(&self) -> Vec<OpenTxn> {
        self.open
            .iter()
            .filter_map(|(&first, id)| {
                let e = self.producers.get(id)?;
                Some(OpenTxn {
                    producer_id: *id,
                    epoch: e.epoch,
                    first_offset: first,
                    last_append_ms: e.last_append_ms,
                })
            })
            .collect()
    }

    /// Every producer's state, by id.
    pub fn producers(&self) -> Vec<ProducerInfo> {
        let mut out: Vec<ProducerInfo> = self
            .producers
            .iter()
            .map(|(&id, e)| ProducerInfo {
                producer_id: id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_append_ms: e.last_append_ms,
                txn_first_offset: e.txn_first_offset,
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// Checks the batches of one append in order, each against the state
    /// as the ones before it would leave it. A duplicate is only recognised
    /// alone, as idempotent producers send one batch per partition.
    pub fn check_all(
        &self,
        headers: &[BatchHeader],
    ) -> Result<Option<ProducerBatch>, ProducerError> {
        let mut scratch = ProducerState::default();
        for h in headers.iter().filter(|h| is_idempotent(h)) {
            if let Some(e) = self.producers.get(&h.producer_id) {
                scratch
                    .producers
                    .entry(h.producer_id)
                    .or_insert_with(|| e.clone());
            }
        }
        for h in headers.iter().filter(|h| is_idempotent(h)) {
            match scratch.check(h)? {
                Some(dup) if headers.len() == 1 => return Ok(Some(dup)),
                Some(_) => {
                    let expected = scratch.producers[&h.producer_id]
                        .batches
                        .back()
                        .map_or(0, |b| next_seq(b.last_seq));
                    return Err(ProducerError::OutOfOrder {
                        producer_id: h.producer_id,
                        expected,
                        got: h.base_sequence,
                    });
                }
                None => scratch.update(h, 0),
            }
        }
        Ok(None)
    }

    /// Forgets the producers that have appended nothing for at least
    /// `expiration_ms` (`producer.id.expiration.ms`); returns how many. A
    /// forgotten producer that comes back is treated as a new one, so its
    /// next batch must start a sequence (OUT_OF_ORDER_SEQUENCE_NUMBER
    /// otherwise), as in Kafka.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        // A producer with an open transaction stays until its marker, or
        // the last stable offset would jump over its records.
        self.producers.retain(|_, e| {
            e.txn_first_offset.is_some() || now_ms.saturating_sub(e.last_append_ms) < expiration_ms
        });
        before - self.producers.len()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The snapshot file's bytes: `STPS`, version 3 (u16), producer count
    /// (u32), per producer its id (i64), epoch (i16), last append time
    /// (i64, milliseconds), the first offset of its open transaction (i64,
    /// -1 for none), batch count (u8) and batches (first and last sequence
    /// i32, base and last offset i64), then a CRC-32C of everything before.
    /// Big-endian. Version 2 has no transaction offset, version 1 neither
    /// that nor the append time.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = b"STPS".to_vec();
        out.extend_from_slice(&3u16.to_be_bytes());
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort();
        for id in ids {
            let e = &self.producers[&id];
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.last_append_ms.to_be_bytes());
            out.extend_from_slice(&e.txn_first_offset.map_or(-1, |o| o.0).to_be_bytes());
            out.push(e.batches.len() as u8);
            for b in &e.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.base_offset.0.to_be_bytes());
                out.extend_from_slice(&b.last_offset.0.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses a snapshot; `None` if it is not one or is damaged. Producers
    /// of a version 1 snapshot, which has no append times, count as active
    /// at `loaded_at_ms`.
    pub fn from_bytes(b: &[u8], loaded_at_ms: i64) -> Option<ProducerState> {
        if b.len() < 14 || &b[..4] != b"STPS" {
            return None;
        }
        let version = u16::from_be_bytes([b[4], b[5]]);
        if !(1..=3).contains(&version) {
            return None;
        }
        let (body, crc) = b.split_at(b.len() - 4);
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut pos = 6;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = body.get(pos..pos + n)?;
            pos += n;
            Some(s)
        };
        let count = u32::from_be_bytes(take(4)?.try_into().ok()?);
        let mut state = ProducerState::default();
        for _ in 0..count {
            let id = i64::from_be_bytes(take(8)?.try_into().ok()?);
            let epoch = i16::from_be_bytes(take(2)?.try_into().ok()?);
            let last_append_ms = if version >= 2 {
                i64::from_be_bytes(take(8)?.try_into().ok()?)
            } else {
                loaded_at_ms
            };
            let txn_first_offset = if version >= 3 {
                let o = i64::from_be_bytes(take(8)?.try_into().ok()?);
                (o >= 0).then_some(Offset(o))
            } else {
                None
            };
            let n = take(1)?[0] as usize;
            let mut batches = VecDeque::with_capacity(n.min(CACHED_BATCHES));
            for _ in 0..n {
                batches.push_back(ProducerBatch {
                    first_seq: i32::from_be_bytes(take(4)?.try_into().ok()?),
                    last_seq: i32::from_be_bytes(take(4)?.try_into().ok()?),
                    base_offset: Offset(i64::from_be_bytes(take(8)?.try_into().ok()?)),
                    last_offset: Offset(i64::from_be_bytes(take(8)?.try_into().ok()?)),
                });
            }
            if let Some(first) = txn_first_offset {
                state.open.insert(first, id);
            }
            state.producers.insert(
                id,
                Entry {
                    epoch,
                    batches,
                    last_append_ms,
                    txn_first_offset,
                },
            );
        }
        Some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, base: i64) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 100,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: count,
        }
    }

    #[test]
    fn sequences_duplicates_gaps_and_epochs() {
        let mut s = ProducerState::default();
        assert_eq!(
            s.check(&header(7, 0, 3, 1, 0)),
            Err(ProducerError::OutOfOrder {
                producer_id: 7,
                expected: 0,
                got: 3
            })
        );
        assert_eq!(s.check(&header(7, 0, 0, 2, 0)), Ok(None));
        s.update(&header(7, 0, 0, 2, 10), 0);
        assert_eq!(s.check(&header(7, 0, 2, 3, 0)), Ok(None));
        s.update(&header(7, 0, 2, 3, 12), 0);
        // A retry of the first batch is a duplicate with its original offsets.
        assert_eq!(
            s.check(&header(7, 0, 0, 2, 0))
                .unwrap()
                .unwrap()
                .base_offset,
            Offset(10)
        );
        assert!(matches!(
            s.check(&header(7, 0, 9, 1, 0)),
            Err(ProducerError::OutOfOrder { expected: 5, .. })
        ));
        // A new epoch starts at 0 and fences the old one.
        assert_eq!(s.check(&header(7, 1, 0, 1, 0)), Ok(None));
        s.update(&header(7, 1, 0, 1, 15), 0);
        assert!(matches!(
            s.check(&header(7, 0, 5, 1, 0)),
            Err(ProducerError::Fenced { .. })
        ));

        let back = ProducerState::from_bytes(&s.to_bytes(), 0).unwrap();
        assert_eq!(back, s);
        let mut damaged = s.to_bytes();
        damaged[10] ^= 1;
        assert!(ProducerState::from_bytes(&damaged, 0).is_none());
    }

    #[test]
    fn producers_idle_for_the_expiration_are_forgotten() {
        const DAY: i64 = 86_400_000;
        let mut s = ProducerState::default();
        s.update(&header(7, 0, 0, 2, 10), 1_000);
        s.update(&header(8, 0, 0, 1, 12), 1_000);
        s.update(&header(8, 0, 1, 1, 13), 1_000 + DAY / 2);
        assert_eq!(s.remove_expired(1_000 + DAY - 1, DAY), 0);
        // Producer 7 has been idle for a day; 8 appended half a day later.
        assert_eq!(s.remove_expired(1_000 + DAY, DAY), 1);
        assert_eq!(s.len(), 1);
        // A forgotten producer is a new one: its sequence must start at 0.
        assert!(matches!(
            s.check(&header(7, 0, 2, 1, 0)),
            Err(ProducerError::OutOfOrder { expected: 0, .. })
        ));
        assert_eq!(s.check(&header(8, 0, 2, 1, 0)), Ok(None));
        // The append time survives a snapshot.
        let back = ProducerState::from_bytes(&s.to_bytes(), 0).unwrap();
        assert_eq!(back, s);
        let mut again = back.clone();
        assert_eq!(again.remove_expired(1_000 + DAY + DAY / 2, DAY), 1);
    }

    #[test]
    fn a_version_1_snapshot_loads_with_its_producers_active_at_load() {
        let mut s = ProducerState::default();
        s.update(&header(7, 3, 0, 2, 10), 5);
        // Version 1: no append time after the epoch.
        let mut v1 = b"STPS".to_vec();
        v1.extend_from_slice(&1u16.to_be_bytes());
        v1.extend_from_slice(&1u32.to_be_bytes());
        v1.extend_from_slice(&7i64.to_be_bytes());
        v1.extend_from_slice(&3i16.to_be_bytes());
        v1.push(1);
        for v in [0i32, 1] {
            v1.extend_from_slice(&v.to_be_bytes());
        }
        for v in [10i64, 11] {
            v1.extend_from_slice(&v.to_be_bytes());
        }
        let crc = crc32c::crc32c(&v1);
        v1.extend_from_slice(&crc.to_be_bytes());
        let loaded = ProducerState::from_bytes(&v1, 5).unwrap();
        assert_eq!(loaded, s);
    }
}
