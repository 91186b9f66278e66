//! One topic's translator: reads the partitions' uploaded segments from the
//! cold tier past what the table covers, turns their committed records into
//! rows, and commits them as a snapshot when enough are waiting or the
//! commit interval has passed.
//!
//! **A snapshot is the only record of what the lake holds.** Its summary
//! names, per partition, the offset after the last record it covers; a
//! translator that starts (or restarts after an error or a crash) reads
//! them from the newest snapshot and goes on from there. Files written but
//! not committed are never referenced, so a crash between writing and
//! committing duplicates and loses nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStoreExt;
use strata_storage::batch::whole_batches_within;
use strata_storage::{Offset, SegmentFile};
use strata_tiering::{ByteQuota, RemoteStore, SegmentEntry, TieredPartition};
use tracing::{info, warn};

use crate::config::LakeConfig;
use crate::error::{LakeError, LakeResult};
use crate::files;
use crate::rows::{append_rows, AbortFilter, Row, RowStats};
use crate::table::{Coverage, LakeTable};

/// Bytes of a segment object read per ranged GET.
const READ_BYTES: u64 = 8 << 20;

/// One partition of the topic, as the translator reads it.
#[derive(Clone)]
pub struct Source {
    pub partition: i32,
    pub tiered: Arc<TieredPartition>,
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Rows translated in this pass (not yet committed, or committed now).
    pub rows: u64,
    /// Whether a snapshot was committed.
    pub committed: bool,
}

/// A topic's translator. Owned by one task; not shared.
pub struct Translator {
    topic: String,
    quota: Arc<ByteQuota>,
    table: Option<LakeTable>,
    committed: Coverage,
    /// Per partition, where the next read starts (at or past `committed`).
    next: BTreeMap<i32, i64>,
    watermarks: BTreeMap<i32, i64>,
    rows: Vec<Row>,
    bytes: u64,
    /// When the oldest translated but uncommitted segment was read.
    pending_since_ms: Option<i64>,
    /// When `lake.retention.ms` was last applied.
    retention_checked_ms: Option<i64>,
}

impl Translator {
    pub fn new(topic: &str, quota: Arc<ByteQuota>) -> Translator {
        Translator {
            topic: topic.to_string(),
            quota,
            table: None,
            committed: Coverage::default(),
            next: BTreeMap::new(),
            watermarks: BTreeMap::new(),
            rows: Vec::new(),
            bytes: 0,
            pending_since_ms: None,
            retention_checked_ms: None,
        }
    }

    /// What the newest committed snapshot covers, once the table is open.
    pub fn committed(&self) -> &Coverage {
        &self.committed
    }

    /// Applies `lake.retention.ms` to the committed table, at most once per
    /// `every_ms`: partitions whose event time ended before now minus the
    /// retention are dropped. Returns how many files went.
    pub async fn enforce_retention(
        &mut self,
        config: &LakeConfig,
        now_ms: i64,
        every_ms: i64,
    ) -> LakeResult<usize> {
        if config.retention_ms < 0
            || self.committed.snapshot_id.is_none()
            || self
                .retention_checked_ms
                .is_some_and(|t| now_ms - t < every_ms)
        {
            return Ok(0);
        }
        self.retention_checked_ms = Some(now_ms);
        let Some(table) = self.table.as_mut() else {
            return Ok(0);
        };
        let cutoff = now_ms.saturating_sub(config.retention_ms);
        let result = table.expire_before(cutoff, now_ms).await;
        if !matches!(result, Ok(0)) {
            // The table changed (or may have) under the open catalog: the
            // next pass opens it again, keeping nothing uncommitted.
            self.reset();
        }
        result
    }

    /// Forgets everything not committed and the open table, so that the
    /// next pass starts again from the newest snapshot in the bucket. Called
    /// after a failure, whose effect on the table is then read back rather
    /// than guessed.
    pub fn reset(&mut self) {
        self.table = None;
        self.rows.clear();
        self.bytes = 0;
        self.pending_since_ms = None;
    }

