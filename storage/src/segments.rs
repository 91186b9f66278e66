//! The ordered set of a log's segments, by base offset: every sealed one,
//! then the active one, which always exists (Kafka's `LogSegments`).

use std::collections::BTreeMap;
use std::ops::RangeBounds;

use crate::segment::Segment;
use crate::Offset;

/// Owned by the log's inner state, behind its mutex.
pub(crate) struct Segments {
    by_base: BTreeMap<Offset, Segment>,
}

impl Segments {
    /// A set holding `segments`, which must not be empty.
    pub fn new(by_base: BTreeMap<Offset, Segment>) -> Segments {
        assert!(!by_base.is_empty(), "a log always has an active segment");
        Segments { by_base }
    }

    /// The segment appends go to: the one with the highest base.
    pub fn active(&self) -> &Segment {
        self.by_base
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub fn active_mut(&mut self) -> &mut Segment {
        self.by_base
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    /// The offset the next appended record gets.
    pub fn log_end(&self) -> Offset {
        self.active().next_offset
    }

    /// The base offset of the oldest segment.
    pub fn first_base(&self) -> Offset {
        *self.by_base.keys().next().expect("non-empty")
    }

    /// The oldest segment.
    pub fn first(&self) -> &Segment {
        self.by_base.values().next().expect("non-empty")
    }

    /// Every segment but the active one, oldest first.
    pub fn sealed(&self) -> impl Iterator<Item = &Segment> {
        let n = self.by_base.len();
        self.by_base.values().take(n - 1)
    }

    /// Every segment, oldest first.
    pub fn all(&self) -> impl DoubleEndedIterator<Item = &Segment> {
        self.by_base.values()
    }

    pub fn all_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut Segment> {
        self.by_base.values_mut()
    }

    /// The segments whose base offsets are in `range`, with their bases.
    pub fn range(
        &self,
        range: impl RangeBounds<Offset>,
    ) -> impl DoubleEndedIterator<Item = (&Offset, &Segment)> {
        self.by_base.range(range)
    }

    /// The base of the segment that holds `offset` (the last one starting at
    /// or before it).
    pub fn base_holding(&self, offset: Offset) -> Option<Offset> {
        self.by_base.range(..=offset).next_back().map(|(k, _)| *k)
    }

    pub fn get_mut(&mut self, base: &Offset) -> Option<&mut Segment> {
        self.by_base.get_mut(base)
    }

    /// Adds a segment; a new active one has the highest base.
    pub fn insert(&mut self, segment: Segment) {
        self.by_base.insert(segment.base, segment);
    }

    /// Removes the oldest segment, never the active one.
    pub fn pop_oldest_sealed(&mut self) -> Option<Segment> {
        if self.by_base.len() > 1 {
            self.by_base.pop_first().map(|(_, s)| s)
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.by_base.len()
    }

    /// Bytes held in every segment.
    pub fn size_bytes(&self) -> u64 {
        self.by_base.values().map(|s| s.size).sum()
    }

    /// Drops every segment (the log was deleted); no method but this one
    /// may be called afterwards.
    pub fn clear(&mut self) {
        self.by_base.clear();
    }
}
