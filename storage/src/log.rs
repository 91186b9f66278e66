//! A partition's local log: an ordered set of segments, the last one active.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tracing::{debug, info, warn};

use crate::batch::{self, BatchHeader};
use crate::error::{StorageError, StorageResult};
use crate::producer::ProducerState;
use crate::scan::{Scanner, Step};
use crate::segment::{OpenMode, Segment, SCAN_CHUNK};
use crate::{LogConfig, Offset, SegmentFile, TimestampType};

/// Result of a successful append.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record.
    pub base_offset: Offset,
    /// Offset given to the last record.
    pub last_offset: Offset,
    /// The broker time written into the batches for `LogAppendTime` topics,
    /// -1 for `CreateTime`.
    pub log_append_time_ms: i64,
    pub log_start_offset: Offset,
    /// The batch repeated one of its producer's last batches: nothing was
    /// written and the offsets are the original ones.
    pub duplicate: bool,
    /// The append rolled a new segment; the sealed one waits for
    /// [`Log::flush_sealed`].
    pub rolled: bool,
}

/// Whole batches read from the log, with the offsets a Fetch response reports.
#[derive(Clone, Debug)]
pub struct FetchData {
    pub records: Bytes,
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
}

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

/// A sealed segment for the uploader: its log file handle and the paths of
/// its (trimmed, final) indexes.
#[derive(Clone, Debug)]
pub struct SealedSegment {
    pub base_offset: Offset,
    pub next_offset: Offset,
    pub size: u64,
    pub max_timestamp: i64,
    pub file: Arc<fs::File>,
    pub index_path: PathBuf,
    pub time_index_path: PathBuf,
}

/// What a retention pass removed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
}

struct Inner {
    segments: BTreeMap<Offset, Segment>,
    config: LogConfig,
    log_start: Offset,
    unflushed_records: i64,
    oldest_unflushed_ms: i64,
    deleted: bool,
    producers: ProducerState,
    /// The producer state captured at the last roll, written to its
    /// snapshot file by flush_sealed rather than under the lock.
    pending_snapshot: Option<(Offset, Vec<u8>)>,
}

impl Inner {
    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }
    fn log_end(&self) -> Offset {
        self.active().next_offset
    }
}

/// A segment to read outside the lock: its file stays open even if
/// retention deletes it meanwhile.
struct SegmentView {
    file: Arc<fs::File>,
    path: Arc<Path>,
    size: u64,
    start: u64,
}

/// One partition's log in its own directory.
///
/// Shared by every task serving the partition: all methods take `&self` and
/// may be called concurrently from any thread. Appends are serialized by an
/// internal mutex; reads hold it only to look up positions and then read the
/// files without it. Every method does blocking file I/O, so async callers
/// run them on a blocking thread.
pub struct Log {
    dir: PathBuf,
    inner: Mutex<Inner>,
    /// Serialises the small files flush_sealed writes outside `inner`.
    files: Mutex<()>,
}

/// A sealed segment whose fsync is pending: base offset, log file, path.
type Unsynced = (Offset, Arc<fs::File>, Arc<Path>);

/// The file in a log directory naming its recovery point (see FORMAT.md).
const RECOVERY_POINT_FILE: &str = "recovery-point";

/// The base of the first segment that may hold data not yet fsynced: the
/// first sealed segment not durable, or the active one.
fn recovery_point(inner: &Inner) -> Offset {
    let n = inner.segments.len();
    inner
        .segments
        .values()
        .take(n - 1)
        .find(|s| !s.durable)
        .unwrap_or(inner.active())
        .base
}

/// The file naming a log start offset that DeleteRecords moved into a
/// segment (see FORMAT.md).
const LOG_START_FILE: &str = "log-start-offset";

fn read_recovery_point(dir: &Path) -> Option<Offset> {
    read_offset_file(&dir.join(RECOVERY_POINT_FILE))
}

fn read_offset_file(path: &Path) -> Option<Offset> {
    fs::read_to_string(path)
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Offset)
}

