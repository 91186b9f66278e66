//! One segment: a `.log` file of batches plus its two indexes, in one of
//! two states with a type each. The [`ActiveSegment`] is the log's last,
//! the only one appended to, with preallocated indexes; a roll seals it into
//! a [`SealedSegment`], read-only with trimmed indexes, which is durable once
//! its files are fsynced. Both share the data and the read side in
//! [`Segment`], which they dereference to.

use std::fs::{File, OpenOptions};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::warn;

use crate::batch::BatchHeader;
use crate::error::{StorageError, StorageResult};
use crate::index::{OffsetIndex, TimeIndex};
use crate::scan::{Scanner, Step};
use crate::txn_index::TxnIndex;
use crate::{LogConfig, Offset, SegmentFile};

/// Chunk size for sequential scans of a segment.
pub(crate) const SCAN_CHUNK: usize = 256 * 1024;

/// How much to trust a segment's files when opening it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// The broker shut down cleanly: indexes are trimmed and complete.
    Clean,
    /// Unclean shutdown, sealed segment below the log's recovery point: its
    /// log was fsynced, but its indexes are checked and rebuilt if they look
    /// wrong.
    CheckIndexes,
    /// Unclean shutdown, the segment that was active or a sealed one that
    /// may not have been fsynced (at or above the recovery point): every batch is
    /// validated with its CRC, a torn or corrupt tail is truncated and the
    /// indexes are rebuilt.
    Recover,
}

/// What opening a segment had to repair, for the log.
#[derive(Debug, Default)]
pub(crate) struct Repair {
    pub truncated_bytes: u64,
    pub rebuilt_indexes: bool,
}

/// What every segment has, active or sealed. Owned by a [`crate::Log`];
/// every access goes through the log's mutex, except reads of `file`, which
/// is shared through an `Arc`.
pub(crate) struct Segment {
    pub base: Offset,
    pub log_path: Arc<Path>,
    pub file: Arc<File>,
    /// Bytes of complete batches in the file.
    pub size: u64,
    /// Offset after the last record in the segment (its base when empty).
    pub next_offset: Offset,
    /// Largest batch max timestamp, -1 when there is none.
    pub max_timestamp: i64,
    /// Base offset of the batch carrying `max_timestamp`.
    pub offset_of_max_timestamp: Offset,
    /// Wall-clock time the segment was created or opened, for `segment.ms`.
    pub created_ms: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// The aborted transactions whose markers this segment holds.
    pub txn_index: TxnIndex,
    bytes_since_index: u64,
    index_interval: u64,
}

/// The segment appends go to.
pub(crate) struct ActiveSegment(Segment);

/// A segment no longer appended to.
pub(crate) struct SealedSegment {
    segment: Segment,
    /// The segment's files have been fsynced since it was sealed. A roll
    /// seals the segment at once but leaves its fsync to a background pass,
    /// so that appends never wait for it; until then it is not uploaded.
    pub durable: bool,
}

impl Deref for ActiveSegment {
    type Target = Segment;
    fn deref(&self) -> &Segment {
        &self.0
    }
}

impl Deref for SealedSegment {
    type Target = Segment;
    fn deref(&self) -> &Segment {
        &self.segment
    }
}

impl DerefMut for ActiveSegment {
    fn deref_mut(&mut self) -> &mut Segment {
        &mut self.0
    }
}

fn paths(dir: &Path, base: Offset) -> (PathBuf, PathBuf, PathBuf) {
    (
        SegmentFile::Log.path(dir, base),
        SegmentFile::OffsetIndex.path(dir, base),
        SegmentFile::TimeIndex.path(dir, base),
    )
}

