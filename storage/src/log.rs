//! A partition's local log (Kafka's `LocalLog`): the segments, the log
//! start, the producer state and the configuration behind one mutex. What
//! the log does is spread over one file per concern, each an `impl Log`
//! block: opening and recovery (`loader.rs`), appending and flushing
//! (`append.rs`), reading (`read.rs`), retention and DeleteRecords
//! (`retention.rs`) and producer snapshots (`producer_snapshots.rs`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::debug;

use crate::checkpoint;
use crate::error::{StorageError, StorageResult};
use crate::producer::{OpenTxn, ProducerInfo, ProducerState};
use crate::segments::Segments;
use crate::txn_index::AbortedTxn;
use crate::{LogConfig, Offset, SegmentFile};

/// A sealed segment for the uploader: its log file handle and the paths of
/// its (trimmed, final) indexes.
#[derive(Clone, Debug)]
pub struct SealedSegment {
    pub base_offset: Offset,
    pub next_offset: Offset,
    pub size: u64,
    pub max_timestamp: i64,
    pub file: Arc<fs::File>,
    /// The `.log` file's path, for a store that can link it instead of
    /// copying it (it may be gone by the time it is used: retention).
    pub log_path: PathBuf,
    pub index_path: PathBuf,
    pub time_index_path: PathBuf,
    /// The aborted transactions whose markers the segment holds (its
    /// `.txnindex`), uploaded beside it when there are any.
    pub aborted: Vec<AbortedTxn>,
}

/// A log's offsets at one instant.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LogOffsets {
    pub log_start: Offset,
    pub last_stable: Offset,
    pub high_watermark: Offset,
}

pub(crate) struct Inner {
    pub(crate) segments: Segments,
    pub(crate) config: LogConfig,
    pub(crate) log_start: Offset,
    pub(crate) unflushed_records: i64,
    pub(crate) oldest_unflushed_ms: i64,
    pub(crate) deleted: bool,
    pub(crate) producers: ProducerState,
    /// The producer state captured at the last roll, written to its
    /// snapshot file by flush_sealed rather than under the lock.
    pub(crate) pending_snapshot: Option<(Offset, Vec<u8>)>,
    /// A compacted log's first dirty offset (the cleaner checkpoint), kept
    /// here so that reading it takes no file I/O.
    pub(crate) first_dirty: Offset,
}

/// One partition's log in its own directory.
///
/// Shared by every task serving the partition: all methods take `&self` and
/// may be called concurrently from any thread. Appends are serialized by an
/// internal mutex; reads hold it only to look up positions and then read the
/// files without it. Every method does blocking file I/O, so async callers
/// run them on a blocking thread.
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) inner: Mutex<Inner>,
    /// Serialises the small files flush_sealed writes outside `inner`.
    pub(crate) files: Mutex<()>,
}

impl Log {
    pub(crate) fn lock(&self) -> StorageResult<MutexGuard<'_, Inner>> {
        // A panic while holding the lock cannot leave a half-applied append
        // visible (sizes are updated after the write), so poisoning is ignored.
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.deleted {
            return Err(StorageError::Closed {
                path: self.dir.clone(),
            });
        }
        Ok(inner)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> LogConfig {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .config
            .clone()
    }