    /// Reads what is due from the cold tier and commits when a commit is
    /// due. Errors leave the translator as [`Translator::reset`] does.
    pub async fn pass(
        &mut self,
        store: &RemoteStore,
        config: &LakeConfig,
        sources: &[Source],
        now_ms: i64,
    ) -> LakeResult<Pass> {
        let result = self.pass_inner(store, config, sources, now_ms).await;
        if result.is_err() {
            self.reset();
        }
        result
    }

    async fn pass_inner(
        &mut self,
        store: &RemoteStore,
        config: &LakeConfig,
        sources: &[Source],
        now_ms: i64,
    ) -> LakeResult<Pass> {
        if self.table.is_none() {
            let table = LakeTable::open(store, &self.topic, config).await?;
            self.committed = table.coverage()?;
            self.next = self.committed.end_offsets.clone();
            self.watermarks = self.committed.watermarks.clone();
            info!(topic = %self.topic, snapshot = ?self.committed.snapshot_id, "lake table open");
            self.table = Some(table);
        }
        let config = self.table.as_ref().expect("opened above").fixed(config);
        let mut pass = Pass::default();
        for src in sources {
            if self.bytes >= config.commit_bytes {
                break;
            }
            pass.rows += self.read_partition(src, &config, now_ms).await?;
        }
        let dirty = !self.rows.is_empty();
        let due = self.bytes >= config.commit_bytes
            || self
                .pending_since_ms
                .is_some_and(|t| now_ms - t >= config.commit_interval_ms);
        if dirty && due {
            self.commit(&config).await?;
            pass.committed = true;
        }
        Ok(pass)
    }

    /// Reads the partition's uploaded segments past its read position, up
    /// to its last stable offset and the commit size; returns the rows.
    async fn read_partition(
        &mut self,
        src: &Source,
        config: &LakeConfig,
        now_ms: i64,
    ) -> LakeResult<u64> {
        let p = src.partition;
        let log_start = src.tiered.log_start().0;
        let mut next = *self.next.get(&p).unwrap_or(&0);
        if next < log_start {
            // Retention deleted history the lake had not translated yet.
            warn!(topic = %self.topic, partition = p, from = next, to = log_start,
                "records deleted by retention before the lake translated them");
            metrics::counter!("strata_lake_skipped_records_total", "topic" => self.topic.clone())
                .increment((log_start - next) as u64);
            next = log_start;
            self.next.insert(p, next);
        }
        // Records past the last stable offset may still be aborted.
        let stable = src.tiered.log().last_stable_offset().0;
        let mut rows = 0;
        for seg in src.tiered.remote().segments_from(Offset(next)) {
            if seg.next_offset.0 > stable || self.bytes >= config.commit_bytes {
                break;
            }
            rows += self.read_segment(src, &seg, next, config).await?;
            next = seg.next_offset.0;
            self.next.insert(p, next);
            self.pending_since_ms.get_or_insert(now_ms);
        }
        Ok(rows)
    }

