//! Log compaction (Kafka's `LogCleaner`, one log at a time): the cleaner
//! keeps, for every key, only its latest record. One pass:
//!
//! 1. Under the log's mutex, takes a view of the sealed segments and the
//!    dirty section: from the first dirty offset (the cleaner checkpoint)
//!    to the first uncleanable one (the active segment, or the first
//!    segment younger than `min.compaction.lag.ms`).
//! 2. Without the mutex, builds a key → latest offset map over the dirty
//!    section, bounded in bytes; when it fills up, the pass covers the
//!    dirty records mapped so far and the next pass continues.
//! 3. Rewrites every sealed segment up to the end of the mapped section,
//!    in groups of consecutive segments that fit in `segment.bytes` (so
//!    that small cleaned segments merge), keeping a record when its key's
//!    latest offset is its own (or its key is unmapped, or it lies past the
//!    mapped section). Tombstones are kept for `delete.retention.ms` after
//!    a pass first sees them (the batch carries its delete horizon, as in
//!    KIP-534); keyless records are dropped. Batches keep their base
//!    offset, last offset delta, producer id, epoch and base sequence, so
//!    offsets are preserved (gaps are legal) and idempotent producers stay
//!    deduplicated; compressed batches are written back with their codec.
//! 4. Swaps each group in crash-safely (`swap.rs`) and records the new
//!    first dirty offset.
//!
//! The active segment is never touched. The cleaner runs on the broker's
//! cleaner thread; everything here does blocking file I/O.

use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use tracing::{debug, info, warn};

use crate::batch::{self, BatchHeader, HeaderEdit, HEADER_LEN};
use crate::checkpoint;
use crate::codec::{self, Codec};
use crate::error::{StorageError, StorageResult};
use crate::log::Log;
use crate::offset_map::OffsetMap;
use crate::record::{self, RecordView};
use crate::scan::{Scanner, Step};
use crate::segment::SCAN_CHUNK;
use crate::swap;
use crate::txn_index::{AbortedTxn, TxnIndex};
use crate::Offset;

/// How dirty a compacted log is.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Cleanability {
    /// Bytes of sealed segments below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of sealed segments from the first dirty offset to the first
    /// uncleanable one.
    pub dirty_bytes: u64,
    /// A dirty record is older than `max.compaction.lag.ms`: clean whatever
    /// the ratio.
    pub overdue: bool,
    /// `min.cleanable.dirty.ratio`.
    pub min_ratio: f64,
}

impl Cleanability {
    /// Dirty bytes over all cleanable bytes.
    pub fn ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / total as f64
        }
    }

    /// Whether a pass is due.
    pub fn due(&self) -> bool {
        self.dirty_bytes > 0 && (self.overdue || self.ratio() >= self.min_ratio)
    }
}

/// What one pass did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Bytes of the dirty section the pass covered.
    pub dirty_bytes: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub segments_before: usize,
    pub segments_after: usize,
    pub records_removed: u64,
}

/// A sealed segment as the pass sees it, readable without the mutex.
struct SegmentView {
    base: Offset,
    next_offset: Offset,
    size: u64,
    max_timestamp: i64,
    file: Arc<File>,
    path: Arc<Path>,
    aborted: Vec<AbortedTxn>,
}

/// Whether a batch holds records of a transaction that was aborted.
fn is_aborted(header: &BatchHeader, aborted: &[AbortedTxn]) -> bool {
    header.attributes & batch::CONTROL_FLAG == 0
        && crate::producer::is_transactional(header)
        && aborted.iter().any(|t| {
            t.producer_id == header.producer_id
                && t.first_offset.0 <= header.base_offset
                && header.base_offset < t.last_offset.0
        })
}

/// Walks every batch of a segment, handing its bytes to `f`.
fn for_each_batch(
    seg: &SegmentView,
    mut f: impl FnMut(&[u8], &BatchHeader) -> StorageResult<bool>,
) -> StorageResult<()> {
    let mut scanner = Scanner::new(&seg.file, &seg.path, 0, seg.size, SCAN_CHUNK);
    loop {
        match scanner.peek(false)? {
            Step::End => return Ok(()),
            Step::Corrupt { position, reason } => {
                return Err(StorageError::UnreadableRecords {
                    position: position as usize,
                    reason: format!("{}: {reason}", seg.path.display()),
                })
            }
            Step::Batch { position, header } => {
                let bytes = scanner.range(position, header.total_len())?;
                if !f(&bytes, &header)? {
                    return Ok(());
                }
                scanner.advance(&header);
            }
        }
    }
}

