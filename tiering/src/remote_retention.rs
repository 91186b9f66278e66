//! Retention of a partition's remote copies: total retention
//! (`retention.ms`, `retention.bytes`) and DeleteRecords' log start, each
//! deletion recorded as started before its objects go and as finished
//! after; and removal of a deleted topic's objects.

use object_store::ObjectStoreExt;
use strata_storage::{Offset, SegmentFile};
use tracing::info;

use crate::error::{TieringError, TieringResult};
use crate::manifest::{SegmentEntry, SegmentState};
use crate::remote_partition::{RemotePartition, RetentionLimits};

impl RemotePartition {
    pub(crate) async fn delete_objects(&self, entry: &SegmentEntry) -> TieringResult<()> {
        let txn = entry.txn_index.then_some(SegmentFile::TxnIndex);
        for kind in SegmentFile::SEGMENT.into_iter().chain(txn) {
            let key = self.object(entry, kind);
            match self.store.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(TieringError::store_failed("delete", key.to_string(), e)),
            }
        }
        self.indexes.remove_segment(entry.id);
        Ok(())
    }

    /// Deletes the oldest remote segments that total retention expired:
    /// older than `retention_ms`, or beyond `retention_bytes` counting
    /// `local_only_bytes` (what only the hot tier holds) too. Returns how
    /// many segments went.
    pub async fn enforce_retention(
        &self,
        now_ms: i64,
        limits: RetentionLimits,
        local_only_bytes: u64,
    ) -> TieringResult<usize> {
        if self.backing_off() {
            return Ok(0);
        }
        let result = self
            .enforce_retention_now(now_ms, limits, local_only_bytes)
            .await;
        self.note_outcome("retention", &result);
        self.mirror().await;
        result
    }

    async fn enforce_retention_now(
        &self,
        now_ms: i64,
        limits: RetentionLimits,
        local_only_bytes: u64,
    ) -> TieringResult<usize> {
        let _writer = self.writer.lock().await;
        let snapshot = self.snapshot();
        let log_start = snapshot.log_start_offset.unwrap_or(Offset::ZERO);
        let finished: Vec<SegmentEntry> = snapshot.finished().cloned().collect();
        let mut total = finished.iter().map(|s| s.size).sum::<u64>() + local_only_bytes;
        let mut deleted = 0;
        for entry in finished {
            let by_time =
                limits.retention_ms >= 0 && now_ms - entry.max_timestamp > limits.retention_ms;
            let by_bytes =
                limits.retention_bytes >= 0 && total - entry.size >= limits.retention_bytes as u64;
            let by_deleted_records = entry.next_offset <= log_start;
            if !(by_time || by_bytes || by_deleted_records) {
                break;
            }
            let id = entry.id;
            self.record(|m| {
                if let Some(s) = m.segments.iter_mut().find(|s| s.id == id) {
                    s.state = SegmentState::DeleteStarted;
                }
            })
            .await?;
            self.delete_objects(&entry).await?;
            self.record(|m| m.segments.retain(|s| s.id != id)).await?;
            total -= entry.size;
            deleted += 1;
            info!(partition = %self.key.dir(), base_offset = entry.base_offset.0, next_offset = entry.next_offset.0, "retention deleted remote segment");
        }
        Ok(deleted)
    }

    /// Moves the remote log start to `offset` (DeleteRecords): reads below it
    /// stop at once, and the retention pass deletes the segments wholly
    /// below it. The manifest records it before this returns.
    pub async fn delete_records_before(&self, offset: Offset) -> TieringResult<()> {
        {
            let _writer = self.writer.lock().await;
            self.record(|m| {
                m.log_start_offset = Some(m.log_start_offset.unwrap_or(Offset::ZERO).max(offset))
            })
            .await?;
        }
        self.mirror().await;
        Ok(())
    }

    /// Deletes everything the partition's topic has in the store (the
    /// topic is being deleted).
    pub async fn delete_topic_objects(&self) -> TieringResult<usize> {
        let _writer = self.writer.lock().await;
        self.store.delete_all_under(&self.key.topic_dir()).await
    }
}
