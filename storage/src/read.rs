//! Reading a log: whole batches from an offset up to a byte limit, and the
//! batches ListOffsets looks inside. Positions are looked up under the
//! log's mutex; the files are read outside it.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tracing::warn;

use crate::error::{StorageError, StorageResult};
use crate::log::Log;
use crate::scan::{Scanner, Step};
use crate::segment::{Segment, SCAN_CHUNK};
use crate::select::{BatchSelection, Verdict};
use crate::txn_index::AbortedTxn;
use crate::Offset;

/// Whole batches read from the log, with the offsets a Fetch response reports.
#[derive(Clone, Debug)]
pub struct FetchData {
    pub records: Bytes,
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
}

/// Whole batches read from the log as regions of its segment files, in
/// order, with the offsets a Fetch response reports.
#[derive(Clone, Debug)]
pub struct FileData {
    pub regions: Vec<FileRegion>,
    /// The offset after the last record of the regions (`None` when they
    /// are empty): where a read_committed answer's aborted transactions
    /// end, which the caller cannot read from bytes it never sees.
    pub end_offset: Option<Offset>,
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
}

impl FileData {
    /// The record bytes in all regions.
    pub fn len(&self) -> usize {
        self.regions.iter().map(|r| r.len as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.iter().all(|r| r.len == 0)
    }
}

/// `len` bytes at `position` of a segment file, whole batches. The file
/// stays open as long as the region lives, even if retention deletes the
/// segment meanwhile; its bytes never change, as segments are only appended
/// to.
#[derive(Clone, Debug)]
pub struct FileRegion {
    pub file: Arc<fs::File>,
    pub path: Arc<Path>,
    pub position: u64,
    pub len: u64,
}

/// How much a read that hands out file regions reads at a batch's header:
/// enough for the headers of several small batches at once, little of a
/// large batch's records.
const HEADER_READ: usize = 16 * 1024;

/// A segment to read outside the lock: its file stays open even if
/// retention deletes it meanwhile.
struct SegmentView {
    file: Arc<fs::File>,
    path: Arc<Path>,
    size: u64,
    start: u64,
}

/// Offers the batches of `views` from `offset` on to one selection (the
/// rule every read shares), reading ahead `chunk` bytes at a time, and
/// hands each segment's selected byte range to `take`. Returns the offset
/// after the last batch taken.
fn select(
    views: &[SegmentView],
    offset: Offset,
    max_bytes: usize,
    min_one_batch: bool,
    end: Offset,
    chunk: usize,
    mut take: impl FnMut(&mut Scanner<'_>, &SegmentView, u64, u64) -> StorageResult<()>,
) -> StorageResult<Option<Offset>> {
    let mut selection = BatchSelection::new(offset, max_bytes, min_one_batch).ending_at(end);
    let mut taken_end = None;
    for view in views {
        let mut scanner = Scanner::new(&view.file, &view.path, view.start, view.size, chunk);
        selection.next_segment();
        let mut exhausted = true;
        loop {
            match scanner.peek(false)? {
                Step::End => break,
                Step::Corrupt { position, reason } => {
                    warn!(segment = %view.path.display(), position, reason, "unreadable batch while reading");
                    break;
                }
                Step::Batch { position, header } => match selection.offer(position, &header) {
                    Verdict::Skip => scanner.advance(&header),
                    Verdict::Take => {
                        taken_end = Some(Offset(header.last_offset() + 1));
                        scanner.advance(&header);
                    }
                    Verdict::Stop => {
                        exhausted = false;
                        break;
                    }
                },
            }
        }
        if let Some((start, end)) = selection.range() {
            take(&mut scanner, view, start, end)?;
        }
        if !exhausted || selection.is_full() {
            break;
        }
    }
    Ok(taken_end)
}

impl Log {
    /// Reads whole batches starting with the one that holds `offset`, up to
    /// `max_bytes` in total; the first batch is returned even when larger
    /// than `max_bytes` if `min_one_batch` is set, so that consumers always
    /// make progress (KIP-74).
    pub fn read(
        &self,
        offset: Offset,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> StorageResult<FetchData> {
        self.read_until(offset, max_bytes, min_one_batch, Offset(i64::MAX))
    }

    /// As [`Log::read`], but no batch starting at or after `end` is
    /// returned: a read_committed read passes the last stable offset.
    pub fn read_until(
        &self,
        offset: Offset,
        max_bytes: usize,
        min_one_batch: bool,
        end: Offset,
    ) -> StorageResult<FetchData> {
        let (views, high_watermark, log_start_offset) = self.views(offset, max_bytes)?;
        let mut parts: Vec<Bytes> = Vec::new();
        // Large reads: the batches' bytes come with their headers.
        let chunk = max_bytes.clamp(SCAN_CHUNK, 16 * 1024 * 1024);
        select(
            &views,
            offset,
            max_bytes,
            min_one_batch,
            end,
            chunk,
            |scanner, _, start, end| {
                parts.push(scanner.range(start, (end - start) as usize)?);
                Ok(())
            },
        )?;
        let records = match parts.len() {
            0 => Bytes::new(),
            1 => parts.pop().expect("one part"),
            _ => {
                let mut joined = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
                for p in parts {
                    joined.extend_from_slice(&p);
                }
                joined.freeze()
            }
        };
        Ok(FetchData {
            records,
            high_watermark,
            log_start_offset,
        })
    }

    /// As [`Log::read_until`], but the batches are handed out as regions of
    /// the segment files, to be sent to a socket without passing through
    /// user space. Only the batch headers are read here, with small reads.
    pub fn read_regions_until(
        &self,
        offset: Offset,
        max_bytes: usize,
        min_one_batch: bool,
        end: Offset,
    ) -> StorageResult<FileData> {
        let (views, high_watermark, log_start_offset) = self.views(offset, max_bytes)?;
        let mut regions = Vec::new();
        let end_offset = select(
            &views,
            offset,
            max_bytes,
            min_one_batch,
            end,
            HEADER_READ,
            |_, view, start, end| {
                regions.push(FileRegion {
                    file: Arc::clone(&view.file),
                    path: Arc::clone(&view.path),
                    position: start,
                    len: end - start,
                });
                Ok(())
            },
        )?;
        Ok(FileData {
            regions,
            end_offset,
            high_watermark,
            log_start_offset,
        })
    }

    /// The segments a read at `offset` of up to `max_bytes` looks at, with
    /// the high watermark and log start, taken under the mutex.
    fn views(
        &self,
        offset: Offset,
        max_bytes: usize,
    ) -> StorageResult<(Vec<SegmentView>, Offset, Offset)> {
        let inner = self.lock()?;
        let log_end = inner.segments.log_end();
        if offset < inner.log_start || offset > log_end {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start: inner.log_start,
                log_end,
            });
        }
        let mut views = Vec::new();
        if offset < log_end {
            let first = inner
                .segments
                .base_holding(offset)
                .unwrap_or(inner.log_start);
            // The segment holding the offset, then the following ones
            // only until they hold `max_bytes`: a read never returns
            // more from them, so a read of old data costs the same
            // however many segments come after it.
            let mut following = 0u64;
            for seg in inner.segments.range(first..) {
                let holds_offset = seg.base == first;
                views.push(SegmentView {
                    file: Arc::clone(&seg.file),
                    path: Arc::clone(&seg.log_path),
                    size: seg.size,
                    start: if holds_offset { seg.lookup(offset) } else { 0 },
                });
                if !holds_offset {
                    following += seg.size;
                    if following > 0 && following >= max_bytes as u64 {
                        break;
                    }
                }
            }
        }
        Ok((views, log_end, inner.log_start))
    }

    /// The aborted transactions with records in `[from, to)`, oldest first:
    /// what a read_committed fetch of that range reports. A transaction's
    /// entry is in the segment holding its ABORT marker, which is at or
    /// after its records, so the segments from the one holding `from` on
    /// are enough.
    pub fn aborted_txns(&self, from: Offset, to: Offset) -> StorageResult<Vec<AbortedTxn>> {
        let inner = self.lock()?;
        let first = inner.segments.base_holding(from).unwrap_or(from);
        let mut out: Vec<AbortedTxn> = inner
            .segments
            .range(first..)
            .flat_map(|s| s.txn_index.entries().iter().copied())
            .filter(|t| t.overlaps(from, to))
            .collect();
        out.sort_by_key(|t| t.first_offset);
        Ok(out)
    }

    /// The first batch holding a record with a timestamp `>= ts`, for
    /// ListOffsets by timestamp; the caller finds the record inside it.
    pub fn batch_for_timestamp(&self, ts: i64) -> StorageResult<Option<Bytes>> {
        let view = {
            let inner = self.lock()?;
            let view = inner
                .segments
                .all()
                .find(|s| s.max_timestamp >= ts)
                .map(|s| SegmentView {
                    file: Arc::clone(&s.file),
                    path: Arc::clone(&s.log_path),
                    size: s.size,
                    start: s.lookup_timestamp(ts),
                });
            view
        };
        let Some(view) = view else { return Ok(None) };
        let mut scanner = Scanner::new(&view.file, &view.path, view.start, view.size, SCAN_CHUNK);
        loop {
            match scanner.peek(false)? {
                Step::Batch { position, header } if header.max_timestamp >= ts => {
                    return scanner.range(position, header.total_len()).map(Some);
                }
                Step::Batch { header, .. } => scanner.advance(&header),
                Step::End | Step::Corrupt { .. } => return Ok(None),
            }
        }
    }

    /// The first batch carrying the log's largest timestamp, for ListOffsets
    /// with the max-timestamp query.
    pub fn batch_with_max_timestamp(&self) -> StorageResult<Option<Bytes>> {
        let target = {
            let inner = self.lock()?;
            let mut best: Option<&Segment> = None;
            for s in inner.segments.all() {
                if s.max_timestamp >= 0 && best.is_none_or(|b| s.max_timestamp > b.max_timestamp) {
                    best = Some(s);
                }
            }
            // After DeleteRecords the record may be below the log start,
            // in the segment straddling it: the answer starts there.
            best.map(|s| s.offset_of_max_timestamp.max(inner.log_start))
        };
        let Some(offset) = target else {
            return Ok(None);
        };
        let data = self.read(offset, 1, true)?;
        Ok(Some(data.records).filter(|r| !r.is_empty()))
    }
}