impl ActiveSegment {
    /// Creates a new, empty, active segment.
    pub fn create(
        dir: &Path,
        base: Offset,
        config: &LogConfig,
        now_ms: i64,
    ) -> StorageResult<ActiveSegment> {
        let (log, index, time) = paths(dir, base);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log)
            .map_err(StorageError::io("create segment", &log))?;
        let mut offset_index = OffsetIndex::open(&index, base, false)?;
        let mut time_index = TimeIndex::open(&time, base, false)?;
        offset_index.grow_to(config.segment_index_bytes)?;
        time_index.grow_to(config.segment_index_bytes)?;
        let mut txn_index = TxnIndex::open(&SegmentFile::TxnIndex.path(dir, base))?;
        txn_index.clear()?;
        Ok(ActiveSegment(Segment::new(
            base,
            log,
            file,
            0,
            offset_index,
            time_index,
            txn_index,
            config,
            now_ms,
        )))
    }
}

impl Segment {
    #[allow(clippy::too_many_arguments)]
    fn new(
        base: Offset,
        log_path: PathBuf,
        file: File,
        size: u64,
        offset_index: OffsetIndex,
        time_index: TimeIndex,
        txn_index: TxnIndex,
        config: &LogConfig,
        now_ms: i64,
    ) -> Segment {
        Segment {
            base,
            log_path: log_path.into(),
            file: Arc::new(file),
            size,
            next_offset: base,
            max_timestamp: -1,
            offset_of_max_timestamp: base,
            created_ms: now_ms,
            offset_index,
            time_index,
            txn_index,
            bytes_since_index: 0,
            index_interval: config.index_interval_bytes as u64,
        }
    }

