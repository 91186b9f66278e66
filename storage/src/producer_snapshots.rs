//! Producer snapshots (`<offset>.snapshot`, see FORMAT.md): the idempotent
//! producer state written at rolls and at shutdown, and the state rebuilt
//! from the newest snapshot and the batches after it when a log opens.

use std::fs;
use std::path::PathBuf;

use crate::error::{StorageError, StorageResult};
use crate::log::{Inner, Log};
use crate::marker::{self, Marker};
use crate::producer::ProducerState;
use crate::scan::{Scanner, Step};
use crate::segment::SCAN_CHUNK;
use crate::txn_index::AbortedTxn;
use crate::{Offset, SegmentFile};

impl Log {
    fn snapshot_path(&self, offset: Offset) -> PathBuf {
        SegmentFile::ProducerSnapshot.path(&self.dir, offset)
    }

    /// Offsets of the producer snapshots in the directory, oldest first.
    fn snapshots(&self) -> Vec<Offset> {
        let mut out: Vec<Offset> = fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .strip_suffix(".snapshot")?
                            .parse()
                            .ok()
                            .map(Offset)
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Writes the producer state as of `offset` and keeps the two newest
    /// snapshots. A snapshot only shortens the rebuild at open, so it is
    /// replaced atomically but not fsynced.
    pub(crate) fn write_producer_snapshot(
        &self,
        offset: Offset,
        bytes: &[u8],
    ) -> StorageResult<()> {
        let path = self.snapshot_path(offset);
        let tmp = path.with_extension("snapshot.tmp");
        fs::write(&tmp, bytes).map_err(StorageError::io("write producer snapshot", &tmp))?;
        fs::rename(&tmp, &path).map_err(StorageError::io("rename producer snapshot", &path))?;
        let all = self.snapshots();
        for old in all.iter().take(all.len().saturating_sub(2)) {
            let _ = fs::remove_file(self.snapshot_path(*old));
        }
        Ok(())
    }

    /// The producer state at the log end: the newest snapshot at or below
    /// it, then the batches after the snapshot. Producers seen only in
    /// those batches count as active at `now_ms`, as their append times are
    /// not stored. The transaction markers among those batches end their
    /// transactions, and an ABORT missing from its segment's transaction
    /// index (appended after the index was last fsynced) is added again.
    pub(crate) fn rebuild_producers(&self, inner: &mut Inner, now_ms: i64) -> StorageResult<()> {
        let end = inner.segments.log_end();
        let mut state = ProducerState::default();
        let mut from = inner.log_start;
        for offset in self.snapshots().into_iter().rev() {
            if offset > end {
                continue;
            }
            if let Some(s) = fs::read(self.snapshot_path(offset))
                .ok()
                .and_then(|b| ProducerState::from_bytes(&b, now_ms))
            {
                state = s;
                from = offset.max(inner.log_start);
                break;
            }
        }
        let mut aborted = Vec::new();
        for seg in inner.segments.all().filter(|s| s.next_offset > from) {
            let start = if seg.base <= from {
                seg.lookup(from)
            } else {
                0
            };
            let mut scanner = Scanner::new(&seg.file, &seg.log_path, start, seg.size, SCAN_CHUNK);
            while let Step::Batch { position, header } = scanner.peek(false)? {
                if header.base_offset >= from.0 {
                    if header.attributes & crate::batch::CONTROL_FLAG != 0 {
                        let bytes = scanner.range(position, header.total_len())?;
                        if let Some(m) = marker::parse(&header, &bytes) {
                            let first = state.complete_txn(
                                header.producer_id,
                                header.producer_epoch,
                                now_ms,
                            );
                            if let (Marker::Abort, Some(first_offset)) = (m, first) {
                                let last_stable_offset = state
                                    .first_unstable_offset()
                                    .unwrap_or(Offset(header.base_offset + 1));
                                aborted.push((
                                    seg.base,
                                    AbortedTxn {
                                        producer_id: header.producer_id,
                                        first_offset,
                                        last_offset: Offset(header.base_offset),
                                        last_stable_offset,
                                    },
                                ));
                            }
                        }
                    } else if crate::producer::is_idempotent(&header) {
                        state.update(&header, now_ms);
                    }
                }
                scanner.advance(&header);
            }
        }
        for (base, entry) in aborted {
            if let Some(index) = inner.segments.txn_index_mut(base) {
                if !index.has_marker(entry.last_offset) {
                    index.append(entry)?;
                }
            }
        }
        inner.producers = state;
        Ok(())
    }
}
