//! Appending to a log: validation of every batch before any is written,
//! offsets assigned under the log's mutex, idempotent producers checked and
//! updated in the same step, segment rolls, and the fsyncs that `flush.*`
//! and rolls ask for.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use tracing::debug;

use crate::batch::{self, BatchHeader};
use crate::checkpoint;
use crate::codec::{self, Codec};
use crate::error::{StorageError, StorageResult};
use crate::log::{Inner, Log};
use crate::marker::{self, Marker};
use crate::record;
use crate::segment::{ActiveSegment, Segment};
use crate::txn_index::AbortedTxn;
use crate::{LogConfig, Offset, TimestampType};

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

/// Kafka's `message.timestamp.before.max.ms` and `.after.max.ms` for
/// `CreateTime` logs: the batch's largest timestamp may not be further
/// ahead of the broker's clock than the one bound, nor its first record's
/// further behind than the other. The records themselves are not decoded,
/// so the first record's timestamp stands for the earliest.
fn check_timestamps(header: &BatchHeader, config: &LogConfig, now_ms: i64) -> StorageResult<()> {
    if config.timestamp_type != TimestampType::CreateTime {
        return Ok(());
    }
    let earliest = now_ms.saturating_sub(config.timestamp_before_max_ms);
    let latest = now_ms.saturating_add(config.timestamp_after_max_ms);
    for ts in [header.base_timestamp, header.max_timestamp] {
        if ts < earliest || ts > latest {
            return Err(StorageError::InvalidTimestamp {
                timestamp: ts,
                earliest,
                latest,
            });
        }
    }
    Ok(())
}

impl Log {
    /// A compacted log keeps records by key, so a record without one is
    /// refused, as Kafka refuses it. Transaction markers have no key and
    /// are not records of the topic's.
    fn check_keys(
        &self,
        batch: &[u8],
        header: &BatchHeader,
        position: usize,
        config: &LogConfig,
    ) -> StorageResult<()> {
        if header.attributes & batch::CONTROL_FLAG != 0 {
            return Ok(());
        }
        let unreadable = |reason: String| StorageError::UnreadableRecords { position, reason };
        let codec = Codec::from_id(header.compression())
            .ok_or_else(|| unreadable(format!("unknown codec {}", header.compression())))?;
        let plain = codec::decompress(
            codec,
            &batch[batch::HEADER_LEN..],
            config.max_decompressed_bytes,
        )
        .map_err(|e| unreadable(e.to_string()))?;
        let records = record::records(&plain, header.record_count).map_err(unreadable)?;
        if records.iter().any(|r| r.key.is_none()) {
            return Err(StorageError::KeylessRecord {
                partition: self
                    .dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            });
        }
        Ok(())
    }
}

impl Log {
    /// Ends the open transaction of the marker's producer; an ABORT goes
    /// into the transaction index of the active segment, which holds the
    /// marker. The entry's last stable offset is the one after the
    /// transaction ends, as Kafka records it.
    pub(crate) fn apply_marker(
        inner: &mut Inner,
        h: &BatchHeader,
        m: Marker,
        now_ms: i64,
    ) -> StorageResult<()> {
        let first = inner
            .producers
            .complete_txn(h.producer_id, h.producer_epoch, now_ms);
        if let (Marker::Abort, Some(first_offset)) = (m, first) {
            let last_stable_offset = inner
                .producers
                .first_unstable_offset()
                .unwrap_or(Offset(h.base_offset + 1));
            inner.segments.active_mut().txn_index.append(AbortedTxn {
                producer_id: h.producer_id,
                first_offset,
                last_offset: Offset(h.base_offset),
                last_stable_offset,
            })?;
        }
        Ok(())
    }
}

/// A sealed segment whose fsync is pending: base offset, log file, path.
type Unsynced = (Offset, Arc<fs::File>, Arc<Path>);

impl Log {
    /// Appends the record batches in `data` (one Produce partition's
    /// records, back to back). Every batch is validated first and nothing is
    /// written unless all are valid. Offsets are assigned by rewriting each
    /// batch's base offset in place.
    pub fn append(&self, data: &mut [u8], now_ms: i64) -> StorageResult<AppendInfo> {
        self.append_from(data, now_ms, false)
    }