    /// Opens an existing segment, repairing what `mode` asks to check. The
    /// segment comes back sealed; call [`SealedSegment::activate`] on the
    /// last one.
    pub fn open(
        dir: &Path,
        base: Offset,
        config: &LogConfig,
        mode: OpenMode,
        now_ms: i64,
    ) -> StorageResult<(SealedSegment, Repair)> {
        let (log, index, time) = paths(dir, base);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log)
            .map_err(StorageError::io("open segment", &log))?;
        let size = file
            .metadata()
            .map_err(StorageError::io("stat segment", &log))?
            .len();
        let indexes_existed = index.exists() && time.exists();
        let trust = mode == OpenMode::Clean && indexes_existed;
        let offset_index = OffsetIndex::open(&index, base, mode != OpenMode::Recover)?;
        let time_index = TimeIndex::open(&time, base, mode != OpenMode::Recover)?;
        let txn_index = TxnIndex::open(&SegmentFile::TxnIndex.path(dir, base))?;
        let mut seg = Segment::new(
            base,
            log,
            file,
            size,
            offset_index,
            time_index,
            txn_index,
            config,
            now_ms,
        );
        let mut repair = Repair::default();
        let rebuild = match mode {
            OpenMode::Recover => true,
            OpenMode::CheckIndexes if !indexes_existed || !seg.offset_index.is_sane(size) => true,
            _ if !trust && !indexes_existed => true,
            _ => false,
        };
        if rebuild {
            seg.offset_index.clear();
            seg.time_index.clear();
            seg.offset_index.grow_to(config.segment_index_bytes)?;
            seg.time_index.grow_to(config.segment_index_bytes)?;
            repair.rebuilt_indexes = mode != OpenMode::Recover || size > 0;
            repair.truncated_bytes =
                seg.scan_and_index(0, base, mode == OpenMode::Recover, true)?;
        } else {
            // The indexes are good: resume from the last indexed batch to
            // learn the segment's end and latest timestamp.
            if let Some((ts, off)) = seg.time_index.last() {
                seg.max_timestamp = ts;
                seg.offset_of_max_timestamp = off;
            }
            let (from_offset, from_pos) = seg.offset_index.last().unwrap_or((base, 0));
            repair.truncated_bytes =
                seg.scan_and_index(from_pos as u64, from_offset, false, false)?;
            if mode == OpenMode::CheckIndexes && !seg.time_index.is_sane(seg.next_offset) {
                seg.time_index.clear();
                seg.offset_index.clear();
                seg.offset_index.grow_to(config.segment_index_bytes)?;
                seg.time_index.grow_to(config.segment_index_bytes)?;
                repair.rebuilt_indexes = true;
                seg.scan_and_index(0, base, false, true)?;
            }
        }
        if mode == OpenMode::Recover {
            seg.txn_index.truncate_from(seg.next_offset)?;
        }
        let mut sealed = ActiveSegment(seg).seal_without_flush()?;
        if mode == OpenMode::Clean && !repair.rebuilt_indexes && repair.truncated_bytes == 0 {
            // Files a clean shutdown (or the cleaner, before its swap)
            // fsynced and that nothing changed since are durable already.
            sealed.durable = true;
        } else {
            sealed.make_durable()?;
        }
        Ok((sealed, repair))
    }

    /// Walks the batches from `position`, learning the end offset and the
    /// largest timestamp, adding index entries when `index` is set and
    /// checking CRCs when `check_crc` is. Whatever follows the first bad
    /// batch is cut off; returns how many bytes that was.
    fn scan_and_index(
        &mut self,
        position: u64,
        first_offset: Offset,
        check_crc: bool,
        index: bool,
    ) -> StorageResult<u64> {
        let file = Arc::clone(&self.file);
        let path = Arc::clone(&self.log_path);
        let mut scanner = Scanner::new(&file, &path, position, self.size, SCAN_CHUNK);
        self.next_offset = self.next_offset.max(first_offset);
        loop {
            match scanner.peek(check_crc)? {
                Step::End => return Ok(0),
                Step::Batch { position, header } => {
                    if header.base_offset < self.next_offset.0 && position > 0 && index {
                        let reason = format!(
                            "base offset {} goes backwards from {}",
                            header.base_offset, self.next_offset
                        );
                        return self.truncate_tail(position, &reason);
                    }
                    if index {
                        self.index_batch(&header, position);
                    } else {
                        self.note_timestamp(&header);
                    }
                    self.next_offset = Offset(header.last_offset() + 1);
                    scanner.advance(&header);
                }
                Step::Corrupt { position, reason } => return self.truncate_tail(position, &reason),
            }
        }
    }

    fn truncate_tail(&mut self, position: u64, reason: &str) -> StorageResult<u64> {
        let dropped = self.size - position;
        warn!(
            segment = %self.log_path.display(),
            position,
            dropped_bytes = dropped,
            reason,
            "truncating a torn or corrupt segment tail"
        );
        self.file
            .set_len(position)
            .map_err(StorageError::io("truncate segment", &*self.log_path))?;
        self.file
            .sync_all()
            .map_err(StorageError::io("fsync segment", &*self.log_path))?;
        self.size = position;
        Ok(dropped)
    }

    fn note_timestamp(&mut self, header: &BatchHeader) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = Offset(header.base_offset);
        }
    }

    /// Updates the indexes for a batch that starts at `position`. The log
    /// rolls before an index fills up, so appends to them always fit.
    fn index_batch(&mut self, header: &BatchHeader, position: u64) {
        self.note_timestamp(header);
        if self.bytes_since_index >= self.index_interval {
            self.offset_index
                .append(Offset(header.base_offset), position as u32);
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += header.total_len() as u64;
    }

    /// Where to start reading for `target`: the position of the last
    /// indexed batch at or before it.
    pub fn lookup(&self, target: Offset) -> u64 {
        self.offset_index.lookup(target).1 as u64
    }

    /// Where to start scanning for the first record with timestamp `>= ts`.
    pub fn lookup_timestamp(&self, ts: i64) -> u64 {
        let offset = self.time_index.lookup(ts);
        self.lookup(offset)
    }

    /// fsyncs the log file. Index files are not synced here: after an
    /// unclean shutdown the active segment's indexes are rebuilt anyway.
    pub fn flush(&self) -> StorageResult<()> {
        self.file
            .sync_data()
            .map_err(StorageError::io("fsync segment", &*self.log_path))
    }

    /// The index files of the segment at `base` in `dir`.
    pub fn index_paths(dir: &Path, base: Offset) -> [PathBuf; 2] {
        let (_, index, time) = paths(dir, base);
        [index, time]
    }

    /// Time of the newest record, or the file's modification time when the
    /// segment has no timestamps: what `retention.ms` measures.
    pub fn last_modified_ms(&self) -> i64 {
        if self.max_timestamp >= 0 {
            return self.max_timestamp;
        }
        self.file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// Removes the segment's files.
    pub fn delete_files(dir: &Path, base: Offset) -> StorageResult<()> {
        let (log, index, time) = paths(dir, base);
        for p in [log, index, time, SegmentFile::TxnIndex.path(dir, base)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("delete segment file", p)(e)),
            }
        }
        Ok(())
    }
}