    /// Replaces the configuration; the next append, roll and retention pass
    /// obey it.
    pub fn set_config(&self, config: LogConfig) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).config = config;
    }

    /// Offset of the first record still in the log.
    pub fn log_start_offset(&self) -> Offset {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .log_start
    }

    /// Offset the next appended record will get.
    pub fn log_end_offset(&self) -> Offset {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .segments
            .log_end()
    }

    /// Offset up to which consumers may read. With a single replica every
    /// append is committed as soon as it is written, so this is the log end.
    pub fn high_watermark(&self) -> Offset {
        self.log_end_offset()
    }

    /// Offset up to which read_committed consumers may read (Kafka's last
    /// stable offset): the first offset of the oldest open transaction, or
    /// the high watermark when none is open.
    pub fn last_stable_offset(&self) -> Offset {
        self.offsets().last_stable
    }

    /// The log start, last stable offset and high watermark, read together
    /// under one lock (a fetch asks for all three for every partition).
    pub fn offsets(&self) -> LogOffsets {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let high_watermark = inner.segments.log_end();
        LogOffsets {
            log_start: inner.log_start,
            last_stable: inner
                .producers
                .first_unstable_offset()
                .map_or(high_watermark, |o| o.min(high_watermark)),
            high_watermark,
        }
    }

    /// The open transactions on this partition, oldest first.
    pub fn open_txns(&self) -> Vec<OpenTxn> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.producers.open_txns()
    }

    /// Every producer this partition remembers, for DescribeProducers.
    pub fn producers(&self) -> Vec<ProducerInfo> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.producers.producers()
    }

    /// Bytes held in local segments.
    pub fn size_bytes(&self) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.segments.size_bytes()
    }

    /// Bytes held in local segments starting at or after `offset`.
    pub fn bytes_from(&self, offset: Offset) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.segments.range(offset..).map(|s| s.size).sum()
    }

    /// How many sealed (no longer active) segments hold records at or after
    /// `offset`, and their bytes: what the uploader still has to copy when
    /// the cold tier ends at `offset`.
    pub fn sealed_from(&self, offset: Offset) -> (usize, u64) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .segments
            .sealed()
            .filter(|s| s.next_offset > offset && s.size > 0)
            .fold((0, 0), |(count, bytes), s| (count + 1, bytes + s.size))
    }

    pub fn segment_count(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .segments
            .len()
    }

    /// Every durable sealed segment wholly below the last stable offset,
    /// oldest first, with handles that stay valid while the caller reads
    /// them even if retention deletes the files meanwhile. A segment with
    /// records of an open transaction waits, as in Kafka, so that what the
    /// cold tier holds never needs a marker it does not have.
    pub fn sealed_segments(&self) -> StorageResult<Vec<SealedSegment>> {
        let lso = self.last_stable_offset();
        let inner = self.lock()?;
        Ok(inner
            .segments
            .sealed()
            .take_while(|s| s.durable && s.next_offset <= lso)
            .map(|s| SealedSegment {
                base_offset: s.base,
                next_offset: s.next_offset,
                size: s.size,
                max_timestamp: s.max_timestamp,
                file: Arc::clone(&s.file),
                log_path: SegmentFile::Log.path(&self.dir, s.base),
                index_path: SegmentFile::OffsetIndex.path(&self.dir, s.base),
                time_index_path: SegmentFile::TimeIndex.path(&self.dir, s.base),
                aborted: s.txn_index.entries().to_vec(),
            })
            .collect())
    }

    /// Forgets idempotent producers that have appended nothing for
    /// `producer.id.expiration.ms`; returns how many went. The next
    /// snapshot no longer has them.
    pub fn expire_producers(&self, now_ms: i64) -> StorageResult<usize> {
        let mut inner = self.lock()?;
        let expiration = inner.config.producer_id_expiration_ms;
        let removed = inner.producers.remove_expired(now_ms, expiration);
        if removed > 0 {
            debug!(dir = %self.dir.display(), removed, "expired idle producers");
        }
        Ok(removed)
    }

    /// Flushes and seals the active segment for a clean shutdown. Appends
    /// after this reopen nothing: the log must be opened again.
    pub fn close(&self) -> StorageResult<()> {
        let mut inner = self.lock()?;
        let end = inner.segments.log_end();
        inner.pending_snapshot = None;
        let _files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        self.write_producer_snapshot(end, &inner.producers.to_bytes())?;
        inner.segments.close()?;
        checkpoint::write_recovery_point(&self.dir, checkpoint::recovery_point(&inner.segments))?;
        inner.deleted = true;
        Ok(())
    }

    /// Removes the log and its directory. Readers holding batches keep them.
    pub fn delete(&self) -> StorageResult<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.deleted = true;
        inner.segments.clear();
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("delete log directory", &self.dir)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::batch::tests::make_batch;
    use crate::batch::{self, BatchHeader};
    use crate::checkpoint::read_recovery_point;
    use crate::{AppendInfo, TimestampType};

    fn small_config() -> LogConfig {
        LogConfig {
            segment_bytes: 1000,
            index_interval_bytes: 100,
            segment_index_bytes: 4096,
            ..LogConfig::default()
        }
    }

    fn append_n(log: &Log, n: usize, ts0: i64) -> Vec<AppendInfo> {
        (0..n)
            .map(|i| {
                let mut b = make_batch(2, ts0 + i as i64, 50);
                log.append(&mut b, 0).unwrap()
            })
            .collect()
    }

    fn offsets_in(records: &Bytes) -> Vec<i64> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < records.len() {
            let h = BatchHeader::parse(&records[pos..]).unwrap();
            out.push(h.base_offset);
            pos += h.total_len();
        }
        out
    }

    #[test]
    fn append_assigns_offsets_and_reads_back_across_rolls() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
        let infos = append_n(&log, 30, 1000);
        assert_eq!(infos[0].base_offset, Offset(0));
        assert_eq!(infos[29].last_offset, Offset(59));
        assert_eq!(log.log_end_offset(), Offset(60));
        assert!(log.segment_count() > 3, "segments roll at segment.bytes");
        let all = log.read(Offset(0), 1 << 20, true).unwrap();
        assert_eq!(
            offsets_in(&all.records),
            (0..60).step_by(2).collect::<Vec<_>>()
        );
        // A read from the middle of a batch starts with that batch.
        let mid = log.read(Offset(41), 1 << 20, true).unwrap();
        assert_eq!(offsets_in(&mid.records)[0], 40);
        // max_bytes smaller than one batch still returns one batch.
        let one = log.read(Offset(10), 1, true).unwrap();
        assert_eq!(offsets_in(&one.records), vec![10]);
        assert!(log.read(Offset(10), 1, false).unwrap().records.is_empty());
        assert!(log.read(Offset(60), 100, true).unwrap().records.is_empty());
        assert!(matches!(
            log.read(Offset(61), 100, true),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
    }

    #[test]
    fn file_regions_hold_the_same_bytes_as_a_read_across_segments_and_limits() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
        // Batches of several sizes, over many 1,000-byte segments.
        for i in 0..40usize {
            let mut b = make_batch(1 + (i % 3) as i32, 1_000 + i as i64, 20 + (i * 37) % 300);
            log.append(&mut b, 0).unwrap();
        }
        let end = log.log_end_offset();
        for offset in [0, 1, 7, 30, end.0 - 1, end.0] {
            for (max, min_one) in [
                (1, true),
                (1, false),
                (500, false),
                (2_500, true),
                (1 << 20, false),
            ] {
                for until in [Offset(i64::MAX), Offset(20)] {
                    let bytes = log.read_until(Offset(offset), max, min_one, until).unwrap();
                    let files = log
                        .read_regions_until(Offset(offset), max, min_one, until)
                        .unwrap();
                    let mut joined = Vec::new();
                    for r in &files.regions {
                        let mut buf = vec![0; r.len as usize];
                        r.file.read_exact_at(&mut buf, r.position).unwrap();
                        joined.extend_from_slice(&buf);
                    }
                    assert_eq!(
                        joined,
                        bytes.records.to_vec(),
                        "offset {offset}, max {max}, min_one {min_one}, until {until:?}"
                    );
                    assert_eq!(files.len(), bytes.records.len());
                    assert_eq!(files.high_watermark, bytes.high_watermark);
                    let mut end = None;
                    let mut pos = 0;
                    while pos < bytes.records.len() {
                        let h = BatchHeader::parse(&bytes.records[pos..]).unwrap();
                        end = Some(Offset(h.last_offset() + 1));
                        pos += h.total_len();
                    }
                    assert_eq!(files.end_offset, end, "the end of what was read");
                }
            }
        }
    }

    #[test]
    fn rejects_corrupt_and_oversized_batches_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
        let mut good = make_batch(1, 1, 10);
        let mut bad = make_batch(1, 1, 10);
        bad[65] ^= 0xff;
        good.extend_from_slice(&bad);
        assert!(matches!(
            log.append(&mut good, 0),
            Err(StorageError::CorruptBatch { .. })
        ));
        assert_eq!(log.log_end_offset(), Offset(0));
        let mut big = make_batch(1, 1, 2000);
        log.set_config(LogConfig {
            max_message_bytes: 1000,
            ..small_config()
        });
        assert!(matches!(
            log.append(&mut big, 0),
            Err(StorageError::BatchTooLarge { .. })
        ));
    }

    #[test]
    fn reopens_after_clean_close_and_keeps_appending() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
            append_n(&log, 12, 1000);
            log.close().unwrap();
        }
        let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
        assert_eq!(log.log_end_offset(), Offset(24));
        append_n(&log, 1, 5000);
        assert_eq!(
            offsets_in(&log.read(Offset(0), 1 << 20, true).unwrap().records).len(),
            13
        );
    }

    #[test]
    fn recovery_truncates_a_torn_tail_and_rebuilds_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let active_path;
        {
            let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
            append_n(&log, 14, 1000);
            let inner = log.inner.lock().unwrap();
            active_path = inner.segments.active().log_path.to_path_buf();
            // Dropped without close: an unclean shutdown.
        }
        // A torn write: half a batch at the end of the active segment.
        let len = fs::metadata(&active_path).unwrap().len();
        let torn = make_batch(2, 9999, 50);
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&active_path)
            .unwrap();
        std::io::Write::write_all(&mut f, &torn[..40]).unwrap();
        drop(f);
        // And a corrupted index of a sealed segment.
        fs::write(
            dir.path().join(SegmentFile::OffsetIndex.name(Offset(0))),
            [0xffu8; 24],
        )
        .unwrap();

        let log = Log::open(dir.path(), small_config(), false, 0).unwrap();
        assert_eq!(fs::metadata(&active_path).unwrap().len(), len);
        assert_eq!(log.log_end_offset(), Offset(28));
        let all = log.read(Offset(0), 1 << 20, true).unwrap();
        assert_eq!(offsets_in(&all.records).len(), 14);
        let mut next = make_batch(1, 1, 5);
        assert_eq!(log.append(&mut next, 0).unwrap().base_offset, Offset(28));
    }

    #[test]
    fn sealed_segments_wait_for_their_fsync_and_recovery_starts_at_the_recovery_point() {
        let dir = tempfile::tempdir().unwrap();
        let (torn_path, torn_next);
        {
            let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
            append_n(&log, 30, 1000);
            let n = log.segment_count();
            assert!(n > 3);
            assert!(
                log.sealed_segments().unwrap().is_empty(),
                "a rolled segment is not handed out for upload before its fsync"
            );
            log.flush_sealed().unwrap();
            assert_eq!(log.sealed_segments().unwrap().len(), n - 1);
            let point = read_recovery_point(dir.path()).unwrap();
            assert_eq!(point, log.inner.lock().unwrap().segments.active().base);

            // More rolls whose fsyncs never happen.
            append_n(&log, 30, 2000);
            assert!(log.segment_count() > n + 1);
            let inner = log.inner.lock().unwrap();
            let torn = inner.segments.range(point..=point).next().unwrap();
            torn_path = torn.log_path.to_path_buf();
            torn_next = torn.next_offset;
            // Dropped without close: an unclean shutdown.
        }
        // Power loss: the end of the first unflushed sealed segment never
        // reached the disk, while later segments did.
        let len = fs::metadata(&torn_path).unwrap().len();
        let f = fs::OpenOptions::new().write(true).open(&torn_path).unwrap();
        f.set_len(len - 30).unwrap();
        drop(f);

        let log = Log::open(dir.path(), small_config(), false, 0).unwrap();
        // The torn segment lost its last batch (two records); the segments
        // after it no longer followed on and are gone.
        assert_eq!(log.log_end_offset(), Offset(torn_next.0 - 2));
        let all = log.read(Offset(0), 1 << 20, true).unwrap();
        assert_eq!(
            offsets_in(&all.records),
            (0..torn_next.0 - 2).step_by(2).collect::<Vec<_>>()
        );
        let mut next = make_batch(1, 1, 5);
        assert_eq!(
            log.append(&mut next, 0).unwrap().base_offset,
            Offset(torn_next.0 - 2)
        );
    }

    #[test]
    fn delete_records_moves_the_start_into_a_segment_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
            append_n(&log, 30, 1000);
            let segments = log.segment_count();
            assert_eq!(log.delete_records_before(Offset(25)).unwrap(), Offset(25));
            assert!(
                log.segment_count() < segments,
                "segments below the cut are gone"
            );
            assert!(matches!(
                log.read(Offset(24), 1 << 20, true),
                Err(StorageError::OffsetOutOfRange { .. })
            ));
            // The batch holding offset 25 starts at 24: it is served whole.
            let from = log.read(Offset(25), 1 << 20, true).unwrap();
            assert_eq!(offsets_in(&from.records)[0], 24);
            // Lower offsets change nothing; past the end is refused.
            assert_eq!(log.delete_records_before(Offset(3)).unwrap(), Offset(25));
            assert!(log.delete_records_before(Offset(61)).is_err());
            // Dropped without close: an unclean shutdown.
        }
        let log = Log::open(dir.path(), small_config(), false, 0).unwrap();
        assert_eq!(log.log_start_offset(), Offset(25));
        assert_eq!(log.log_end_offset(), Offset(60));
    }

    #[test]
    fn recovery_cuts_at_a_flipped_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path;
        {
            let log = Log::open(dir.path(), LogConfig::default(), true, 0).unwrap();
            append_n(&log, 5, 1000);
            path = log
                .inner
                .lock()
                .unwrap()
                .segments
                .active()
                .log_path
                .to_path_buf();
        }
        let mut bytes = fs::read(&path).unwrap();
        let batch_len = bytes.len() / 5;
        bytes[3 * batch_len + 70] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        let log = Log::open(dir.path(), LogConfig::default(), false, 0).unwrap();
        assert_eq!(log.log_end_offset(), Offset(6));
    }

    #[test]
    fn timestamp_lookup_and_max_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
        append_n(&log, 30, 1000);
        let b = log.batch_for_timestamp(1017).unwrap().unwrap();
        assert_eq!(BatchHeader::parse(&b).unwrap().base_offset, 34);
        let b = log.batch_for_timestamp(0).unwrap().unwrap();
        assert_eq!(BatchHeader::parse(&b).unwrap().base_offset, 0);
        assert!(log.batch_for_timestamp(5000).unwrap().is_none());
        let m = log.batch_with_max_timestamp().unwrap().unwrap();
        assert_eq!(BatchHeader::parse(&m).unwrap().base_offset, 58);
    }

    #[test]
    fn log_append_time_is_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        };
        let log = Log::open(dir.path(), config, true, 0).unwrap();
        let mut b = make_batch(1, 5, 5);
        let info = log.append(&mut b, 777).unwrap();
        assert_eq!(info.log_append_time_ms, 777);
        let r = log.read(Offset(0), 1000, true).unwrap();
        let h = batch::validate(&r.records).unwrap();
        assert_eq!(h.max_timestamp, 777);
    }

    #[test]
    fn retention_by_bytes_and_time_deletes_old_segments() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
        append_n(&log, 30, 1000);
        let before = log.segment_count();
        log.set_config(LogConfig {
            retention_bytes: 1500,
            ..small_config()
        });
        let out = log.enforce_retention(2000).unwrap();
        assert!(out.deleted_segments > 0 && log.segment_count() < before);
        assert!(log.size_bytes() <= 1500 + 1000);
        assert!(log.log_start_offset() > Offset(0));
        assert!(matches!(
            log.read(Offset(0), 10, true),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        log.set_config(LogConfig {
            retention_ms: 10,
            ..small_config()
        });
        log.enforce_retention(100_000).unwrap();
        assert_eq!(log.log_start_offset(), Offset(60));
        assert_eq!(log.log_end_offset(), Offset(60));
        assert_eq!(log.segment_count(), 1);
    }

    #[test]
    fn rolls_on_segment_ms() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(
            dir.path(),
            LogConfig {
                segment_ms: 1000,
                ..LogConfig::default()
            },
            true,
            0,
        )
        .unwrap();
        log.append(&mut make_batch(1, 1, 10), 0).unwrap();
        log.append(&mut make_batch(1, 1, 10), 500).unwrap();
        assert_eq!(log.segment_count(), 1);
        log.append(&mut make_batch(1, 1, 10), 1000).unwrap();
        assert_eq!(log.segment_count(), 2);
        assert_eq!(
            offsets_in(&log.read(Offset(0), 1 << 20, true).unwrap().records),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn missing_indexes_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
            append_n(&log, 30, 1000);
            log.close().unwrap();
        }
        for ext in ["index", "timeindex"] {
            fs::remove_file(dir.path().join(format!("{:020}.{ext}", 0))).unwrap();
        }
        let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
        assert!(dir
            .path()
            .join(SegmentFile::OffsetIndex.name(Offset(0)))
            .exists());
        assert_eq!(
            offsets_in(&log.read(Offset(3), 1 << 20, true).unwrap().records)[0],
            2
        );
        let b = log.batch_for_timestamp(1001).unwrap().unwrap();
        assert_eq!(BatchHeader::parse(&b).unwrap().base_offset, 2);
    }

    fn idempotent_batch(producer: i64, epoch: i16, seq: i32, count: i32) -> Vec<u8> {
        crate::testing::BatchBuilder::new(count)
            .timestamp(1)
            .payload(10)
            .producer(producer, epoch, seq)
            .build()
    }

    #[test]
    fn idempotent_retries_are_deduplicated_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        for clean in [false, true] {
            let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
            let start = log.log_end_offset().0;
            let first = log.append(&mut idempotent_batch(9, 0, 0, 3), 0).unwrap();
            // Enough appends to roll segments, so that a snapshot is used.
            for i in 0..20 {
                log.append(&mut idempotent_batch(9, 0, 3 + 2 * i, 2), 0)
                    .unwrap();
            }
            let end = log.log_end_offset();
            if clean {
                log.close().unwrap();
            }
            drop(log);
            let log = Log::open(dir.path(), small_config(), clean, 0).unwrap();
            // The last batch again: a duplicate, answered with its offsets.
            let again = log.append(&mut idempotent_batch(9, 0, 41, 2), 0).unwrap();
            assert!(again.duplicate);
            assert_eq!(again.last_offset, Offset(end.0 - 1));
            assert_eq!(log.log_end_offset(), end);
            assert!(matches!(
                log.append(&mut idempotent_batch(9, 0, 50, 1), 0),
                Err(StorageError::Producer(_))
            ));
            assert_eq!(first.base_offset, Offset(start));
            // A new producer epoch starts over at sequence 0 for the next round.
            log.append(&mut idempotent_batch(9, 1, 0, 1), 0).unwrap();
            assert!(matches!(
                log.append(&mut idempotent_batch(9, 0, 43, 1), 0),
                Err(StorageError::Producer(_))
            ));
            log.close().unwrap();
            // Start the next round with a fresh producer id.
            std::fs::remove_dir_all(dir.path()).unwrap();
        }
    }

    #[test]
    fn reads_span_segments_up_to_max_bytes_wherever_they_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
        // 60 one-record batches of 91 bytes in 1000-byte segments: 10 each.
        for i in 0..60 {
            log.append(&mut make_batch(1, 1000 + i, 30), 0).unwrap();
        }
        assert!(log.segment_count() >= 6);
        let batch_len = make_batch(1, 0, 30).len();
        for offset in [0, 5, 9, 10, 23, 59] {
            for max in [0, 1, batch_len, 3 * batch_len - 1, 12 * batch_len, 1 << 20] {
                for min_one in [false, true] {
                    let got = offsets_in(&log.read(Offset(offset), max, min_one).unwrap().records);
                    let mut want: Vec<i64> = (offset..60).take(max / batch_len).collect();
                    if want.is_empty() && min_one {
                        want.push(offset);
                    }
                    assert_eq!(got, want, "offset {offset}, max {max}, min_one {min_one}");
                }
            }
        }
    }
}
