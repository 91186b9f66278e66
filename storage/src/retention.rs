//! Retention of a log's local segments: by time and size for logs without
//! a cold tier, by a caller's rule for tiered ones, and DeleteRecords'
//! moves of the log start. Only whole sealed segments are deleted; the
//! active segment is rolled first when it has expired.

use tracing::info;

use crate::checkpoint;
use crate::error::{StorageError, StorageResult};
use crate::log::Log;
use crate::segment::Segment;
use crate::Offset;

/// A segment as retention sees it.
#[derive(Copy, Clone, Debug)]
pub struct SegmentInfo {
    pub base_offset: Offset,
    /// Offset after the segment's last record.
    pub next_offset: Offset,
    pub size: u64,
    /// Newest record's timestamp, or the file's modification time.
    pub last_modified_ms: i64,
}

/// What a retention pass removed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
}

impl Log {
    /// Deletes whole segments that `retention.ms` or `retention.bytes`
    /// expired, never the active segment (an expired, non-empty active
    /// segment is rolled first so that it can go). For logs without a cold
    /// tier.
    pub fn enforce_retention(&self, now_ms: i64) -> StorageResult<RetentionOutcome> {
        let config = self.config();
        if config.retention_ms >= 0 {
            self.roll_if_older_than(now_ms, config.retention_ms)?;
        }
        self.delete_oldest_while(|seg, local_bytes| {
            let by_time =
                config.retention_ms >= 0 && now_ms - seg.last_modified_ms > config.retention_ms;
            let by_bytes = config.retention_bytes >= 0
                && local_bytes - seg.size >= config.retention_bytes as u64;
            by_time || by_bytes
        })
    }

    /// Rolls the active segment if it is non-empty and its newest record is
    /// older than `max_age_ms`, so that retention can delete it.
    pub fn roll_if_older_than(&self, now_ms: i64, max_age_ms: i64) -> StorageResult<()> {
        let mut inner = self.lock()?;
        if inner.segments.active().size > 0
            && now_ms - inner.segments.active().last_modified_ms() > max_age_ms
        {
            self.roll(&mut inner, now_ms)?;
        }
        Ok(())
    }

    /// Deletes sealed segments from the oldest on while `delete` says so,
    /// given the segment and the bytes the log holds before deleting it.
    /// The active segment is never deleted. The local log start moves to the
    /// first segment left.
    pub fn delete_oldest_while(
        &self,
        mut delete: impl FnMut(&SegmentInfo, u64) -> bool,
    ) -> StorageResult<RetentionOutcome> {
        let removed: Vec<(Offset, u64)> = {
            let mut inner = self.lock()?;
            let mut total: u64 = inner.segments.size_bytes();
            let mut removed = Vec::new();
            while inner.segments.len() > 1 {
                let first = inner.segments.first();
                let info = SegmentInfo {
                    base_offset: first.base,
                    next_offset: first.next_offset,
                    size: first.size,
                    last_modified_ms: first.last_modified_ms(),
                };
                if !delete(&info, total) {
                    break;
                }
                let seg = inner
                    .segments
                    .pop_oldest_sealed()
                    .expect("not the active one");
                total -= seg.size;
                removed.push((seg.base, seg.size));
            }
            let first_base = inner.segments.first_base();
            inner.log_start = inner.log_start.max(first_base);
            removed
        };
        let mut outcome = RetentionOutcome::default();
        for (base, size) in removed {
            Segment::delete_files(&self.dir, base)?;
            outcome.deleted_segments += 1;
            outcome.deleted_bytes += size;
        }
        if outcome.deleted_segments > 0 {
            info!(
                dir = %self.dir.display(),
                deleted_segments = outcome.deleted_segments,
                deleted_bytes = outcome.deleted_bytes,
                log_start = self.log_start_offset().0,
                "retention deleted local segments"
            );
        }
        Ok(outcome)
    }

    /// Moves the log start to `offset` (DeleteRecords): reads below it fail
    /// with OffsetOutOfRange from now on, segments wholly below it are
    /// deleted, and the new start is persisted (written, fsynced, renamed)
    /// before this returns. An offset at or below the start changes
    /// nothing; one past the log end is refused. Returns the log start.
    pub fn delete_records_before(&self, offset: Offset) -> StorageResult<Offset> {
        let removed = {
            let mut inner = self.lock()?;
            let log_end = inner.segments.log_end();
            if offset > log_end {
                return Err(StorageError::OffsetOutOfRange {
                    requested: offset,
                    log_start: inner.log_start,
                    log_end,
                });
            }
            if offset <= inner.log_start {
                return Ok(inner.log_start);
            }
            checkpoint::write_log_start(&self.dir, offset)?;
            inner.log_start = offset;
            let mut removed = Vec::new();
            while inner.segments.len() > 1 && inner.segments.first().next_offset <= offset {
                let seg = inner
                    .segments
                    .pop_oldest_sealed()
                    .expect("not the active one");
                removed.push(seg.base);
            }
            removed
        };
        for base in removed {
            Segment::delete_files(&self.dir, base)?;
        }
        info!(dir = %self.dir.display(), log_start = offset.0, "log start moved by DeleteRecords");
        Ok(self.log_start_offset())
    }
}
