//! Which whole batches a read returns: from the batch holding the wanted
//! offset on, while they fit in the byte limit (the first one even when it
//! does not, with `min_one_batch`, as KIP-74 asks). The one rule for reads of
//! local segments and of remote ones: each walks its bytes batch header by
//! batch header and asks this type what to do with each.

use crate::batch::BatchHeader;
use crate::Offset;

/// What to do with the batch just offered.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It ends before the wanted offset: step over it.
    Skip,
    /// It is part of the answer: take it and look at the next.
    Take,
    /// It does not fit: the answer ends before it.
    Stop,
}

/// The state of one read's selection. A read over several segments offers
/// each segment's batches in turn and calls [`BatchSelection::next_segment`]
/// between them; the byte budget and "nothing taken yet" carry over.
#[derive(Clone, Debug)]
pub struct BatchSelection {
    offset: Offset,
    /// Batches starting at or after this offset are not returned (the last
    /// stable offset, for read_committed reads).
    end: Offset,
    remaining: usize,
    min_one_batch: bool,
    taken_any: bool,
    /// The byte range taken in the current segment.
    range: Option<(u64, u64)>,
}

impl BatchSelection {
    pub fn new(offset: Offset, max_bytes: usize, min_one_batch: bool) -> BatchSelection {
        BatchSelection {
            offset,
            end: Offset(i64::MAX),
            remaining: max_bytes,
            min_one_batch,
            taken_any: false,
            range: None,
        }
    }

    /// Stops the selection before the first batch starting at or after
    /// `end`.
    pub fn ending_at(mut self, end: Offset) -> BatchSelection {
        self.end = end;
        self
    }

    /// Decides about the batch at byte `position` of the current segment.
    pub fn offer(&mut self, position: u64, header: &BatchHeader) -> Verdict {
        if header.last_offset() < self.offset.0 {
            return Verdict::Skip;
        }
        if header.base_offset >= self.end.0 {
            return Verdict::Stop;
        }
        let len = header.total_len();
        // The first batch of a read with `min_one_batch` is taken whatever
        // its size.
        let first_forced = self.min_one_batch && !self.taken_any;
        if len > self.remaining && !first_forced {
            return Verdict::Stop;
        }
        self.remaining = self.remaining.saturating_sub(len);
        self.taken_any = true;
        let end = position + len as u64;
        self.range = Some(match self.range {
            None => (position, end),
            Some((start, _)) => (start, end),
        });
        Verdict::Take
    }

    /// The bytes taken in the current segment, as (start, end).
    pub fn range(&self) -> Option<(u64, u64)> {
        self.range
    }

    /// Moves on to the next segment's batches.
    pub fn next_segment(&mut self) {
        self.range = None;
    }

    /// Whether the byte budget is spent.
    pub fn is_full(&self) -> bool {
        self.remaining == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(base: i64, records: i32, len: usize) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: (len - 12) as i32,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: records,
        }
    }

    #[test]
    fn skips_to_the_offset_and_takes_whole_batches_within_the_limit() {
        let mut s = BatchSelection::new(Offset(12), 250, false);
        assert_eq!(s.offer(0, &header(0, 10, 100)), Verdict::Skip);
        // 10..=14 holds offset 12: the answer starts there.
        assert_eq!(s.offer(100, &header(10, 5, 100)), Verdict::Take);
        assert_eq!(s.offer(200, &header(15, 5, 100)), Verdict::Take);
        assert_eq!(s.offer(300, &header(20, 5, 100)), Verdict::Stop);
        assert_eq!(s.range(), Some((100, 300)));
        s.next_segment();
        assert_eq!(s.range(), None);
    }

    #[test]
    fn the_first_batch_is_taken_whole_with_min_one_batch() {
        let mut s = BatchSelection::new(Offset(0), 10, true);
        assert_eq!(s.offer(0, &header(0, 1, 500)), Verdict::Take);
        assert!(s.is_full());
        assert_eq!(s.offer(500, &header(1, 1, 100)), Verdict::Stop);
        let mut s = BatchSelection::new(Offset(0), 10, false);
        assert_eq!(s.offer(0, &header(0, 1, 500)), Verdict::Stop);
        assert_eq!(s.range(), None);
        // Across segments, "first" means first of the whole read.
        let mut s = BatchSelection::new(Offset(0), 150, true);
        assert_eq!(s.offer(0, &header(0, 1, 100)), Verdict::Take);
        s.next_segment();
        assert_eq!(s.offer(0, &header(1, 1, 100)), Verdict::Stop);
    }
}
