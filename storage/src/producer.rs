//! Idempotent producers: per partition, each producer id's epoch and the
//! sequence numbers and offsets of its last five batches, so that a retried
//! batch is recognised as a duplicate and a gap is refused, as Kafka does.
//! The state is snapshotted beside the segments (see FORMAT.md) and rebuilt
//! from the last snapshot and the batches after it when the log opens.

use std::collections::{HashMap, VecDeque};

use crate::batch::BatchHeader;

/// How many batches per producer are remembered for duplicate detection
/// (Kafka's `max.in.flight.requests.per.connection` limit for idempotence).
pub const CACHED_BATCHES: usize = 5;

/// One batch of a producer, as remembered.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Entry {
    epoch: i16,
    batches: VecDeque<ProducerBatch>,
}

/// Why a batch of an idempotent producer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
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

/// The producer state of one partition. Owned by the log, behind its mutex.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerState {
    producers: HashMap<i64, Entry>,
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

    /// Records an appended batch (with its final offsets).
    pub fn update(&mut self, h: &BatchHeader) {
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = h.producer_epoch;
        }
        entry.batches.push_back(ProducerBatch {
            first_seq: h.base_sequence,
            last_seq: last_seq(h),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
        });
        while entry.batches.len() > CACHED_BATCHES {
            entry.batches.pop_front();
        }
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
                None => scratch.update(h),
            }
        }
        Ok(None)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The snapshot file's bytes: `STPS`, version 1 (u16), producer count
    /// (u32), per producer its id (i64), epoch (i16), batch count (u8) and
    /// batches (first and last sequence i32, base and last offset i64), then
    /// a CRC-32C of everything before. Big-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = b"STPS".to_vec();
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort();
        for id in ids {
            let e = &self.producers[&id];
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.push(e.batches.len() as u8);
            for b in &e.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.base_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses a snapshot; `None` if it is not one or is damaged.
    pub fn from_bytes(b: &[u8]) -> Option<ProducerState> {
        if b.len() < 14 || &b[..4] != b"STPS" || b[4..6] != 1u16.to_be_bytes() {
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
            let n = take(1)?[0] as usize;
            let mut batches = VecDeque::with_capacity(n.min(CACHED_BATCHES));
            for _ in 0..n {
                batches.push_back(ProducerBatch {
                    first_seq: i32::from_be_bytes(take(4)?.try_into().ok()?),
                    last_seq: i32::from_be_bytes(take(4)?.try_into().ok()?),
                    base_offset: i64::from_be_bytes(take(8)?.try_into().ok()?),
                    last_offset: i64::from_be_bytes(take(8)?.try_into().ok()?),
                });
            }
            state.producers.insert(id, Entry { epoch, batches });
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
        s.update(&header(7, 0, 0, 2, 10));
        assert_eq!(s.check(&header(7, 0, 2, 3, 0)), Ok(None));
        s.update(&header(7, 0, 2, 3, 12));
        // A retry of the first batch is a duplicate with its original offsets.
        assert_eq!(
            s.check(&header(7, 0, 0, 2, 0))
                .unwrap()
                .unwrap()
                .base_offset,
            10
        );
        assert!(matches!(
            s.check(&header(7, 0, 9, 1, 0)),
            Err(ProducerError::OutOfOrder { expected: 5, .. })
        ));
        // A new epoch starts at 0 and fences the old one.
        assert_eq!(s.check(&header(7, 1, 0, 1, 0)), Ok(None));
        s.update(&header(7, 1, 0, 1, 15));
        assert!(matches!(
            s.check(&header(7, 0, 5, 1, 0)),
            Err(ProducerError::Fenced { .. })
        ));

        let back = ProducerState::from_bytes(&s.to_bytes()).unwrap();
        assert_eq!(back, s);
        let mut damaged = s.to_bytes();
        damaged[10] ^= 1;
        assert!(ProducerState::from_bytes(&damaged).is_none());
    }
}
