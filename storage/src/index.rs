//! Sparse, memory-mapped indexes of a segment.
//!
//! Both index kinds are arrays of fixed-size big-endian entries, sorted by
//! offset. While a segment is active its index files are preallocated to
//! `segment.index.bytes` and mapped read-write; when the segment is sealed
//! (rolled, or the broker shuts down cleanly) they are trimmed to their
//! entries, so the length of a sealed index tells how many entries it has.

use std::fs::{File, OpenOptions};
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};

use crate::error::{StorageError, StorageResult};
use crate::Offset;

/// A file of fixed-size entries mapped into memory. Not shared: the owning
/// segment is behind the log's mutex.
struct MappedEntries {
    /// Bytes per entry.
    size: usize,
    path: PathBuf,
    file: File,
    mmap: Option<MmapMut>,
    entries: usize,
    capacity: usize,
    /// Bytes from the start of the file known to have disk blocks. The
    /// preallocated tail is sparse, and a store through the mapping into a
    /// page the filesystem cannot back (a full disk) would kill the process
    /// with SIGBUS; pages are therefore backed with a plain write first,
    /// which fails cleanly with ENOSPC instead.
    backed: usize,
}

/// Granularity of [`MappedEntries::backed`]: a page.
const PAGE: usize = 4096;

impl MappedEntries {
    /// Opens (creating if needed) the file, trusting its length to count the
    /// entries when `trust_len` holds and starting empty otherwise.
    fn open(path: &Path, size: usize, trust_len: bool) -> StorageResult<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(StorageError::io("open index", path))?;
        let len = file
            .metadata()
            .map_err(StorageError::io("stat index", path))?
            .len() as usize;
        let entries = if trust_len { len / size } else { 0 };
        let mut m = MappedEntries {
            size,
            path: path.to_owned(),
            file,
            mmap: None,
            entries,
            capacity: 0,
            backed: entries * size,
        };
        m.resize(entries.max(len / size))?;
        Ok(m)
    }

    /// Sets the file length to `capacity` entries and maps it again.
    fn resize(&mut self, capacity: usize) -> StorageResult<()> {
        self.mmap = None;
        self.file
            .set_len((capacity * self.size) as u64)
            .map_err(StorageError::io("resize index", &self.path))?;
        self.capacity = capacity;
        self.backed = self.backed.min(capacity * self.size);
        if capacity > 0 {
            // SAFETY: the file is private to this broker's data directory and
            // is only resized through this struct, which drops the mapping
            // before any resize; nothing truncates it while it is mapped.
            let mmap = unsafe {
                MmapOptions::new()
                    .len(capacity * self.size)
                    .map_mut(&self.file)
            }
            .map_err(StorageError::io("map index", &self.path))?;
            self.mmap = Some(mmap);
        }
        Ok(())
    }

    fn entry(&self, i: usize) -> &[u8] {
        let mmap = self.mmap.as_ref().expect("an index with entries is mapped");
        &mmap[i * self.size..(i + 1) * self.size]
    }

    /// Makes sure the file has blocks under its first `end` bytes, writing
    /// zeros from the backed end to the next page boundary. Returns false if
    /// the filesystem refused (no space).
    fn back(&mut self, end: usize) -> bool {
        if end <= self.backed {
            return true;
        }
        let to = end.div_ceil(PAGE) * PAGE;
        let to = to.min(self.capacity * self.size).max(end);
        let zeros = vec![0u8; to - self.backed];
        match self.file.write_all_at(&zeros, self.backed as u64) {
            Ok(()) => {
                self.backed = to;
                true
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot extend an index; the entry is skipped (indexes are sparse)");
                false
            }
        }
    }

    /// Appends an entry; false when the index is full. An entry the disk
    /// has no room for is skipped (and true returned): a sparse index only
    /// gets coarser without it.
    fn push(&mut self, entry: &[u8]) -> bool {
        if self.entries >= self.capacity {
            return false;
        }
        let (i, n) = (self.entries, self.size);
        if !self.back((i + 1) * n) {
            return true;
        }
        let mmap = self.mmap.as_mut().expect("capacity > 0 means mapped");
        mmap[i * n..(i + 1) * n].copy_from_slice(entry);
        self.entries += 1;
        true
    }

    fn is_full(&self) -> bool {
        self.entries >= self.capacity
    }

    /// The bytes of the entries written so far.
    fn bytes(&self) -> &[u8] {
        match &self.mmap {
            Some(m) => &m[..self.entries * self.size],
            None => &[],
        }
    }

    fn flush(&self) -> StorageResult<()> {
        if let Some(m) = &self.mmap {
            m.flush()
                .map_err(StorageError::io("flush index", &self.path))?;
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.entries = 0;
    }

    /// Preallocates room for `max_bytes` of entries (at least one more).
    fn grow_to(&mut self, max_bytes: u32) -> StorageResult<()> {
        let capacity = (max_bytes as usize / self.size).max(self.entries + 1);
        self.resize(capacity)
    }

    /// Trims the file to its entries; its pages are left for an fsync.
    fn trim(&mut self) -> StorageResult<()> {
        self.resize(self.entries)
    }

    /// Writes the mapped entries back and fsyncs the file.
    fn sync(&self) -> StorageResult<()> {
        self.flush()?;
        self.file
            .sync_all()
            .map_err(StorageError::io("fsync index", &self.path))
    }
}

