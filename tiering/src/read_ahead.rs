//! `ReadAhead`: how far ahead of one partition's sequential reader the cold
//! tier is read, adapted to what the reader and the store show.
//!
//! A real bucket answers a GET only after 20-100 ms, and one connection
//! carries on the order of 100 MB/s, so one GET at a time leaves most of
//! the bucket unused. The window (in chunks) starts at one after a seek, so
//! that the first answer never waits behind read-ahead, and then:
//! - doubles when the reader had to wait for a chunk that was still
//!   downloading or not asked for yet (the reader keeps up with the store,
//!   so more GETs in flight make it faster);
//! - halves when a chunk it had asked for ahead was gone when the reader
//!   came to it (the cache evicted it before use: cache pressure), when the
//!   cache refuses more unread chunks, or when the store throttles;
//! - stays when every chunk was ready (the reader is the slower side).
//!
//! Pure: no I/O and no clock; `remote_read.rs` feeds it what the chunk
//! cache said and issues the GETs it asks for.

use std::collections::VecDeque;

use strata_storage::Offset;
use uuid::Uuid;

use crate::cache::{Prefetch, Served};

/// A chunk of a remote segment: the segment's id and the chunk's number.
pub(crate) type ChunkId = (Uuid, u64);

/// One partition's read-ahead state. Not shared by itself: the partition
/// keeps it behind a mutex held only for these calls.
#[derive(Debug)]
pub(crate) struct ReadAhead {
    window: u64,
    max: u64,
    /// Where a sequential reader reads next.
    next: Option<Offset>,
    /// The segment and byte position of `next`, when the last read ended
    /// inside a segment: the next read starts there without the segment's
    /// offset index.
    resume: Option<(Uuid, u64)>,
    /// Chunks asked for ahead and not read yet, oldest first (bounded).
    asked: VecDeque<ChunkId>,
}

