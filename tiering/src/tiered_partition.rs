//! One partition across both tiers: the local log (the hot tail) and the
//! remote segments (the history), answering as one log. In the spirit of
//! Kafka's `UnifiedLog`: the API handlers translate requests into calls on
//! this type, and every decision that involves both tiers is made here.

use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use strata_storage::{
    AbortedTxn, FetchData, FileData, Log, Offset, RetentionOutcome, StorageError,
};
use tokio::sync::Notify;

use crate::error::{TieringError, TieringResult};
use crate::remote_partition::{RemotePartition, RetentionLimits};

/// The partition's offsets, read together.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The first offset a client can read, in either tier.
    pub log_start: Offset,
    /// The first offset held on local disk.
    pub local_start: Offset,
    /// The offset after the last record; the end consumers read up to.
    pub high_watermark: Offset,
    /// The end of what read_committed consumers may read: the first offset
    /// of the oldest open transaction, or the high watermark.
    pub last_stable: Offset,
    /// The offset after the last record copied to the cold tier.
    pub tiered_end: Option<Offset>,
}

/// The answer of a read from the hot tier.
#[derive(Clone, Debug)]
pub enum HotRead {
    /// Batches from the local log (none at the end of the log).
    Records(FetchData),
    /// The same, as regions of the segment files ([`ReadForm::Files`]).
    Files(FileData),
    /// The offset is below the hot tier and a remote segment holds it: read
    /// it with [`TieredPartition::read_cold`].
    Cold,
}

/// How a hot read hands its batches out.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReadForm {
    /// Read into memory.
    Bytes,
    /// As regions of the segment files, for a caller that sends them to a
    /// socket without copying them through user space.
    Files,
}

/// Which records a read may return (Fetch's and ListOffsets'
/// `isolation_level`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// Everything up to the high watermark.
    ReadUncommitted,
    /// Only up to the last stable offset.
    ReadCommitted,
}

impl Isolation {
    /// Kafka's wire value: 1 is read_committed.
    pub fn from_level(level: i8) -> Isolation {
        if level == 1 {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        }
    }
}

/// ListOffsets' questions: Kafka's special timestamps, or a timestamp.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OffsetQuery {
    /// -1: the high watermark.
    Latest,
    /// -1 with read_committed: the last stable offset.
    LastStable,
    /// -2: the log start across both tiers.
    Earliest,
    /// -3: the first record with the largest timestamp.
    MaxTimestamp,
    /// -4: the first offset on local disk.
    EarliestLocal,
    /// -5: the last offset copied to the cold tier.
    LatestTiered,
    /// The first record with a timestamp at or after this one.
    Timestamp(i64),
}

impl OffsetQuery {
    /// The query a ListOffsets timestamp stands for.
    pub fn from_timestamp(ts: i64) -> OffsetQuery {
        match ts {
            -1 => OffsetQuery::Latest,
            -2 => OffsetQuery::Earliest,
            -3 => OffsetQuery::MaxTimestamp,
            -4 => OffsetQuery::EarliestLocal,
            -5 => OffsetQuery::LatestTiered,
            ts => OffsetQuery::Timestamp(ts),
        }
    }
}

/// Finds a record inside one stored batch: `(batch, timestamp, max, from)`
/// gives the first record at or after offset `from` whose timestamp is
/// `>= timestamp`, or with `max` the first carrying the batch's largest
/// timestamp, as (timestamp, offset). The broker supplies it because looking
/// inside a batch means decompressing records, which this crate leaves to
/// the protocol layer.
pub type RecordFinder = fn(&Bytes, i64, bool, Offset) -> Option<(i64, Offset)>;

/// Retention settings of a topic across both tiers (Kafka's names; negative
/// means unlimited).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TierPolicy {
    /// Whether sealed segments are uploaded (`remote.storage.enable`).
    pub remote: bool,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub local_retention_ms: i64,
    pub local_retention_bytes: i64,
}