    /// Appends a transaction marker of `producer_id` at `epoch` (the
    /// coordinator's, never a client's): the producer's open transaction
    /// on this partition ends; an ABORT is recorded in the segment's
    /// transaction index.
    pub fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        marker: Marker,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> StorageResult<AppendInfo> {
        let mut batch =
            marker::control_batch(producer_id, epoch, marker, coordinator_epoch, now_ms);
        self.append_from(&mut batch, now_ms, true)
    }

    fn append_from(
        &self,
        data: &mut [u8],
        now_ms: i64,
        from_coordinator: bool,
    ) -> StorageResult<AppendInfo> {
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
            if header.attributes & batch::CONTROL_FLAG != 0 && !from_coordinator {
                return Err(StorageError::ControlBatchFromClient { position: pos });
            }
            check_timestamps(&header, &config, now_ms)?;
            if config.compact {
                self.check_keys(&data[pos..pos + header.total_len()], &header, pos, &config)?;
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
        let base_offset = inner.segments.log_end();
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
        let rolled =
            inner
                .segments
                .active()
                .must_roll(data.len(), last_offset, &inner.config, now_ms);
        if rolled {
            self.roll(&mut inner, now_ms)?;
        }
        inner.segments.active_mut().append(data, &headers)?;
        for (pos, h) in &headers {
            if h.attributes & batch::CONTROL_FLAG != 0 {
                let end = *pos + h.total_len();
                if let Some(m) = marker::parse(h, &data[*pos..end]) {
                    Self::apply_marker(&mut inner, h, m, now_ms)?;
                }
            } else if crate::producer::is_idempotent(h) {
                inner.producers.update(h, now_ms);
            }
        }

        let records = next.0 - base_offset.0;
        if inner.unflushed_records == 0 {
            inner.oldest_unflushed_ms = now_ms;
        }
        inner.unflushed_records += records;
        if inner.unflushed_records >= inner.config.flush_messages {
            inner.segments.active().flush()?;
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

    /// Rolls the active segment if it holds records and is `segment.ms`
    /// old, without waiting for an append to do it (Kafka rolls only on
    /// append): a tiered log's records then reach the cold tier within
    /// `segment.ms` plus the upload pass even when the partition goes
    /// quiet. Blocking.
    pub fn roll_if_due(&self, now_ms: i64) -> StorageResult<()> {
        let mut inner = self.lock()?;
        let active = inner.segments.active();
        if active.size > 0 && now_ms - active.created_ms >= inner.config.segment_ms {
            self.roll(&mut inner, now_ms)?;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the log end.
    pub(crate) fn roll(&self, inner: &mut Inner, now_ms: i64) -> StorageResult<()> {
        let base = inner.segments.log_end();
        // The sealed segment's fsync (up to a segment of dirty pages) is left
        // to flush_sealed, outside the lock, so that appends never wait for it.
        let next = ActiveSegment::create(&self.dir, base, &inner.config, now_ms)?;
        // The new file's directory entry is made durable by flush_sealed.
        inner.segments.roll(next)?;
        inner.unflushed_records = 0;
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
            let pending = inner
                .segments
                .sealed()
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
            // Only segments with an aborted transaction have this file.
            let txn = crate::SegmentFile::TxnIndex.path(&self.dir, *base);
            match fs::File::open(&txn) {
                Ok(f) => f
                    .sync_all()
                    .map_err(StorageError::io("fsync index", &txn))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("open index", &txn)(e)),
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
                if let Some(s) = inner.segments.sealed_mut(base) {
                    s.durable = true;
                }
            }
            checkpoint::recovery_point(&inner.segments)
        };
        let _files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        checkpoint::write_recovery_point(&self.dir, point)
    }

    /// fsyncs the active segment if `flush.ms` has passed since the oldest
    /// unflushed append.
    pub fn maybe_flush(&self, now_ms: i64) -> StorageResult<()> {
        let mut inner = self.lock()?;
        if inner.unflushed_records > 0
            && now_ms - inner.oldest_unflushed_ms >= inner.config.flush_ms
        {
            inner.segments.active().flush()?;
            inner.unflushed_records = 0;
        }
        Ok(())
    }

    /// fsyncs the active segment.
    pub fn flush(&self) -> StorageResult<()> {
        let mut inner = self.lock()?;
        inner.segments.active().flush()?;
        inner.unflushed_records = 0;
        Ok(())
    }
}