impl Log {
    /// Opens the log in `dir`, creating it if needed. `clean_shutdown` says
    /// whether the broker stopped cleanly last time; if not, the segments from
    /// the recovery point on are recovered batch by batch and the older
    /// segments' indexes checked.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        clean_shutdown: bool,
        now_ms: i64,
    ) -> StorageResult<Log> {
        fs::create_dir_all(dir).map_err(StorageError::io("create log directory", dir))?;
        let mut bases = Vec::new();
        for entry in fs::read_dir(dir).map_err(StorageError::io("list log directory", dir))? {
            let entry = entry.map_err(StorageError::io("list log directory", dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".log") {
                if let Ok(base) = stem.parse::<i64>() {
                    bases.push(Offset(base));
                }
            }
        }
        bases.sort();
        let mut segments = BTreeMap::new();
        let last = bases.last().copied();
        // Segments from the recovery point on may not have been fsynced; with
        // no recovery point, every segment is checked batch by batch.
        let recover_from = read_recovery_point(dir).unwrap_or(Offset::ZERO);
        for (i, &base) in bases.iter().enumerate() {
            let mode = if clean_shutdown {
                OpenMode::Clean
            } else if Some(base) == last || base >= recover_from {
                OpenMode::Recover
            } else {
                OpenMode::CheckIndexes
            };
            let (segment, repair) = Segment::open(dir, base, &config, mode, now_ms)?;
            let later = &bases[i + 1..];
            if mode == OpenMode::Recover && repair.truncated_bytes > 0 && !later.is_empty() {
                // A torn segment followed by others: their offsets no longer
                // follow on, and nothing in them was acknowledged as durable
                // that this segment was not, so they go as Kafka's recovery does.
                for &b in later {
                    warn!(dir = %dir.display(), base_offset = b.0, "deleting a segment after a torn one");
                    Segment::delete_files(dir, b)?;
                }
                segments.insert(base, segment);
                break;
            }
            if repair.truncated_bytes > 0 || (repair.rebuilt_indexes && mode != OpenMode::Recover) {
                warn!(
                    dir = %dir.display(),
                    base_offset = base.0,
                    truncated_bytes = repair.truncated_bytes,
                    rebuilt_indexes = repair.rebuilt_indexes,
                    "repaired segment"
                );
            }
            segments.insert(base, segment);
        }
        match segments.values_mut().next_back() {
            Some(active) => active.activate(&config)?,
            None => {
                segments.insert(
                    Offset::ZERO,
                    Segment::create(dir, Offset::ZERO, &config, now_ms)?,
                );
            }
        }
        let first_base = *segments.keys().next().expect("at least one segment");
        let log_end = segments
            .values()
            .next_back()
            .expect("non-empty")
            .next_offset;
        // DeleteRecords may have moved the start into a segment.
        let log_start = read_offset_file(&dir.join(LOG_START_FILE))
            .map_or(first_base, |o| o.min(log_end).max(first_base));
        let log = Log {
            dir: dir.to_owned(),
            inner: Mutex::new(Inner {
                segments,
                config,
                log_start,
                unflushed_records: 0,
                oldest_unflushed_ms: now_ms,
                deleted: false,
                producers: ProducerState::default(),
                pending_snapshot: None,
            }),
            files: Mutex::new(()),
        };
        {
            let mut inner = log.inner.lock().unwrap_or_else(|p| p.into_inner());
            let producers = log.rebuild_producers(&inner, now_ms)?;
            inner.producers = producers;
        }
        debug!(dir = %dir.display(), log_start = log_start.0, log_end = log.log_end_offset().0, "opened log");
        Ok(log)
    }

    fn lock(&self) -> StorageResult<MutexGuard<'_, Inner>> {
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
            .log_end()
    }

    /// Offset up to which consumers may read. With a single replica every
    /// append is committed as soon as it is written, so this is the log end.
    pub fn high_watermark(&self) -> Offset {
        self.log_end_offset()
    }

    /// Bytes held in local segments.
    pub fn size_bytes(&self) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.segments.values().map(|s| s.size).sum()
    }

    /// Bytes held in local segments starting at or after `offset`.
    pub fn bytes_from(&self, offset: Offset) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.segments.range(offset..).map(|(_, s)| s.size).sum()
    }

    /// How many sealed (no longer active) segments hold records at or after
    /// `offset`, and their bytes: what the uploader still has to copy when
    /// the cold tier ends at `offset`.
    pub fn sealed_from(&self, offset: Offset) -> (usize, u64) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let n = inner.segments.len();
        inner
            .segments
            .values()
            .take(n.saturating_sub(1))
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

    /// Appends the record batches in `data` (one Produce partition's
    /// records, back to back). Every batch is validated first and nothing is
    /// written unless all are valid. Offsets are assigned by rewriting each
    /// batch's base offset in place.
    pub fn append(&self, data: &mut [u8], now_ms: i64) -> StorageResult<AppendInfo> {
        let config = self.lock()?.config.clone();
        let mut headers: Vec<(usize, BatchHeader)> = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let header =
                batch::validate(&data[pos..]).map_err(|reason| StorageError::CorruptBatch {
                    position: pos,
                    reason,
                })?;
            if header.total_len() > config.max_message_bytes {
                return Err(StorageError::BatchTooLarge {
                    size: header.total_len(),
                    max: config.max_message_bytes,
                });
            }
            headers.push((pos, header));
            pos += header.total_len();
        }
        if headers.is_empty() {
            return Err(StorageError::CorruptBatch {
                position: 0,
                reason: batch::BatchError::Truncated {
                    needed: batch::HEADER_LEN,
                    available: 0,
                },
            });
        }

        let mut inner = self.lock()?;
        let only: Vec<BatchHeader> = headers.iter().map(|(_, h)| *h).collect();
        if let Some(original) = inner.producers.check_all(&only)? {
            return Ok(AppendInfo {
                base_offset: original.base_offset,
                last_offset: original.last_offset,
                log_append_time_ms: -1,
                log_start_offset: inner.log_start,
                duplicate: true,
                rolled: false,
            });
        }
        let base_offset = inner.log_end();
        let append_time = inner.config.timestamp_type == TimestampType::LogAppendTime;
        let mut next = base_offset;
        for (pos, header) in headers.iter_mut() {
            let end = *pos + header.total_len();
            batch::set_base_offset(&mut data[*pos..end], next.0);
            header.base_offset = next.0;
            if append_time {
                batch::set_log_append_time(&mut data[*pos..end], now_ms);
                header.max_timestamp = now_ms;
            }
            next = Offset(header.last_offset() + 1);
        }
        let last_offset = Offset(next.0 - 1);
        let rolled = inner
            .active()
            .must_roll(data.len(), last_offset, &inner.config, now_ms);
        if rolled {
            self.roll(&mut inner, now_ms)?;
        }
        inner.active_mut().append(data, &headers)?;
        for (_, h) in &headers {
            if crate::producer::is_idempotent(h) {
                inner.producers.update(h, now_ms);
            }
        }

        let records = next.0 - base_offset.0;
        if inner.unflushed_records == 0 {
            inner.oldest_unflushed_ms = now_ms;
        }
        inner.unflushed_records += records;
        if inner.unflushed_records >= inner.config.flush_messages {
            inner.active().flush()?;
            inner.unflushed_records = 0;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time_ms: if append_time { now_ms } else { -1 },
            log_start_offset: inner.log_start,
            rolled,
            duplicate: false,
        })
    }

    /// Seals the active segment and starts a new one at the log end.
    fn roll(&self, inner: &mut Inner, now_ms: i64) -> StorageResult<()> {
        let base = inner.log_end();
        // The sealed segment's fsync (up to a segment of dirty pages) is left
        // to flush_sealed, outside the lock, so that appends never wait for it.
        inner.active_mut().seal_without_flush()?;
        inner.unflushed_records = 0;
        let segment = Segment::create(&self.dir, base, &inner.config, now_ms)?;
        // The new file's directory entry is made durable by flush_sealed.
        inner.segments.insert(base, segment);
        inner.pending_snapshot = Some((base, inner.producers.to_bytes()));
        debug!(dir = %self.dir.display(), base_offset = base.0, "rolled segment");
        Ok(())
    }

    /// fsyncs the segments sealed by rolls since the last call (log and
    /// index files, and the directory) and writes the producer snapshot of
    /// the last roll, all outside the log's lock; then marks the segments
    /// durable (eligible for upload) and moves the recovery point past them.
    /// Blocking; safe to call concurrently with appends and with itself.
    pub fn flush_sealed(&self) -> StorageResult<()> {
        let (pending, snapshot): (Vec<Unsynced>, _) = {
            let mut inner = self.lock()?;
            let n = inner.segments.len();
            let pending = inner
                .segments
                .values()
                .take(n - 1)
                .filter(|s| !s.durable)
                .map(|s| (s.base, Arc::clone(&s.file), Arc::clone(&s.log_path)))
                .collect();
            (pending, inner.pending_snapshot.take())
        };
        // `files` is never held while taking `inner` (close takes them the
        // other way round), only around each file write.
        if let Some((offset, bytes)) = snapshot {
            let _files = self.files.lock().unwrap_or_else(|p| p.into_inner());
            self.write_producer_snapshot(offset, &bytes)?;
        }
        if pending.is_empty() {
            return Ok(());
        }
        // The segments' logs and indexes, then the directory, whose entries
        // for the files the rolls created must survive a power loss too.
        for (base, file, path) in &pending {
            file.sync_data()
                .map_err(StorageError::io("fsync segment", &**path))?;
            for index in Segment::index_paths(&self.dir, *base) {
                fs::File::open(&index)
                    .and_then(|f| f.sync_all())
                    .map_err(StorageError::io("fsync index", &index))?;
            }
        }
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(StorageError::io("fsync log directory", &self.dir))?;
        let point = {
            let mut inner = self.lock()?;
            if inner.deleted {
                return Ok(());
            }
            for (base, ..) in &pending {
                if let Some(s) = inner.segments.get_mut(base) {
                    s.durable = true;
                }
            }
            recovery_point(&inner)
        };
        let _files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        self.write_recovery_point(point)
    }

    /// Records the base of the first segment that may hold data not yet
    /// fsynced (the active one when every sealed segment is durable): an
    /// unclean start recovers from there. Replaced atomically; a stale value
    /// only makes recovery check more.
    fn write_recovery_point(&self, point: Offset) -> StorageResult<()> {
        let path = self.dir.join(RECOVERY_POINT_FILE);
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, point.0.to_string())
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(StorageError::io("write recovery point", &path))
    }

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
    fn write_producer_snapshot(&self, offset: Offset, bytes: &[u8]) -> StorageResult<()> {
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
    /// not stored.
    fn rebuild_producers(&self, inner: &Inner, now_ms: i64) -> StorageResult<ProducerState> {
        let end = inner.log_end();
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
        for seg in inner.segments.values().filter(|s| s.next_offset > from) {
            let start = if seg.base <= from {
                seg.lookup(from)
            } else {
                0
            };
            let mut scanner = Scanner::new(&seg.file, &seg.log_path, start, seg.size, SCAN_CHUNK);
            while let Step::Batch { header, .. } = scanner.peek(false)? {
                if header.base_offset >= from.0 && crate::producer::is_idempotent(&header) {
                    state.update(&header, now_ms);
                }
                scanner.advance(&header);
            }
        }
        Ok(state)
    }

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
        let (views, high_watermark, log_start_offset) = {
            let inner = self.lock()?;
            let log_end = inner.log_end();
            if offset < inner.log_start || offset > log_end {
                return Err(StorageError::OffsetOutOfRange {
                    requested: offset,
                    log_start: inner.log_start,
                    log_end,
                });
            }
            let mut views = Vec::new();
            if offset < log_end {
                let first = *inner
                    .segments
                    .range(..=offset)
                    .next_back()
                    .map(|(k, _)| k)
                    .unwrap_or(&inner.log_start);
                for (base, seg) in inner.segments.range(first..) {
                    views.push(SegmentView {
                        file: Arc::clone(&seg.file),
                        path: Arc::clone(&seg.log_path),
                        size: seg.size,
                        start: if *base == first {
                            seg.lookup(offset)
                        } else {
                            0
                        },
                    });
                }
            }
            (views, log_end, inner.log_start)
        };

        let mut parts: Vec<Bytes> = Vec::new();
        let mut remaining = max_bytes;
        for view in views {
            let chunk = max_bytes.clamp(SCAN_CHUNK, 16 * 1024 * 1024);
            let mut scanner = Scanner::new(&view.file, &view.path, view.start, view.size, chunk);
            let mut range: Option<(u64, u64)> = None;
            let mut exhausted = true;
            loop {
                match scanner.peek(false)? {
                    Step::End => break,
                    Step::Corrupt { position, reason } => {
                        warn!(segment = %view.path.display(), position, reason, "unreadable batch while reading");
                        break;
                    }
                    Step::Batch { position, header } => {
                        if header.last_offset() < offset.0 {
                            scanner.advance(&header);
                            continue;
                        }
                        let len = header.total_len();
                        let first = parts.is_empty() && range.is_none();
                        if len > remaining && !(first && min_one_batch) {
                            exhausted = false;
                            break;
                        }
                        remaining = remaining.saturating_sub(len);
                        range = Some(match range {
                            None => (position, position + len as u64),
                            Some((s, _)) => (s, position + len as u64),
                        });
                        scanner.advance(&header);
                    }
                }
            }
            if let Some((start, end)) = range {
                parts.push(scanner.range(start, (end - start) as usize)?);
            }
            if !exhausted || remaining == 0 {
                break;
            }
        }
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

    /// The first batch holding a record with a timestamp `>= ts`, for
    /// ListOffsets by timestamp; the caller finds the record inside it.
    pub fn batch_for_timestamp(&self, ts: i64) -> StorageResult<Option<Bytes>> {
        let view = {
            let inner = self.lock()?;
            inner
                .segments
                .values()
                .find(|s| s.max_timestamp >= ts)
                .map(|s| SegmentView {
                    file: Arc::clone(&s.file),
                    path: Arc::clone(&s.log_path),
                    size: s.size,
                    start: s.lookup_timestamp(ts),
                })
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
            for s in inner.segments.values() {
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
        if inner.active().size > 0 && now_ms - inner.active().last_modified_ms() > max_age_ms {
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
            let mut total: u64 = inner.segments.values().map(|s| s.size).sum();
            let mut removed = Vec::new();
            while inner.segments.len() > 1 {
                let first = inner.segments.values().next().expect("non-empty");
                let info = SegmentInfo {
                    base_offset: first.base,
                    next_offset: first.next_offset,
                    size: first.size,
                    last_modified_ms: first.last_modified_ms(),
                };
                if !delete(&info, total) {
                    break;
                }
                let (base, seg) = inner.segments.pop_first().expect("non-empty");
                total -= seg.size;
                removed.push((base, seg.size));
            }
            let first_base = *inner.segments.keys().next().expect("active remains");
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

    /// Every sealed (no longer active) segment, oldest first, with handles
    /// that stay valid while the caller reads them even if retention deletes
    /// the files meanwhile.
    pub fn sealed_segments(&self) -> StorageResult<Vec<SealedSegment>> {
        let inner = self.lock()?;
        let n = inner.segments.len();
        Ok(inner
            .segments
            .values()
            .take(n - 1)
            .take_while(|s| s.durable)
            .map(|s| SealedSegment {
                base_offset: s.base,
                next_offset: s.next_offset,
                size: s.size,
                max_timestamp: s.max_timestamp,
                file: Arc::clone(&s.file),
                index_path: SegmentFile::OffsetIndex.path(&self.dir, s.base),
                time_index_path: SegmentFile::TimeIndex.path(&self.dir, s.base),
            })
            .collect())
    }

    /// fsyncs the active segment if `flush.ms` has passed since the oldest
    /// unflushed append.
    pub fn maybe_flush(&self, now_ms: i64) -> StorageResult<()> {
        let mut inner = self.lock()?;
        if inner.unflushed_records > 0
            && now_ms - inner.oldest_unflushed_ms >= inner.config.flush_ms
        {
            inner.active().flush()?;
            inner.unflushed_records = 0;
        }
        Ok(())
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

    /// fsyncs the active segment.
    pub fn flush(&self) -> StorageResult<()> {
        let mut inner = self.lock()?;
        inner.active().flush()?;
        inner.unflushed_records = 0;
        Ok(())
    }

    /// Flushes and seals the active segment for a clean shutdown. Appends
    /// after this reopen nothing: the log must be opened again.
    pub fn close(&self) -> StorageResult<()> {
        let mut inner = self.lock()?;
        let end = inner.log_end();
        inner.pending_snapshot = None;
        let _files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        self.write_producer_snapshot(end, &inner.producers.to_bytes())?;
        for s in inner.segments.values_mut() {
            s.seal()?;
        }
        self.write_recovery_point(recovery_point(&inner))?;
        inner.deleted = true;
        Ok(())
    }

    /// Moves the log start to `offset` (DeleteRecords): reads below it fail
    /// with OffsetOutOfRange from now on, segments wholly below it are
    /// deleted, and the new start is persisted (written, fsynced, renamed)
    /// before this returns. An offset at or below the start changes
    /// nothing; one past the log end is refused. Returns the log start.
    pub fn delete_records_before(&self, offset: Offset) -> StorageResult<Offset> {
        let removed = {
            let mut inner = self.lock()?;
            let log_end = inner.log_end();
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
            let path = self.dir.join(LOG_START_FILE);
            let tmp = path.with_extension("tmp");
            fs::File::create(&tmp)
                .and_then(|mut f| {
                    std::io::Write::write_all(&mut f, offset.0.to_string().as_bytes())?;
                    f.sync_all()
                })
                .and_then(|()| fs::rename(&tmp, &path))
                .and_then(|()| fs::File::open(&self.dir)?.sync_all())
                .map_err(StorageError::io("write log start offset", &path))?;
            inner.log_start = offset;
            let mut removed = Vec::new();
            while inner.segments.len() > 1 {
                let first = inner.segments.values().next().expect("non-empty");
                if first.next_offset > offset {
                    break;
                }
                let (base, _) = inner.segments.pop_first().expect("non-empty");
                removed.push(base);
            }
            removed
        };
        for base in removed {
            Segment::delete_files(&self.dir, base)?;
        }
        info!(dir = %self.dir.display(), log_start = offset.0, "log start moved by DeleteRecords");
        Ok(self.log_start_offset())
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
    use super::*;
    use crate::batch::tests::make_batch;
    use crate::batch::BatchHeader;

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
            active_path = inner.active().log_path.to_path_buf();
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
            assert_eq!(point, log.inner.lock().unwrap().active().base);

            // More rolls whose fsyncs never happen.
            append_n(&log, 30, 2000);
            assert!(log.segment_count() > n + 1);
            let inner = log.inner.lock().unwrap();
            let torn = &inner.segments[&point];
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
            path = log.inner.lock().unwrap().active().log_path.to_path_buf();
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
        let mut b = make_batch(count, 1, 10);
        b[43..51].copy_from_slice(&producer.to_be_bytes());
        b[51..53].copy_from_slice(&epoch.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        let crc = batch::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
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
}