    /// Translates one segment's records at or after `from`.
    async fn read_segment(
        &mut self,
        src: &Source,
        seg: &SegmentEntry,
        from: i64,
        config: &LakeConfig,
    ) -> LakeResult<u64> {
        let p = src.partition;
        let tiering_err = |source| LakeError::Tiering {
            topic: self.topic.clone(),
            partition: p,
            source: Box::new(source),
        };
        let aborted = src
            .tiered
            .aborted_txns(seg.base_offset, seg.next_offset)
            .await
            .map_err(tiering_err)?;
        let mut filter = AbortFilter::new(aborted);
        let remote = src.tiered.remote();
        let key = remote.segment_key(seg, SegmentFile::Log);
        let store = remote.store();
        let mut stats = RowStats::default();
        let before = self.rows.len();
        let mut carry: Vec<u8> = Vec::new();
        let mut pos = 0u64;
        while pos < seg.size {
            let end = (pos + READ_BYTES).min(seg.size);
            self.quota.take(end - pos).await;
            let chunk = store
                .store
                .get_range(&key, pos..end)
                .await
                .map_err(|source| LakeError::Store {
                    op: "get",
                    key: key.to_string(),
                    source,
                })?;
            pos = end;
            carry.extend_from_slice(&chunk);
            let whole = whole_batches_within(&carry, usize::MAX, false);
            append_rows(
                &carry[..whole],
                p,
                from..seg.next_offset.0,
                config,
                &mut filter,
                &mut self.rows,
                &mut stats,
            )
            .map_err(|reason| LakeError::Corrupt {
                topic: self.topic.clone(),
                partition: p,
                base_offset: seg.base_offset.0,
                reason,
            })?;
            carry.drain(..whole);
        }
        if !carry.is_empty() {
            // A batch that never ended, or bytes that are not a batch: the
            // segment is not what the log uploaded, and skipping it would
            // lose its records without a word.
            return Err(LakeError::Corrupt {
                topic: self.topic.clone(),
                partition: p,
                base_offset: seg.base_offset.0,
                reason: format!("{} bytes at its end are not a whole batch", carry.len()),
            });
        }
        self.bytes += stats.bytes;
        let topic = self.topic.clone();
        let added = &self.rows[before..];
        let mut watermark = self.watermarks.get(&p).copied();
        let mut late = 0u64;
        for r in added {
            if let Some(w) = watermark {
                if config.granularity.bucket(r.event_time) < config.granularity.bucket(w) {
                    late += 1;
                }
            }
            watermark = Some(watermark.map_or(r.event_time, |w| w.max(r.event_time)));
        }
        if let Some(w) = watermark {
            self.watermarks.insert(p, w);
        }
        metrics::counter!("strata_lake_records_total", "topic" => topic.clone())
            .increment(added.len() as u64);
        metrics::counter!("strata_lake_read_bytes_total", "topic" => topic.clone())
            .increment(stats.bytes);
        metrics::counter!("strata_lake_late_events_total", "topic" => topic.clone())
            .increment(late);
        metrics::counter!("strata_lake_aborted_records_total", "topic" => topic.clone())
            .increment(stats.aborted);
        metrics::counter!("strata_lake_event_time_fallbacks_total", "topic" => topic)
            .increment(stats.event_time_fallbacks);
        Ok(added.len() as u64)
    }

    /// Writes the waiting rows and commits them with the read positions.
    async fn commit(&mut self, config: &LakeConfig) -> LakeResult<()> {
        let table = self.table.as_mut().expect("open while translating");
        let rows = std::mem::take(&mut self.rows);
        let count = rows.len();
        let data = files::write(table, config, rows, uuid::Uuid::new_v4()).await?;
        let coverage = Coverage {
            snapshot_id: None,
            committed_ms: None,
            end_offsets: self.next.clone(),
            watermarks: self.watermarks.clone(),
        };
        let written: u64 = data.iter().map(|f| f.file_size_in_bytes()).sum();
        let nfiles = data.len();
        table.commit(data, &coverage).await?;
        self.committed = table.coverage()?;
        self.bytes = 0;
        self.pending_since_ms = None;
        let topic = self.topic.clone();
        metrics::counter!("strata_lake_commits_total", "topic" => topic.clone()).increment(1);
        metrics::counter!("strata_lake_files_total", "topic" => topic.clone())
            .increment(nfiles as u64);
        metrics::counter!("strata_lake_file_bytes_total", "topic" => topic).increment(written);
        info!(topic = %self.topic, rows = count, files = nfiles, bytes = written,
            snapshot = ?self.committed.snapshot_id, "lake snapshot committed");
        Ok(())
    }
}
