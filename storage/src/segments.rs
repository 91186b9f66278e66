//! The ordered set of a log's segments (Kafka's `LogSegments`): the sealed
//! ones by base offset, then the active one, which always exists.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use crate::segment::{ActiveSegment, SealedSegment, Segment};
use crate::Offset;

/// Owned by the log's inner state, behind its mutex.
pub(crate) struct Segments {
    sealed: BTreeMap<Offset, SealedSegment>,
    active: ActiveSegment,
}

impl Segments {
    pub fn new(sealed: BTreeMap<Offset, SealedSegment>, active: ActiveSegment) -> Segments {
        Segments { sealed, active }
    }

    /// The segment appends go to.
    pub fn active(&self) -> &ActiveSegment {
        &self.active
    }

    pub fn active_mut(&mut self) -> &mut ActiveSegment {
        &mut self.active
    }

    /// Seals the active segment (without fsync) and makes `next` the active
    /// one.
    pub fn roll(&mut self, next: ActiveSegment) -> crate::StorageResult<()> {
        let old = std::mem::replace(&mut self.active, next);
        let sealed = old.seal_without_flush()?;
        self.sealed.insert(sealed.base, sealed);
        Ok(())
    }

    /// Makes `next` the active segment and hands back the one it replaces,
    /// for a log that is moved forward while it holds nothing.
    pub fn replace_active(&mut self, next: ActiveSegment) -> ActiveSegment {
        std::mem::replace(&mut self.active, next)
    }

    /// The offset the next appended record gets.
    pub fn log_end(&self) -> Offset {
        self.active.next_offset
    }

    /// The oldest segment.
    pub fn first(&self) -> &Segment {
        self.sealed.values().next().map_or(&self.active, |s| s)
    }

    /// The base offset of the oldest segment.
    pub fn first_base(&self) -> Offset {
        self.first().base
    }

    /// Every sealed segment, oldest first.
    pub fn sealed(&self) -> impl Iterator<Item = &SealedSegment> {
        self.sealed.values()
    }

    pub fn sealed_mut(&mut self, base: &Offset) -> Option<&mut SealedSegment> {
        self.sealed.get_mut(base)
    }

    /// Every segment, oldest first.
    pub fn all(&self) -> impl Iterator<Item = &Segment> {
        self.sealed
            .values()
            .map(|s| &**s)
            .chain(std::iter::once(&*self.active))
    }

    /// The segments whose base offsets are in `range`, oldest first.
    pub fn range(&self, range: impl RangeBounds<Offset>) -> impl Iterator<Item = &Segment> {
        let active_in = range.contains(&self.active.base);
        let bounds = (
            clone_bound(range.start_bound()),
            clone_bound(range.end_bound()),
        );
        self.sealed
            .range(bounds)
            .map(|(_, s)| &**s)
            .chain(active_in.then_some(&*self.active))
    }

    /// The base of the segment that holds `offset` (the last one starting at
    /// or before it).
    pub fn base_holding(&self, offset: Offset) -> Option<Offset> {
        if self.active.base <= offset {
            return Some(self.active.base);
        }
        self.sealed.range(..=offset).next_back().map(|(k, _)| *k)
    }

    /// The transaction index of the segment at `base`.
    pub fn txn_index_mut(&mut self, base: Offset) -> Option<&mut crate::txn_index::TxnIndex> {
        if self.active.base == base {
            return Some(&mut self.active.txn_index);
        }
        self.sealed.get_mut(&base).map(|s| s.txn_index_mut())
    }

    /// Removes one sealed segment (the cleaner swapping in its copy).
    pub fn remove_sealed(&mut self, base: &Offset) -> Option<SealedSegment> {
        self.sealed.remove(base)
    }

    /// Adds a sealed segment (the cleaner's copy of removed ones).
    pub fn insert_sealed(&mut self, segment: SealedSegment) {
        self.sealed.insert(segment.base, segment);
    }

    /// Removes the oldest sealed segment; the active one is never removed.
    pub fn pop_oldest_sealed(&mut self) -> Option<SealedSegment> {
        self.sealed.pop_first().map(|(_, s)| s)
    }

    /// How many segments, the active one included.
    pub fn len(&self) -> usize {
        self.sealed.len() + 1
    }

    /// Bytes held in every segment.
    pub fn size_bytes(&self) -> u64 {
        self.all().map(|s| s.size).sum()
    }

    /// Makes every segment's files final and durable for a clean shutdown.
    pub fn close(&mut self) -> crate::StorageResult<()> {
        for s in self.sealed.values_mut() {
            s.make_durable()?;
        }
        self.active.close()
    }

    /// Forgets the sealed segments (the log was deleted with its
    /// directory).
    pub fn clear(&mut self) {
        self.sealed.clear();
    }
}

fn clone_bound(b: Bound<&Offset>) -> Bound<Offset> {
    match b {
        Bound::Included(o) => Bound::Included(*o),
        Bound::Excluded(o) => Bound::Excluded(*o),
        Bound::Unbounded => Bound::Unbounded,
    }
}
