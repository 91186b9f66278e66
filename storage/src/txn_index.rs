//! The aborted-transaction index of one segment (Kafka's `.txnindex`): one
//! fixed-size entry per transaction whose ABORT marker the segment holds,
//! so that a read_committed fetch can tell its consumer which producers'
//! records in the range it returns to drop. Entries are appended when the
//! marker is appended, rebuilt by recovery, and kept in memory as well (a
//! segment rarely holds more than a few).
//!
//! ```text
//! offset  size  field
//!      0     2  version (0)
//!      2     8  producer id
//!     10     8  first offset of the transaction
//!     18     8  offset of its ABORT marker
//!     26     8  last stable offset when it was aborted
//! ```
//! Big-endian, as Kafka writes it; a torn last entry is ignored.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{StorageError, StorageResult};
use crate::Offset;

/// Bytes per entry.
pub const ENTRY_LEN: usize = 34;

/// One aborted transaction of one producer on one partition.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// Offset of the transaction's first record on this partition.
    pub first_offset: Offset,
    /// Offset of its ABORT marker.
    pub last_offset: Offset,
    /// The partition's last stable offset when the marker was written.
    pub last_stable_offset: Offset,
}

impl AbortedTxn {
    pub fn to_bytes(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[0..2].copy_from_slice(&0i16.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.0.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.0.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.0.to_be_bytes());
        out
    }

    /// Parses every whole entry of an index file's bytes.
    pub fn parse_all(bytes: &[u8]) -> Vec<AbortedTxn> {
        let i64_at =
            |c: &[u8], at: usize| i64::from_be_bytes(c[at..at + 8].try_into().expect("8 bytes"));
        bytes
            .chunks_exact(ENTRY_LEN)
            .map(|c| AbortedTxn {
                producer_id: i64_at(c, 2),
                first_offset: Offset(i64_at(c, 10)),
                last_offset: Offset(i64_at(c, 18)),
                last_stable_offset: Offset(i64_at(c, 26)),
            })
            .collect()
    }

    /// Whether the transaction has records in `[from, to)`.
    pub fn overlaps(&self, from: Offset, to: Offset) -> bool {
        self.last_offset >= from && self.first_offset < to
    }
}

/// A segment's transaction index. Owned by its segment, behind the log's
/// mutex.
pub(crate) struct TxnIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
    /// Opened at the first append, so that segments without aborted
    /// transactions have no file.
    file: Option<File>,
}

impl TxnIndex {
    /// The index at `path`, read if it exists.
    pub fn open(path: &Path) -> StorageResult<TxnIndex> {
        let entries = match std::fs::read(path) {
            Ok(b) => AbortedTxn::parse_all(&b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StorageError::io("read transaction index", path)(e)),
        };
        Ok(TxnIndex {
            path: path.to_owned(),
            entries,
            file: None,
        })
    }

    /// Forgets every entry and removes the file, before recovery rebuilds it.
    pub fn clear(&mut self) -> StorageResult<()> {
        self.entries.clear();
        self.file = None;
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("remove transaction index", &self.path)(e)),
        }
    }

    /// Drops the entries whose markers are at or after `end`, which a
    /// recovery cut off the segment, rewriting the file.
    pub fn truncate_from(&mut self, end: Offset) -> StorageResult<()> {
        if self.entries.iter().all(|e| e.last_offset < end) {
            return Ok(());
        }
        let kept: Vec<AbortedTxn> = self
            .entries
            .iter()
            .copied()
            .filter(|e| e.last_offset < end)
            .collect();
        self.clear()?;
        for e in kept {
            self.append(e)?;
        }
        Ok(())
    }

    /// Whether the index has an entry for the marker at `last_offset`.
    pub fn has_marker(&self, last_offset: Offset) -> bool {
        self.entries.iter().any(|e| e.last_offset == last_offset)
    }

    pub fn append(&mut self, entry: AbortedTxn) -> StorageResult<()> {
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(StorageError::io("open transaction index", &self.path))?;
            // A torn entry from a crash is cut before appending after it.
            let len = f
                .metadata()
                .map_err(StorageError::io("stat transaction index", &self.path))?
                .len();
            if len % ENTRY_LEN as u64 != 0 {
                f.set_len(len - len % ENTRY_LEN as u64)
                    .map_err(StorageError::io("truncate transaction index", &self.path))?;
            }
            self.file = Some(f);
        }
        let f = self.file.as_mut().expect("opened above");
        f.write_all(&entry.to_bytes())
            .map_err(StorageError::io("append to transaction index", &self.path))?;
        self.entries.push(entry);
        Ok(())
    }

    pub fn sync(&self) -> StorageResult<()> {
        match &self.file {
            Some(f) => f
                .sync_data()
                .map_err(StorageError::io("fsync transaction index", &self.path)),
            None => Ok(()),
        }
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_survive_reopening_with_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        let a = AbortedTxn {
            producer_id: 7,
            first_offset: Offset(3),
            last_offset: Offset(9),
            last_stable_offset: Offset(3),
        };
        let mut idx = TxnIndex::open(&path).unwrap();
        assert!(idx.entries().is_empty() && !path.exists());
        idx.append(a).unwrap();
        idx.sync().unwrap();
        // A crash mid-entry leaves a partial one behind.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[1, 2, 3]).unwrap();
        let mut again = TxnIndex::open(&path).unwrap();
        assert_eq!(again.entries(), &[a]);
        let b = AbortedTxn {
            producer_id: 8,
            ..a
        };
        again.append(b).unwrap();
        assert_eq!(TxnIndex::open(&path).unwrap().entries(), &[a, b]);
        assert!(a.overlaps(Offset(9), Offset(20)) && !a.overlaps(Offset(10), Offset(20)));
        assert!(!a.overlaps(Offset(0), Offset(3)) && a.overlaps(Offset(0), Offset(4)));
        again.clear().unwrap();
        assert!(!path.exists());
    }
}