impl ReadAhead {
    /// A partition's read-ahead of at most `max` chunks.
    pub(crate) fn new(max: u64) -> ReadAhead {
        ReadAhead {
            window: 1,
            max: max.max(1),
            next: None,
            resume: None,
            asked: VecDeque::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn window(&self) -> u64 {
        self.window
    }

    /// The byte position in `segment` where a read at `offset` can start,
    /// if the last read ended there.
    pub(crate) fn resume_at(&self, offset: Offset, segment: Uuid) -> Option<u64> {
        match self.resume {
            Some((s, position)) if s == segment && self.next == Some(offset) => Some(position),
            _ => None,
        }
    }

    /// A read at `offset` that ended before `next` (at byte `resume` of its
    /// segment, if inside it), and how each chunk it used was served.
    /// Returns the window for the read-ahead that follows.
    pub(crate) fn after_read(
        &mut self,
        offset: Offset,
        next: Offset,
        resume: Option<(Uuid, u64)>,
        chunks: &[(ChunkId, Served)],
    ) -> u64 {
        let sequential = self.next == Some(offset);
        self.next = Some(next);
        self.resume = resume;
        if !sequential {
            // A seek: what was read ahead is for another place.
            self.window = 1;
            self.asked.clear();
            return self.window;
        }
        let mut grow = false;
        let mut shrink = false;
        for (id, served) in chunks {
            let was_asked = self.forget(id);
            match served {
                Served::Ready => {}
                Served::Waited => grow = true,
                // Asked for ahead, yet downloaded again by the reader: the
                // cache let it go before it was read.
                Served::Missed if was_asked => shrink = true,
                Served::Missed => grow = true,
            }
        }
        if shrink {
            self.shrink();
        } else if grow {
            self.window = (self.window * 2).min(self.max);
        }
        self.window
    }

    /// What the cache answered to a chunk asked for ahead. Returns whether
    /// to go on asking for the next one.
    pub(crate) fn asked(&mut self, id: ChunkId, answer: Prefetch) -> bool {
        match answer {
            Prefetch::Started => {
                if self.asked.len() as u64 >= self.max * 2 {
                    self.asked.pop_front();
                }
                self.asked.push_back(id);
                true
            }
            Prefetch::Present => true,
            // The broker's other readers hold the GETs: try at the next read.
            Prefetch::Busy => false,
            Prefetch::NoRoom | Prefetch::Throttled => {
                self.shrink();
                false
            }
        }
    }

    fn shrink(&mut self) {
        self.window = (self.window / 2).max(1);
    }

    /// Whether `id` was asked for ahead; it is forgotten either way.
    fn forget(&mut self, id: &ChunkId) -> bool {
        match self.asked.iter().position(|a| a == id) {
            Some(i) => {
                self.asked.remove(i);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: Uuid = Uuid::from_u128(7);

    fn o(n: i64) -> Offset {
        Offset(n)
    }

    impl ReadAhead {
        fn after_read_(
            &mut self,
            offset: Offset,
            next: Offset,
            chunks: &[(ChunkId, Served)],
        ) -> u64 {
            self.after_read(offset, next, None, chunks)
        }
    }

    #[test]
    fn a_sequential_read_resumes_where_the_last_one_ended_in_the_same_segment() {
        let mut ra = ReadAhead::new(4);
        assert_eq!(ra.resume_at(o(0), SEG), None);
        ra.after_read(o(0), o(100), Some((SEG, 4096)), &[]);
        assert_eq!(ra.resume_at(o(100), SEG), Some(4096));
        assert_eq!(ra.resume_at(o(101), SEG), None, "another offset");
        assert_eq!(
            ra.resume_at(o(100), Uuid::from_u128(8)),
            None,
            "another segment"
        );
        ra.after_read(o(100), o(200), None, &[]);
        assert_eq!(
            ra.resume_at(o(200), SEG),
            None,
            "the last read ended its segment"
        );
    }

    #[test]
    fn the_window_grows_while_the_reader_waits_for_the_store_and_stays_when_it_does_not() {
        let mut ra = ReadAhead::new(16);
        // The first read is a seek: one chunk ahead, nothing before.
        assert_eq!(
            ra.after_read_(o(0), o(100), &[((SEG, 0), Served::Missed)]),
            1
        );
        assert!(ra.asked((SEG, 1), Prefetch::Started));
        // The reader waited for the chunk read ahead: twice as far.
        assert_eq!(
            ra.after_read_(o(100), o(200), &[((SEG, 1), Served::Waited)]),
            2
        );
        assert_eq!(
            ra.after_read_(o(200), o(300), &[((SEG, 2), Served::Missed)]),
            4
        );
        assert_eq!(
            ra.after_read_(o(300), o(400), &[((SEG, 3), Served::Waited)]),
            8
        );
        assert_eq!(
            ra.after_read_(o(400), o(500), &[((SEG, 4), Served::Waited)]),
            16
        );
        assert_eq!(
            ra.after_read_(o(500), o(600), &[((SEG, 5), Served::Waited)]),
            16,
            "bounded"
        );
        // Everything ready: the reader is the slower side.
        assert_eq!(
            ra.after_read_(o(600), o(700), &[((SEG, 6), Served::Ready)]),
            16
        );
    }

    #[test]
    fn evictions_before_use_refusals_and_throttling_shrink_it_and_a_seek_starts_over() {
        let mut ra = ReadAhead::new(16);
        ra.after_read_(o(0), o(10), &[]);
        for i in 1..=4 {
            ra.after_read_(
                o(i * 10),
                o(i * 10 + 10),
                &[((SEG, i as u64), Served::Waited)],
            );
        }
        assert_eq!(ra.window(), 16);
        // Chunk 9 was read ahead, and then the reader had to download it
        // itself: the cache evicted it first.
        assert!(ra.asked((SEG, 9), Prefetch::Started));
        assert_eq!(
            ra.after_read_(o(50), o(60), &[((SEG, 9), Served::Missed)]),
            8
        );
        // The cache has no room for more unread chunks, then the store
        // throttles: both halve it and stop this round of read-ahead.
        assert!(!ra.asked((SEG, 10), Prefetch::NoRoom));
        assert_eq!(ra.window(), 4);
        assert!(!ra.asked((SEG, 10), Prefetch::Throttled));
        assert_eq!(ra.window(), 2);
        // The GET limit only stops this round.
        assert!(!ra.asked((SEG, 10), Prefetch::Busy));
        assert_eq!(ra.window(), 2);
        // A seek: no read-ahead beyond one chunk until it proves useful.
        assert_eq!(
            ra.after_read_(o(5_000), o(5_010), &[((SEG, 40), Served::Missed)]),
            1
        );
    }
}