/// A batch's records, decompressed (`None` for a control batch, which the
/// cleaner keeps as it is).
fn open_records<'a>(
    bytes: &'a [u8],
    header: &BatchHeader,
    limit: usize,
) -> StorageResult<Option<(Codec, Cow<'a, [u8]>)>> {
    if header.attributes & batch::CONTROL_FLAG != 0 {
        return Ok(None);
    }
    let bad = |reason: String| StorageError::UnreadableRecords {
        position: 0,
        reason,
    };
    let codec = Codec::from_id(header.compression())
        .ok_or_else(|| bad(format!("unknown codec {}", header.compression())))?;
    let plain =
        codec::decompress(codec, &bytes[HEADER_LEN..], limit).map_err(|e| bad(e.to_string()))?;
    Ok(Some((codec, plain)))
}

impl Log {
    /// How dirty this log is, or `None` if it is not compacted (or has
    /// nothing sealed).
    pub fn cleanability(&self, now_ms: i64) -> Option<Cleanability> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !inner.config.compact || inner.deleted {
            return None;
        }
        let config = &inner.config;
        let first_dirty = inner.first_dirty.max(inner.log_start);
        let lag_limit = now_ms.saturating_sub(config.min_compaction_lag_ms);
        let mut clean_bytes = 0;
        let mut dirty_bytes = 0;
        let mut overdue = false;
        for s in inner.segments.sealed() {
            if config.min_compaction_lag_ms > 0 && s.max_timestamp > lag_limit {
                break;
            }
            if s.next_offset <= first_dirty {
                clean_bytes += s.size;
            } else {
                dirty_bytes += s.size;
                if s.max_timestamp >= 0
                    && now_ms.saturating_sub(s.max_timestamp) > config.max_compaction_lag_ms
                {
                    overdue = true;
                }
            }
        }
        Some(Cleanability {
            clean_bytes,
            dirty_bytes,
            overdue,
            min_ratio: config.min_cleanable_ratio_ppm as f64 / 1e6,
        })
    }

    /// One cleaning pass, if the log is compacted and has a dirty sealed
    /// section. `map_bytes` bounds the key map; `throttle` is told of every
    /// batch read and may sleep to hold the cleaner's I/O rate. Blocking.
    pub fn clean(
        &self,
        map_bytes: usize,
        now_ms: i64,
        throttle: &mut dyn FnMut(u64),
    ) -> StorageResult<Option<CleanStats>> {
        // 1. The view, under the mutex. Segments with records of an open
        // transaction wait until it ends, as Kafka's cleaner stops at the
        // last stable offset.
        let lso = self.last_stable_offset();
        let (config, first_dirty, views, aborted) = {
            let inner = self.lock()?;
            if !inner.config.compact {
                return Ok(None);
            }
            let first_dirty = inner.first_dirty.max(inner.log_start);
            let lag_limit = now_ms.saturating_sub(inner.config.min_compaction_lag_ms);
            let views: Vec<SegmentView> = inner
                .segments
                .sealed()
                .take_while(|s| {
                    (inner.config.min_compaction_lag_ms <= 0 || s.max_timestamp <= lag_limit)
                        && s.next_offset <= lso
                })
                .map(|s| SegmentView {
                    base: s.base,
                    next_offset: s.next_offset,
                    size: s.size,
                    max_timestamp: s.max_timestamp,
                    file: Arc::clone(&s.file),
                    path: Arc::clone(&s.log_path),
                    aborted: s.txn_index.entries().to_vec(),
                })
                .collect();
            let aborted: Vec<AbortedTxn> = inner
                .segments
                .all()
                .flat_map(|s| s.txn_index.entries().iter().copied())
                .collect();
            (inner.config.clone(), first_dirty, views, aborted)
        };
        let first_uncleanable = views.last().map_or(first_dirty, |v| v.next_offset);
        if first_uncleanable <= first_dirty {
            return Ok(None);
        }
        let limit = config.max_decompressed_bytes;

        // 2. The key map over the dirty section.
        let mut map = OffsetMap::new(map_bytes);
        let mut map_end = first_uncleanable;
        let mut stats = CleanStats::default();
        'segments: for seg in views.iter().filter(|v| v.next_offset > first_dirty) {
            stats.dirty_bytes += seg.size;
            let mut full_at = None;
            for_each_batch(seg, |bytes, header| {
                throttle(bytes.len() as u64);
                stats.bytes_read += bytes.len() as u64;
                if header.last_offset() < first_dirty.0 || is_aborted(header, &aborted) {
                    return Ok(true);
                }
                let Some((_, plain)) = open_records(bytes, header, limit)? else {
                    return Ok(true);
                };
                for r in record::records(&plain, header.record_count).map_err(|reason| {
                    StorageError::UnreadableRecords {
                        position: 0,
                        reason,
                    }
                })? {
                    let offset = header.base_offset + r.offset_delta;
                    if offset < first_dirty.0 {
                        continue;
                    }
                    if let Some(key) = r.key {
                        if !map.put(key, offset) {
                            full_at = Some(offset);
                            return Ok(false);
                        }
                    }
                }
                Ok(true)
            })?;
            if let Some(at) = full_at {
                map_end = Offset(at);
                break 'segments;
            }
        }
        if map_end <= first_dirty {
            warn!(dir = %self.dir.display(), map_bytes, "log.cleaner.dedupe.buffer.size holds no key of this log; not cleaning it");
            return Ok(None);
        }

        // 3. and 4. Rewrite and swap, group by group.
        let rewrite: Vec<&SegmentView> = views.iter().filter(|v| v.base < map_end).collect();
        stats.segments_before = rewrite.len();
        let mut groups: Vec<Vec<&SegmentView>> = Vec::new();
        for v in rewrite {
            let fits = groups.last().is_some_and(|g| {
                let size: u64 = g.iter().map(|s| s.size).sum();
                size + v.size <= config.segment_bytes
                    && v.next_offset.0 - g[0].base.0 <= u32::MAX as i64
            });
            if fits {
                groups.last_mut().expect("a group").push(v);
            } else {
                groups.push(vec![v]);
            }
        }
        for group in &groups {
            let base = group[0].base;
            let end = group.last().expect("a group").next_offset;
            let staging = swap::staging_dir(&self.dir, base, end);
            let _ = fs::remove_dir_all(&staging);
            fs::create_dir_all(&staging)
                .map_err(StorageError::io("create cleaner directory", &staging))?;
            let path = crate::SegmentFile::Log.path(&staging, base);
            let file =
                File::create(&path).map_err(StorageError::io("create cleaned segment", &path))?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            for seg in group {
                for_each_batch(seg, |bytes, header| {
                    throttle(bytes.len() as u64);
                    stats.bytes_read += bytes.len() as u64;
                    // Records of aborted transactions go whole: no reader
                    // may see them, and their markers stay.
                    if is_aborted(header, &aborted) {
                        stats.records_removed += header.record_count.max(0) as u64;
                        return Ok(true);
                    }
                    let kept = filter_batch(bytes, header, &map, map_end, now_ms, &config, limit)?;
                    stats.records_removed += kept.removed;
                    if let Some(b) = kept.bytes {
                        stats.bytes_written += b.len() as u64;
                        out.write_all(&b)
                            .map_err(StorageError::io("write cleaned segment", &path))?;
                    }
                    Ok(true)
                })?;
            }
            let file = out
                .into_inner()
                .map_err(|e| StorageError::io("write cleaned segment", &path)(e.into_error()))?;
            file.sync_all()
                .map_err(StorageError::io("fsync cleaned segment", &path))?;
            drop(file);
            // The group's aborted transactions stay indexed with it.
            let mut txn_index = TxnIndex::open(&crate::SegmentFile::TxnIndex.path(&staging, base))?;
            for seg in group {
                for entry in &seg.aborted {
                    txn_index.append(*entry)?;
                }
            }
            txn_index.sync()?;
            drop(txn_index);
            let olds: Vec<Offset> = group.iter().map(|s| s.base).collect();
            if !self.swap_in(&staging, base, end, &olds, now_ms)? {
                // The segments changed meanwhile (retention or DeleteRecords
                // removed some): the pass ends here and the next starts over.
                let _ = fs::remove_dir_all(&staging);
                debug!(dir = %self.dir.display(), base = base.0, "segments changed during cleaning; pass abandoned");
                return Ok(None);
            }
            stats.segments_after += 1;
            // Everything below the group's end is now cleaned against every
            // key up to the mapped end: a pass a crash interrupts keeps the
            // groups it finished.
            self.advance_first_dirty(end.min(map_end))?;
        }
        self.advance_first_dirty(map_end)?;
        let youngest = views.last().map_or(-1, |v| v.max_timestamp);
        info!(
            dir = %self.dir.display(),
            first_dirty = map_end.0,
            segments_before = stats.segments_before,
            segments_after = stats.segments_after,
            bytes_read = stats.bytes_read,
            bytes_written = stats.bytes_written,
            records_removed = stats.records_removed,
            keys = map.len(),
            youngest_cleaned_ms = youngest,
            "cleaned log"
        );
        Ok(Some(stats))
    }
}