/// One kind of index entry: its size on disk, the key the index is sorted
/// by, and its encoding relative to the segment's base offset.
pub(crate) trait IndexEntry: Copy {
    /// Bytes per entry.
    const SIZE: usize;
    /// The sort key of an entry's bytes, relative to the base offset where
    /// the entry stores a relative offset.
    fn key(bytes: &[u8]) -> i64;
    fn decode(bytes: &[u8], base: Offset) -> Self;
    fn encode(&self, base: Offset, out: &mut [u8]);
}

/// An offset index entry: the batch at byte `position` of the `.log` file
/// has base offset `offset`. On disk: 4-byte offset relative to the
/// segment's base, 4-byte position.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub offset: Offset,
    pub position: u32,
}

/// A time index entry: `timestamp` is the largest seen in the segment up to
/// the batch at `offset`. On disk: 8-byte timestamp, 4-byte offset relative
/// to the segment's base.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub offset: Offset,
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().expect("4 bytes"))
}

fn be_i64(b: &[u8]) -> i64 {
    i64::from_be_bytes(b[..8].try_into().expect("8 bytes"))
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn key(bytes: &[u8]) -> i64 {
        be_u32(bytes) as i64
    }
    fn decode(bytes: &[u8], base: Offset) -> Self {
        OffsetEntry {
            offset: base.plus(be_u32(bytes) as i64),
            position: be_u32(&bytes[4..]),
        }
    }
    fn encode(&self, base: Offset, out: &mut [u8]) {
        out[0..4].copy_from_slice(&((self.offset.0 - base.0) as u32).to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn key(bytes: &[u8]) -> i64 {
        be_i64(bytes)
    }
    fn decode(bytes: &[u8], base: Offset) -> Self {
        TimeEntry {
            timestamp: be_i64(bytes),
            offset: base.plus(be_u32(&bytes[8..]) as i64),
        }
    }
    fn encode(&self, base: Offset, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&((self.offset.0 - base.0) as u32).to_be_bytes());
    }
}

/// In the bytes of an index of `E`s: the last entry whose key is `<= key`.
fn floor<E: IndexEntry>(entries: &[u8], key: i64, base: Offset) -> Option<E> {
    let n = E::SIZE;
    let (mut lo, mut hi) = (0usize, entries.len() / n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if E::key(&entries[mid * n..(mid + 1) * n]) <= key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let i = lo.checked_sub(1)?;
    Some(E::decode(&entries[i * n..(i + 1) * n], base))
}

/// In the bytes of an offset index of a segment starting at `base`: the
/// offset and position of the last indexed batch at or before `target`, or
/// the segment start. Works on a mapped file and on a downloaded one alike.
pub fn offset_index_lookup(entries: &[u8], base: Offset, target: Offset) -> (Offset, u32) {
    floor::<OffsetEntry>(entries, target.0 - base.0, base)
        .map_or((base, 0), |e| (e.offset, e.position))
}

/// In the bytes of a time index of a segment starting at `base`: the offset
/// from which to scan for the first record with a timestamp `>= ts`, that is
/// the batch of the last entry whose timestamp is strictly smaller (every
/// record before it is smaller still), or the segment start.
pub fn time_index_lookup(entries: &[u8], base: Offset, ts: i64) -> Offset {
    floor::<TimeEntry>(entries, ts.saturating_sub(1), base).map_or(base, |e| e.offset)
}

/// A sparse index of one segment: a memory-mapped file of `E`s sorted by
/// key. Not shared: the owning segment is behind the log's mutex.
pub(crate) struct Index<E> {
    base: Offset,
    inner: MappedEntries,
    entry: PhantomData<E>,
}

/// Maps offsets to byte positions in the segment's `.log` file.
pub(crate) type OffsetIndex = Index<OffsetEntry>;

/// Maps timestamps to offsets.
pub(crate) type TimeIndex = Index<TimeEntry>;

impl<E: IndexEntry> Index<E> {
    /// Opens (creating if needed) the index file of the segment at `base`,
    /// trusting its length to count the entries when `trust_len` holds.
    pub fn open(path: &Path, base: Offset, trust_len: bool) -> StorageResult<Self> {
        Ok(Index {
            base,
            inner: MappedEntries::open(path, E::SIZE, trust_len)?,
            entry: PhantomData,
        })
    }

    fn push(&mut self, e: E) -> bool {
        let mut buf = [0u8; 16];
        let out = &mut buf[..E::SIZE];
        e.encode(self.base, out);
        self.inner.push(out)
    }

    fn get(&self, i: usize) -> E {
        E::decode(self.inner.entry(i), self.base)
    }

    /// Every entry, in order.
    fn entries(&self) -> impl Iterator<Item = E> + '_ {
        (0..self.inner.entries).map(|i| self.get(i))
    }

    fn last_entry(&self) -> Option<E> {
        self.inner.entries.checked_sub(1).map(|i| self.get(i))
    }

    pub fn is_full(&self) -> bool {
        self.inner.is_full()
    }

    /// Entries that still fit in the preallocated file.
    pub fn room(&self) -> usize {
        self.inner.capacity - self.inner.entries
    }

    pub fn clear(&mut self) {
        self.inner.clear()
    }

    /// Preallocates the file for appends (active segment).
    pub fn grow_to(&mut self, max_bytes: u32) -> StorageResult<()> {
        self.inner.grow_to(max_bytes)
    }

    /// Writes the entries back and fsyncs the file.
    pub fn sync(&self) -> StorageResult<()> {
        self.inner.sync()
    }

    /// Trims the file to its entries without syncing it.
    pub fn trim(&mut self) -> StorageResult<()> {
        self.inner.trim()
    }

    #[cfg(test)]
    pub fn flush(&self) -> StorageResult<()> {
        self.inner.flush()
    }
}

impl Index<OffsetEntry> {
    /// Records that the batch starting at `position` has base offset `offset`.
    /// Returns false when the index is full and the segment must roll.
    pub fn append(&mut self, offset: Offset, position: u32) -> bool {
        self.push(OffsetEntry { offset, position })
    }

    /// The last indexed batch at or before `target`: where a scan for
    /// `target` starts. The segment start if none is.
    pub fn lookup(&self, target: Offset) -> (Offset, u32) {
        offset_index_lookup(self.inner.bytes(), self.base, target)
    }

    pub fn last(&self) -> Option<(Offset, u32)> {
        self.last_entry().map(|e| (e.offset, e.position))
    }

    /// Checks what a crash could have left behind: entries strictly
    /// increasing in both offset and position, all inside the log.
    pub fn is_sane(&self, log_size: u64) -> bool {
        let mut prev: Option<OffsetEntry> = None;
        for e in self.entries() {
            if e.position as u64 >= log_size.max(1) {
                return false;
            }
            if prev.is_some_and(|p| e.offset <= p.offset || e.position <= p.position) {
                return false;
            }
            prev = Some(e);
        }
        true
    }
}

impl Index<TimeEntry> {
    /// Appends an entry if `timestamp` is larger than the last one; returns
    /// false only when the index is full.
    pub fn maybe_append(&mut self, timestamp: i64, offset: Offset) -> bool {
        if self.last_entry().is_some_and(|e| timestamp <= e.timestamp) {
            return true;
        }
        self.push(TimeEntry { timestamp, offset })
    }

    pub fn last(&self) -> Option<(i64, Offset)> {
        self.last_entry().map(|e| (e.timestamp, e.offset))
    }

    /// Offset from which to scan for the first record with a timestamp
    /// `>= target`: the batch of the last entry whose timestamp is strictly
    /// smaller (every record before it is smaller still), or the segment
    /// start.
    pub fn lookup(&self, target: i64) -> Offset {
        time_index_lookup(self.inner.bytes(), self.base, target)
    }

    pub fn is_sane(&self, next_offset: Offset) -> bool {
        let mut prev: Option<TimeEntry> = None;
        for e in self.entries() {
            if e.offset >= next_offset.max(self.base.plus(1)) {
                return false;
            }
            if prev.is_some_and(|p| e.timestamp <= p.timestamp || e.offset < p.offset) {
                return false;
            }
            prev = Some(e);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_finds_floor_entry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.index");
        let mut idx = OffsetIndex::open(&p, Offset(100), false).unwrap();
        idx.grow_to(80).unwrap();
        assert_eq!(idx.lookup(Offset(150)), (Offset(100), 0));
        assert!(idx.append(Offset(110), 4096));
        assert!(idx.append(Offset(130), 8192));
        assert_eq!(idx.lookup(Offset(109)), (Offset(100), 0));
        assert_eq!(idx.lookup(Offset(110)), (Offset(110), 4096));
        assert_eq!(idx.lookup(Offset(129)), (Offset(110), 4096));
        assert_eq!(idx.lookup(Offset(1000)), (Offset(130), 8192));
        idx.trim().unwrap();
        idx.sync().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 16);
        let reopened = OffsetIndex::open(&p, Offset(100), true).unwrap();
        assert_eq!(reopened.last(), Some((Offset(130), 8192)));
        assert!(reopened.is_sane(10_000));
        assert!(!reopened.is_sane(5000));
    }

    #[test]
    fn time_lookup_starts_before_equal_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TimeIndex::open(&dir.path().join("0.timeindex"), Offset(0), false).unwrap();
        idx.grow_to(120).unwrap();
        idx.maybe_append(1000, Offset(10));
        idx.maybe_append(900, Offset(20)); // not larger: skipped
        idx.maybe_append(2000, Offset(30));
        assert_eq!(idx.last(), Some((2000, Offset(30))));
        assert_eq!(idx.lookup(500), Offset(0));
        assert_eq!(idx.lookup(1000), Offset(0));
        assert_eq!(idx.lookup(1001), Offset(10));
        assert_eq!(idx.lookup(5000), Offset(30));
    }

    #[test]
    fn preallocated_zeros_are_not_sane() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.index");
        let mut idx = OffsetIndex::open(&p, Offset(0), false).unwrap();
        idx.grow_to(800).unwrap();
        idx.append(Offset(5), 100);
        idx.flush().unwrap();
        drop(idx);
        let reopened = OffsetIndex::open(&p, Offset(0), true).unwrap();
        assert!(!reopened.is_sane(1000));
    }
}