/// One partition across both tiers. Shared by every task serving the
/// partition: every method takes `&self` and may be called concurrently from
/// any thread. Methods that touch local files are either blocking (documented
/// so, for callers already on a blocking thread) or async and move the file
/// work to tokio's blocking pool themselves.
pub struct TieredPartition {
    log: Arc<Log>,
    remote: Arc<RemotePartition>,
    /// Long-polling fetches waiting for this partition to grow. Each fetch
    /// registers one `Notify` with every partition it reads; an append wakes
    /// only the fetches registered with its own partition.
    waiters: Mutex<Vec<Weak<Notify>>>,
}

impl TieredPartition {
    pub fn new(log: Arc<Log>, remote: Arc<RemotePartition>) -> TieredPartition {
        TieredPartition {
            log,
            remote,
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// The hot tier.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// The cold tier.
    pub fn remote(&self) -> &Arc<RemotePartition> {
        &self.remote
    }

    /// The partition's offsets now (in-memory state only).
    pub fn offsets(&self) -> PartitionOffsets {
        let local = self.log.offsets();
        PartitionOffsets {
            log_start: self
                .remote
                .log_start()
                .map_or(local.log_start, |r| r.min(local.log_start)),
            local_start: local.log_start,
            high_watermark: local.high_watermark,
            last_stable: local.last_stable,
            tiered_end: self.remote.uploaded_end(),
        }
    }

    /// The log start offset across both tiers.
    pub fn log_start(&self) -> Offset {
        let local = self.log.log_start_offset();
        self.remote.log_start().map_or(local, |r| r.min(local))
    }

    /// Appends a producer's batches (see [`Log::append`]) and wakes the
    /// fetches waiting on this partition. Blocking.
    pub fn append(
        &self,
        data: &mut [u8],
        now_ms: i64,
    ) -> Result<strata_storage::AppendInfo, StorageError> {
        let info = self.log.append(data, now_ms)?;
        if !info.duplicate {
            self.wake_waiters();
        }
        Ok(info)
    }

    /// For a read replica, whose local log stays empty: takes the
    /// primary's newest manifest from the store and moves the empty local
    /// log to where the cold tier now ends, waking the fetches parked on
    /// the partition when it grew. Returns whether it did. Never writes to
    /// the store.
    pub async fn follow_primary(&self, now_ms: i64) -> TieringResult<bool> {
        if !self.remote.follow_store().await? {
            return Ok(false);
        }
        if let Some(end) = self.remote.uploaded_end() {
            let log = Arc::clone(&self.log);
            blocking(move || log.advance_empty_to(end, now_ms)).await?;
        }
        self.wake_waiters();
        Ok(true)
    }

    /// Registers a long-polling fetch to be woken when this partition grows
    /// (or goes away). The fetch registers before it reads, so an append
    /// between its read and its wait leaves a permit in `waker`.
    pub fn register_waiter(&self, waker: &Arc<Notify>) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        // Fetches that ended without being woken leave dead entries; they
        // are dropped here so that an idle partition's list stays as long
        // as the number of fetches parked on it.
        waiters.retain(|w| w.strong_count() > 0);
        if !waiters
            .iter()
            .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(waker)))
        {
            waiters.push(Arc::downgrade(waker));
        }
    }

    /// Wakes every fetch waiting on this partition.
    pub fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|p| p.into_inner()));
        for w in waiters {
            if let Some(n) = w.upgrade() {
                n.notify_one();
            }
        }
    }

    /// Reads whole batches at `offset` from the hot tier, or says that the
    /// cold tier holds it. Offsets outside both tiers are
    /// [`StorageError::OffsetOutOfRange`]. Blocking.
    pub fn read_hot(
        &self,
        offset: Offset,
        max_bytes: usize,
        min_one_batch: bool,
        isolation: Isolation,
        form: ReadForm,
    ) -> Result<HotRead, StorageError> {
        let end = match isolation {
            Isolation::ReadUncommitted => Offset(i64::MAX),
            Isolation::ReadCommitted => self.log.last_stable_offset(),
        };
        let read = match form {
            ReadForm::Bytes => self
                .log
                .read_until(offset, max_bytes, min_one_batch, end)
                .map(HotRead::Records),
            ReadForm::Files => self
                .log
                .read_regions_until(offset, max_bytes, min_one_batch, end)
                .map(HotRead::Files),
        };
        match read {
            Ok(read) => Ok(read),
            Err(StorageError::OffsetOutOfRange { log_start, .. })
                if offset < log_start && self.remote.covers(offset) =>
            {
                Ok(HotRead::Cold)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads whole batches at `offset` from the cold tier, as
    /// [`Log::read`] does locally. `None` when no remote segment holds it
    /// (any more).
    pub async fn read_cold(
        &self,
        offset: Offset,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> TieringResult<Option<Bytes>> {
        Ok(self
            .remote
            .read(offset, max_bytes, min_one_batch)
            .await?
            .map(|r| r.records))
    }

    /// The aborted transactions with records in `[from, to)`, from both
    /// tiers, oldest first, for a read_committed fetch of that range.
    /// Segments in both tiers report theirs once.
    pub async fn aborted_txns(&self, from: Offset, to: Offset) -> TieringResult<Vec<AbortedTxn>> {
        let log = Arc::clone(&self.log);
        let mut out = blocking(move || log.aborted_txns(from, to)).await?;
        let local_start = self.log.log_start_offset();
        if from < local_start {
            let remote = self.remote.aborted_txns(from, to.min(local_start)).await?;
            for t in remote {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            out.sort_by_key(|t| t.first_offset);
        }
        Ok(out)
    }

    /// Answers a ListOffsets query across both tiers, as (timestamp, offset);
    /// `None` when no record answers it. A timestamp older than the hot tier
    /// is searched in the remote time indexes.
    pub async fn list_offset(
        &self,
        query: OffsetQuery,
        find: RecordFinder,
    ) -> TieringResult<Option<(i64, Offset)>> {
        let log_start = self.log_start();
        let in_batch = |batch: Option<Bytes>, ts: i64, max: bool| {
            batch.and_then(|b| find(&b, ts, max, log_start))
        };
        Ok(match query {
            OffsetQuery::Latest => Some((-1, self.log.high_watermark())),
            OffsetQuery::LastStable => Some((-1, self.log.last_stable_offset())),
            OffsetQuery::Earliest => Some((-1, log_start)),
            OffsetQuery::EarliestLocal => Some((-1, self.log.log_start_offset())),
            OffsetQuery::LatestTiered => Some((
                -1,
                self.remote
                    .uploaded_end()
                    .map_or(Offset(-1), |end| end.plus(-1)),
            )),
            OffsetQuery::MaxTimestamp => {
                let log = Arc::clone(&self.log);
                let local = blocking(move || log.batch_with_max_timestamp()).await?;
                let local = in_batch(local, i64::MIN, true);
                match self.remote.max_timestamp() {
                    // On a tie the earlier (remote) record wins.
                    Some((ts, base)) if local.is_none_or(|(l, _)| ts >= l) => {
                        let batch = self.remote.batch_at(base).await?;
                        match in_batch(batch, i64::MIN, true) {
                            Some(remote) if local.is_none_or(|(l, _)| remote.0 >= l) => {
                                Some(remote)
                            }
                            _ => local,
                        }
                    }
                    _ => local,
                }
            }
            OffsetQuery::Timestamp(ts) => {
                let local_start = self.log.log_start_offset();
                if self.remote.log_start().is_some_and(|r| r < local_start) {
                    if let Some(batch) = self.remote.batch_for_timestamp(ts).await? {
                        if let Some(found) = in_batch(Some(batch), ts, false) {
                            if found.1 < local_start {
                                return Ok(Some(found));
                            }
                        }
                    }
                }
                let log = Arc::clone(&self.log);
                let batch = blocking(move || log.batch_for_timestamp(ts)).await?;
                in_batch(batch, ts, false)
            }
        })
    }

    /// Moves the log start to `offset` across both tiers (DeleteRecords);
    /// `None` means the high watermark. The cold tier records the new start
    /// in its manifest first, then the hot tier in its log directory; both
    /// are durable before this returns the new log start. An offset past the
    /// high watermark is [`StorageError::OffsetOutOfRange`].
    pub async fn delete_records_before(&self, offset: Option<Offset>) -> TieringResult<Offset> {
        let high_watermark = self.log.log_end_offset();
        let target = offset.unwrap_or(high_watermark);
        if target < Offset::ZERO || target > high_watermark {
            return Err(TieringError::Storage(StorageError::OffsetOutOfRange {
                requested: target,
                log_start: self.log_start(),
                log_end: high_watermark,
            }));
        }
        if target <= self.log_start() {
            return Ok(self.log_start());
        }
        self.remote.delete_records_before(target).await?;
        let log = Arc::clone(&self.log);
        blocking(move || log.delete_records_before(target)).await?;
        Ok(self.log_start())
    }

    /// Uploads the sealed segments not yet in the cold tier; returns how
    /// many. Failures back off inside (see [`RemotePartition::upload_pending`]).
    pub async fn upload(&self) -> TieringResult<usize> {
        self.remote.upload_pending(&self.log).await
    }

    /// One retention pass: total retention on both tiers, then local
    /// retention, which for a tiered partition only deletes segments whose
    /// upload is finished. A partition that never had a cold tier follows
    /// its log's own `retention.*` settings.
    pub async fn enforce_retention(
        &self,
        now_ms: i64,
        policy: TierPolicy,
    ) -> TieringResult<RetentionOutcome> {
        if !policy.remote && self.remote.remote_segments() == 0 {
            let log = Arc::clone(&self.log);
            return Ok(blocking(move || log.enforce_retention(now_ms)).await?);
        }
        let local_only = self
            .log
            .bytes_from(self.remote.uploaded_end().unwrap_or(Offset::ZERO));
        let limits = RetentionLimits {
            retention_ms: policy.retention_ms,
            retention_bytes: policy.retention_bytes,
        };
        // Store failures back off inside and leave the hot tier alone.
        let _ = self
            .remote
            .enforce_retention(now_ms, limits, local_only)
            .await;
        let (log, uploaded_end) = (Arc::clone(&self.log), self.remote.uploaded_end());
        let outcome = blocking(move || {
            if policy.retention_ms >= 0 {
                log.roll_if_older_than(now_ms, policy.retention_ms)?;
            }
            log.delete_oldest_while(|seg, local_bytes| {
                let uploaded = uploaded_end.is_some_and(|end| seg.next_offset <= end);
                let age = now_ms - seg.last_modified_ms;
                let local_expired = (policy.local_retention_ms >= 0
                    && age > policy.local_retention_ms)
                    || (policy.local_retention_bytes >= 0
                        && local_bytes - seg.size >= policy.local_retention_bytes as u64);
                let total_expired = policy.retention_ms >= 0 && age > policy.retention_ms;
                (uploaded && local_expired) || total_expired
            })
        })
        .await?;
        Ok(outcome)
    }

    /// Sealed segments (count, bytes) not yet copied to the cold tier.
    pub fn upload_lag(&self) -> (usize, u64) {
        self.log
            .sealed_from(self.remote.uploaded_end().unwrap_or(Offset::ZERO))
    }
}

/// Runs file work on tokio's blocking pool. A panic in `f` is a bug and is
/// re-raised in the caller.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use strata_storage::batch::BatchHeader;
    use strata_storage::testing::BatchBuilder;
    use strata_storage::LogConfig;
    use uuid::Uuid;

    use super::*;
    use crate::{ChunkCache, IndexCache, PartitionKey, RemoteStore};

    /// Every test batch holds one record whose timestamp is the batch's.
    fn find(batch: &Bytes, ts: i64, max: bool, from: Offset) -> Option<(i64, Offset)> {
        let h = BatchHeader::parse(batch).ok()?;
        let offset = Offset(h.base_offset).max(from);
        (max || h.max_timestamp >= ts).then_some((h.max_timestamp, offset))
    }

    /// A partition of 30 one-record batches (timestamps 1000..1030) in
    /// 300-byte segments, the sealed ones uploaded and then deleted locally.
    async fn partition() -> (tempfile::TempDir, TieredPartition) {
        partition_of(20, true).await
    }

    /// As [`partition`], with records of `payload` bytes, and a store read
    /// in place (`file://`) or, with `in_place` false, the same directory
    /// read as a remote bucket is (through the chunk cache, with small
    /// ranged reads for seeks by time).
    async fn partition_of(payload: usize, in_place: bool) -> (tempfile::TempDir, TieredPartition) {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 300,
            index_interval_bytes: 100,
            ..LogConfig::default()
        };
        let log_dir: PathBuf = dir.path().join("t-0");
        let log = Arc::new(Log::open(&log_dir, config, true, 0).unwrap());
        for ts in 0..30 {
            let mut b = BatchBuilder::new(1)
                .timestamp(1000 + ts)
                .payload(payload)
                .build();
            log.append(&mut b, 0).unwrap();
        }
        log.flush_sealed().unwrap();
        let mut store = RemoteStore::local(&dir.path().join("remote")).unwrap();
        store.local = in_place;
        let cache = ChunkCache::new(
            dir.path().join("cache"),
            crate::cache::CacheLimits::new(1 << 20, 64 * 1024),
        )
        .unwrap();
        let key = PartitionKey {
            topic: "t".into(),
            topic_id: Uuid::nil(),
            partition: 0,
        };
        let indexes = Arc::new(IndexCache::new(1 << 20));
        let remote = RemotePartition::open(key, store, cache, indexes, &log_dir).unwrap();
        let p = TieredPartition::new(log, Arc::new(remote));
        assert!(p.upload().await.unwrap() >= 3);
        let policy = TierPolicy {
            remote: true,
            retention_ms: -1,
            retention_bytes: -1,
            local_retention_ms: -1,
            local_retention_bytes: 1,
        };
        let outcome = p.enforce_retention(2000, policy).await.unwrap();
        assert!(outcome.deleted_segments >= 3);
        (dir, p)
    }

    fn offsets_of(records: &Bytes) -> Vec<i64> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Ok(h) = BatchHeader::parse(&records[pos..]) {
            out.push(h.base_offset);
            pos += h.total_len();
        }
        out
    }

    #[tokio::test]
    async fn reads_and_offsets_span_the_tier_boundary() {
        let (_dir, p) = partition().await;
        let o = p.offsets();
        let tiered_end = o.tiered_end.unwrap();
        assert_eq!(o.log_start, Offset(0), "the history is still readable");
        assert!(o.local_start > Offset(0), "the hot tier starts later");
        assert!(tiered_end >= o.local_start);
        assert_eq!(o.high_watermark, Offset(30));
        assert_eq!(o.last_stable, o.high_watermark);

        // Below the hot tier: the cold tier answers, batch by batch.
        assert!(matches!(
            p.read_hot(
                Offset(0),
                1 << 20,
                true,
                Isolation::ReadUncommitted,
                ReadForm::Bytes
            ),
            Ok(HotRead::Cold)
        ));
        let cold = p
            .read_cold(Offset(0), 1 << 20, true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(offsets_of(&cold)[0], 0);
        // At and above it: the hot tier, up to the end.
        match p
            .read_hot(
                o.local_start,
                1 << 20,
                true,
                Isolation::ReadUncommitted,
                ReadForm::Bytes,
            )
            .unwrap()
        {
            HotRead::Records(data) => {
                let got = offsets_of(&data.records);
                assert_eq!(got.first(), Some(&o.local_start.0));
                assert_eq!(got.last(), Some(&29));
            }
            other => panic!("the hot tier holds its own start: {other:?}"),
        }
        // The same as file regions: the bytes the read above returned.
        match p
            .read_hot(
                o.local_start,
                1 << 20,
                true,
                Isolation::ReadUncommitted,
                ReadForm::Files,
            )
            .unwrap()
        {
            HotRead::Files(files) => assert!(!files.is_empty() && files.regions[0].len > 0),
            other => panic!("file regions of the hot tier: {other:?}"),
        }
        // Past the end: out of range, not the cold tier.
        assert!(matches!(
            p.read_hot(
                Offset(31),
                100,
                true,
                Isolation::ReadUncommitted,
                ReadForm::Bytes
            ),
            Err(StorageError::OffsetOutOfRange { .. })
        ));

        // ListOffsets' special timestamps and timestamps in either tier.
        let ask = |q| p.list_offset(q, find);
        assert_eq!(
            ask(OffsetQuery::Latest).await.unwrap(),
            Some((-1, Offset(30)))
        );
        assert_eq!(
            ask(OffsetQuery::Earliest).await.unwrap(),
            Some((-1, Offset(0)))
        );
        assert_eq!(
            ask(OffsetQuery::EarliestLocal).await.unwrap(),
            Some((-1, o.local_start))
        );
        assert_eq!(
            ask(OffsetQuery::LatestTiered).await.unwrap(),
            Some((-1, tiered_end.plus(-1)))
        );
        assert_eq!(
            ask(OffsetQuery::Timestamp(1001)).await.unwrap(),
            Some((1001, Offset(1))),
            "an old timestamp is found in the cold tier"
        );
        assert_eq!(
            ask(OffsetQuery::Timestamp(1029)).await.unwrap(),
            Some((1029, Offset(29))),
            "a recent one in the hot tier"
        );
        assert_eq!(ask(OffsetQuery::Timestamp(5000)).await.unwrap(), None);
        assert_eq!(
            ask(OffsetQuery::MaxTimestamp).await.unwrap(),
            Some((1029, Offset(29)))
        );
    }

    #[tokio::test]
    async fn a_seek_by_time_in_a_bucket_finds_the_record_near_the_index_or_through_the_cache() {
        // Batches of 100 bytes fit the seek's small read; batches of 100 KiB
        // run past it, and are read through the chunk cache instead.
        for payload in [100, 100 * 1024] {
            let (_dir, p) = partition_of(payload, false).await;
            let local_start = p.offsets().local_start.0;
            assert!(local_start > 3, "history in the cold tier");
            for ts in [1000, 1001, 1000 + local_start - 1] {
                assert_eq!(
                    p.list_offset(OffsetQuery::Timestamp(ts), find)
                        .await
                        .unwrap(),
                    Some((ts, Offset(ts - 1000))),
                    "payload {payload}, timestamp {ts}"
                );
            }
        }
    }

    #[tokio::test]
    async fn delete_records_moves_the_start_in_both_tiers() {
        let (_dir, p) = partition().await;
        let local_start = p.offsets().local_start;
        // Into the cold tier's history.
        assert_eq!(
            p.delete_records_before(Some(Offset(2))).await.unwrap(),
            Offset(2)
        );
        assert_eq!(p.offsets().log_start, Offset(2));
        assert!(matches!(
            p.read_hot(
                Offset(1),
                100,
                true,
                Isolation::ReadUncommitted,
                ReadForm::Bytes
            ),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        let cold = p
            .read_cold(Offset(2), 1 << 20, true)
            .await
            .unwrap()
            .unwrap();
        assert!(offsets_of(&cold).contains(&2));
        assert_eq!(
            p.list_offset(OffsetQuery::Timestamp(0), find)
                .await
                .unwrap(),
            Some((1002, Offset(2))),
            "timestamps are searched from the new start"
        );
        // Past the high watermark: refused, and nothing moves.
        assert!(matches!(
            p.delete_records_before(Some(Offset(31))).await,
            Err(TieringError::Storage(StorageError::OffsetOutOfRange { .. }))
        ));
        // Into the hot tier: every remote record is gone for readers.
        let target = local_start.plus(1);
        assert_eq!(p.delete_records_before(Some(target)).await.unwrap(), target);
        assert!(matches!(
            p.read_hot(
                local_start,
                100,
                true,
                Isolation::ReadUncommitted,
                ReadForm::Bytes
            ),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        // None: up to the high watermark.
        assert_eq!(p.delete_records_before(None).await.unwrap(), Offset(30));
    }
}