impl Log {
    /// Records a new first dirty offset, if it moves forward.
    fn advance_first_dirty(&self, to: Offset) -> StorageResult<()> {
        if to <= self.lock()?.first_dirty {
            return Ok(());
        }
        checkpoint::write_first_dirty(&self.dir, to)?;
        let mut inner = self.lock()?;
        inner.first_dirty = inner.first_dirty.max(to);
        Ok(())
    }
}

/// What filtering one batch left.
struct Kept<'a> {
    /// The batch to write, if any record (or a control batch) remains:
    /// the batch itself when nothing in it changed.
    bytes: Option<Cow<'a, [u8]>>,
    removed: u64,
}

/// Kafka's retention rule for one batch of a compacted log.
fn filter_batch<'a>(
    bytes: &'a [u8],
    header: &BatchHeader,
    map: &OffsetMap,
    map_end: Offset,
    now_ms: i64,
    config: &crate::LogConfig,
    limit: usize,
) -> StorageResult<Kept<'a>> {
    let Some((codec, plain)) = open_records(bytes, header, limit)? else {
        return Ok(Kept {
            bytes: Some(Cow::Borrowed(bytes)),
            removed: 0,
        });
    };
    let records = record::records(&plain, header.record_count).map_err(|reason| {
        StorageError::UnreadableRecords {
            position: 0,
            reason,
        }
    })?;
    let horizon =
        (header.attributes & batch::DELETE_HORIZON_FLAG != 0).then_some(header.base_timestamp);
    let keep = |r: &RecordView<'_>| -> bool {
        let offset = header.base_offset + r.offset_delta;
        if offset >= map_end.0 {
            return true;
        }
        let Some(key) = r.key else {
            // A compacted log keeps records by key; one without a key (from
            // before the topic was compacted) goes, as in Kafka.
            return false;
        };
        if map.get(key).is_some_and(|latest| latest > offset) {
            return false;
        }
        // The latest record of its key: a tombstone stays until its delete
        // horizon has passed.
        !(r.tombstone && horizon.is_some_and(|h| now_ms > h))
    };
    let kept: Vec<&RecordView<'_>> = records.iter().filter(|r| keep(r)).collect();
    let removed = (records.len() - kept.len()) as u64;
    if kept.is_empty() {
        return Ok(Kept {
            bytes: None,
            removed,
        });
    }
    // The first pass that sees a tombstone (in the mapped section) starts
    // its delete.retention.ms.
    let new_horizon = (horizon.is_none()
        && kept
            .iter()
            .any(|r| r.tombstone && header.base_offset + r.offset_delta < map_end.0))
    .then(|| now_ms.saturating_add(config.delete_retention_ms));
    if removed == 0 && new_horizon.is_none() {
        return Ok(Kept {
            bytes: Some(Cow::Borrowed(bytes)),
            removed,
        });
    }
    let mut area = Vec::with_capacity(plain.len());
    match new_horizon {
        Some(h) => {
            // Record timestamps are deltas from the base timestamp, which
            // now holds the horizon: each delta is taken again from it.
            for r in &kept {
                let ts = header.base_timestamp.saturating_add(r.timestamp_delta);
                r.encode_with_timestamp_delta(r.attributes, ts.saturating_sub(h), &mut area);
            }
        }
        None => {
            for r in &kept {
                area.extend_from_slice(r.bytes);
            }
        }
    }
    let packed = codec::compress(codec, &area, config.compression_levels).map_err(|e| {
        StorageError::UnreadableRecords {
            position: 0,
            reason: e.to_string(),
        }
    })?;
    let edit = HeaderEdit {
        record_count: Some(kept.len() as i32),
        delete_horizon_ms: new_horizon,
    };
    Ok(Kept {
        bytes: Some(Cow::Owned(batch::rewrite(
            bytes,
            codec as u8,
            &packed,
            edit,
        ))),
        removed,
    })
}