impl ActiveSegment {
    /// Whether `bytes` more would break a limit of the segment format or of
    /// `config`, so the log must roll first.
    pub fn must_roll(
        &self,
        bytes: usize,
        last_offset: Offset,
        config: &LogConfig,
        now_ms: i64,
    ) -> bool {
        if self.size == 0 {
            return false;
        }
        self.size + bytes as u64 > config.segment_bytes
            || self.size + bytes as u64 > u32::MAX as u64
            || now_ms - self.created_ms >= config.segment_ms
            || last_offset.0 - self.base.0 > u32::MAX as i64
            || self.offset_index.is_full()
            // A seal appends one last time index entry: keep room for it.
            || self.time_index.room() < 2
    }

    /// Appends already validated batches, `data` holding them back to back,
    /// `headers` their parsed headers (with final offsets) and positions
    /// relative to `data`.
    pub fn append(&mut self, data: &[u8], headers: &[(usize, BatchHeader)]) -> StorageResult<()> {
        if let Err(e) = self.file.write_all_at(data, self.size) {
            // A partial write (a full disk) must not leave bytes past the
            // end that a later clean start would take for batches.
            let _ = self.file.set_len(self.size);
            return Err(StorageError::io("append to segment", &*self.log_path)(e));
        }
        let start = self.size;
        for (rel, header) in headers {
            self.index_batch(header, start + *rel as u64);
        }
        self.size += data.len() as u64;
        if let Some((_, h)) = headers.last() {
            self.next_offset = Offset(h.last_offset() + 1);
        }
        Ok(())
    }

    /// Seals the segment without any fsync or msync, so that a roll never
    /// waits for the disk: a last time index entry for its largest
    /// timestamp, and the indexes trimmed to their entries.
    /// [`Log::flush_sealed`](crate::Log) makes it durable later.
    pub fn seal_without_flush(mut self) -> StorageResult<SealedSegment> {
        self.finish_indexes()?;
        Ok(SealedSegment {
            segment: self.0,
            durable: false,
        })
    }

    /// The final form of the segment's files for a clean shutdown, as a
    /// seal leaves them, fsynced; the log is closed afterwards.
    pub fn close(&mut self) -> StorageResult<()> {
        self.finish_indexes()?;
        self.0.flush()?;
        self.0.txn_index.sync()?;
        self.0.offset_index.sync()?;
        self.0.time_index.sync()
    }

    fn finish_indexes(&mut self) -> StorageResult<()> {
        let seg = &mut self.0;
        if seg.max_timestamp >= 0 {
            seg.time_index
                .maybe_append(seg.max_timestamp, seg.offset_of_max_timestamp);
        }
        seg.offset_index.trim()?;
        seg.time_index.trim()
    }
}

impl SealedSegment {
    /// The transaction index, for recovery's re-adding of entries.
    pub fn txn_index_mut(&mut self) -> &mut TxnIndex {
        &mut self.segment.txn_index
    }

    /// Makes the last segment of a log that was opened the active one
    /// again: indexes preallocated for appends.
    pub fn activate(self, config: &LogConfig) -> StorageResult<ActiveSegment> {
        let mut seg = self.segment;
        seg.offset_index.grow_to(config.segment_index_bytes)?;
        seg.time_index.grow_to(config.segment_index_bytes)?;
        seg.index_interval = config.index_interval_bytes as u64;
        Ok(ActiveSegment(seg))
    }

    /// fsyncs the log and index files, once.
    pub fn make_durable(&mut self) -> StorageResult<()> {
        if !self.durable {
            self.segment.flush()?;
            self.segment.txn_index.sync()?;
            self.segment.offset_index.sync()?;
            self.segment.time_index.sync()?;
            self.durable = true;
        }
        Ok(())
    }
}
