//! Reads of a partition's history from the cold tier: the manifest finds
//! the segment, its offset or time index (from the broker-wide index cache)
//! the position, and the chunk cache the bytes, read ahead after each read
//! as far as the partition's `ReadAhead` says.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use strata_storage::batch::{BatchHeader, HEADER_LEN};
use strata_storage::index::{offset_index_lookup, time_index_lookup};
use strata_storage::select::{BatchSelection, Verdict};
use strata_storage::{AbortedTxn, Offset, SegmentFile};

use crate::cache::{ChunkCache, Served};
use crate::error::{TieringError, TieringResult};
use crate::manifest::SegmentEntry;
use crate::read_ahead::ChunkId;
use crate::remote_partition::RemotePartition;

/// Bytes a seek by time reads from the position its indexes give, before
/// it falls back to the chunk cache for a batch that runs past them.
const SEEK_READ: u64 = 64 * 1024;

/// Batches read from the cold tier.
#[derive(Clone, Debug)]
pub struct RemoteRead {
    pub records: Bytes,
}

impl RemotePartition {
    /// A remote segment's offset or time index, from the broker-wide index
    /// cache or downloaded whole into it.
    async fn index(&self, entry: &SegmentEntry, kind: SegmentFile) -> TieringResult<Bytes> {
        let k = (entry.id, kind);
        if let Some(b) = self.indexes.get(&k) {
            return Ok(b);
        }
        let key = self.object(entry, kind);
        metrics::counter!("strata_remote_gets_total", "purpose" => "index").increment(1);
        let bytes = self
            .store
            .store
            .get(&key)
            .await
            .map_err(TieringError::store("read", &key))?
            .bytes()
            .await
            .map_err(TieringError::store("read", &key))?;
        self.indexes.insert(k, bytes.clone());
        Ok(bytes)
    }

    /// The aborted transactions with records in `[from, to)` that remote
    /// segments index, oldest first: what a read_committed fetch of that
    /// range reports. Each segment's `.txnindex` is read through the index
    /// cache.
    pub async fn aborted_txns(&self, from: Offset, to: Offset) -> TieringResult<Vec<AbortedTxn>> {
        let entries: Vec<SegmentEntry> = self
            .snapshot()
            .finished()
            .filter(|e| e.txn_index && e.next_offset > from && e.base_offset < to)
            .cloned()
            .collect();
        let mut out = Vec::new();
        for entry in entries {
            let bytes = self.index(&entry, SegmentFile::TxnIndex).await?;
            out.extend(
                AbortedTxn::parse_all(&bytes)
                    .into_iter()
                    .filter(|t| t.overlaps(from, to)),
            );
        }
        out.sort_by_key(|t| t.first_offset);
        Ok(out)
    }

    /// Reads whole batches from the remote segment holding `offset`, as the
    /// local log does: starting with the batch that holds it, up to
    /// `max_bytes` and the cache's read budget (at least one batch with
    /// `min_one_batch`). `None` when no remote segment holds the offset.
    /// Starts reading ahead.
    pub async fn read(
        &self,
        offset: Offset,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> TieringResult<Option<RemoteRead>> {
        let Some(entry) = self
            .manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .segment_for(offset)
            .cloned()
        else {
            return Ok(None);
        };
        // A read from a segment's first offset (a replay from the start,
        // or one moving on to the next segment) starts at its first byte,
        // without a round trip for the offset index.
        let resume = self
            .read_ahead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .resume_at(offset, entry.id);
        let position = if offset == entry.base_offset {
            0
        } else if let Some(position) = resume {
            // A sequential reader goes on where its last read ended, without
            // a round trip for the offset index.
            position as u32
        } else {
            let index = self.index(&entry, SegmentFile::OffsetIndex).await?;
            offset_index_lookup(&index, entry.base_offset, offset).1
        };
        let mut reader = SegmentReader::new(self, &entry);
        let mut pos = position as u64;
        let budget = max_bytes.min(self.cache.read_budget());
        let mut selection = BatchSelection::new(offset, budget, min_one_batch);
        let mut next = offset;
        while pos < entry.size {
            let header = reader.header(pos).await?;
            match selection.offer(pos, &header) {
                Verdict::Stop => break,
                Verdict::Take => next = Offset(header.last_offset() + 1),
                Verdict::Skip => {}
            }
            pos += header.total_len() as u64;
        }
        let (records, end) = match selection.range() {
            Some((s, e)) => (reader.range(s, (e - s) as usize).await?, e),
            None => (Bytes::new(), position as u64),
        };
        if pos >= entry.size && next < entry.next_offset {
            // Nothing more in this segment (trailing control batches
            // filtered by compaction, say): the reader goes on in the next.
            next = entry.next_offset;
        }
        let resume = (end < entry.size && next < entry.next_offset).then_some((entry.id, end));
        let window = {
            let mut ra = self.read_ahead.lock().unwrap_or_else(|p| p.into_inner());
            ra.after_read(offset, next, resume, &reader.served)
        };
        self.read_ahead(&entry, end, window);
        Ok(Some(RemoteRead { records }))
    }

    /// Asks the cache for the `window` chunks after byte `position` of
    /// `entry` (and the one holding it), going on into the following
    /// segments, until the cache says not now.
    fn read_ahead(&self, entry: &SegmentEntry, position: u64, window: u64) {
        let chunk = self.cache.chunk_bytes();
        // A store read in place is read ahead by the page cache; a chunk or
        // two in memory is all that helps.
        let window = if ChunkCache::reads_in_place(&self.store) {
            window.min(2)
        } else {
            window
        };
        let mut todo = window + 1;
        let mut segment = entry.clone();
        let mut c = position / chunk;
        loop {
            while c * chunk < segment.size {
                let id: ChunkId = (segment.id, c);
                let answer = self.cache.prefetch(
                    &self.store,
                    &self.object(&segment, SegmentFile::Log),
                    segment.size,
                    c,
                );
                let go_on = self
                    .read_ahead
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .asked(id, answer);
                todo -= 1;
                if !go_on || todo == 0 {
                    return;
                }
                c += 1;
            }
            let following = self
                .manifest
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .segment_for(segment.next_offset)
                .cloned();
            match following {
                Some(f) => {
                    segment = f;
                    c = 0;
                }
                None => return,
            }
        }
    }

    /// The first remote batch holding a record with a timestamp `>= ts`.
    pub async fn batch_for_timestamp(&self, ts: i64) -> TieringResult<Option<Bytes>> {
        let (entry, log_start) = {
            let m = self.manifest.lock().unwrap_or_else(|p| p.into_inner());
            let log_start = m.log_start_offset.unwrap_or(Offset::ZERO);
            let entry = m
                .finished()
                .filter(|s| s.next_offset > log_start)
                .find(|s| s.max_timestamp >= ts)
                .cloned();
            (entry, log_start)
        };
        let Some(entry) = entry else { return Ok(None) };
        // Both indexes in one round trip: against a real bucket each GET
        // costs its first-byte latency.
        let (time_index, index) = futures::future::try_join(
            self.index(&entry, SegmentFile::TimeIndex),
            self.index(&entry, SegmentFile::OffsetIndex),
        )
        .await?;
        // Records below the log start (DeleteRecords) are not searched.
        let from = time_index_lookup(&time_index, entry.base_offset, ts).max(log_start);
        let (_, position) = offset_index_lookup(&index, entry.base_offset, from);
        let mut pos = position as u64;
        let wanted = |h: &BatchHeader| h.max_timestamp >= ts && h.last_offset() >= log_start.0;
        if !ChunkCache::reads_in_place(&self.store) {
            // The record is a time-index interval (4 KiB by default) or a
            // batch from the position: a small ranged GET finds it, while
            // the chunk holding it, which the consumer's first fetch reads
            // next, downloads beside it instead of after it.
            let key = self.object(&entry, SegmentFile::Log);
            let chunk = pos / self.cache.chunk_bytes();
            self.cache.prefetch(&self.store, &key, entry.size, chunk);
            let end = (pos + SEEK_READ).min(entry.size);
            metrics::counter!("strata_remote_gets_total", "purpose" => "seek").increment(1);
            let near = self
                .store
                .store
                .get_range(&key, pos..end)
                .await
                .map_err(TieringError::store("read", &key))?;
            let mut at = 0usize;
            while at + HEADER_LEN <= near.len() {
                let header =
                    BatchHeader::parse(&near[at..]).map_err(|e| TieringError::Corrupt {
                        key: key.to_string(),
                        reason: e.to_string(),
                    })?;
                if !wanted(&header) {
                    at += header.total_len();
                    continue;
                }
                if at + header.total_len() <= near.len() {
                    return Ok(Some(near.slice(at..at + header.total_len())));
                }
                // A batch larger than the small read: the cache has it.
                break;
            }
            pos += at as u64;
        }
        let mut reader = SegmentReader::new(self, &entry);
        while pos < entry.size {
            let header = reader.header(pos).await?;
            if wanted(&header) {
                return reader.range(pos, header.total_len()).await.map(Some);
            }
            pos += header.total_len() as u64;
        }
        Ok(None)
    }

    /// The batch starting at or holding `offset`, for the max-timestamp query.
    pub async fn batch_at(&self, offset: Offset) -> TieringResult<Option<Bytes>> {
        Ok(self
            .read(offset, 1, true)
            .await?
            .map(|r| r.records)
            .filter(|r| !r.is_empty()))
    }
}

/// Reads byte ranges of one remote segment through the chunk cache, keeping
/// the chunks it used for the rest of one request.
struct SegmentReader<'a> {
    partition: &'a RemotePartition,
    key: ObjectPath,
    id: uuid::Uuid,
    size: u64,
    chunks: HashMap<u64, Bytes>,
    /// How the cache served each chunk this reader used, for read-ahead.
    served: Vec<(ChunkId, Served)>,
}

impl<'a> SegmentReader<'a> {
    fn new(partition: &'a RemotePartition, entry: &SegmentEntry) -> Self {
        SegmentReader {
            partition,
            key: partition.object(entry, SegmentFile::Log),
            id: entry.id,
            size: entry.size,
            chunks: HashMap::new(),
            served: Vec::new(),
        }
    }

    async fn chunk(&mut self, index: u64) -> TieringResult<Bytes> {
        if let Some(c) = self.chunks.get(&index) {
            return Ok(c.clone());
        }
        let (c, served) = self
            .partition
            .cache
            .get(&self.partition.store, &self.key, self.size, index)
            .await?;
        self.served.push(((self.id, index), served));
        self.chunks.insert(index, c.clone());
        Ok(c)
    }

    async fn range(&mut self, start: u64, len: usize) -> TieringResult<Bytes> {
        let end = start + len as u64;
        if end > self.size {
            return Err(TieringError::Corrupt {
                key: self.key.to_string(),
                reason: format!("range {start}..{end} past {} bytes", self.size),
            });
        }
        let chunk = self.partition.cache.chunk_bytes();
        let (first, last) = (start / chunk, (end.max(start + 1) - 1) / chunk);
        if first == last {
            let c = self.chunk(first).await?;
            let from = (start - first * chunk) as usize;
            return Ok(c.slice(from..from + len));
        }
        let mut out = BytesMut::with_capacity(len);
        for i in first..=last {
            let c = self.chunk(i).await?;
            let c_start = i * chunk;
            let from = start.max(c_start) - c_start;
            let to = end.min(c_start + c.len() as u64) - c_start;
            out.extend_from_slice(&c[from as usize..to as usize]);
        }
        Ok(out.freeze())
    }

    async fn header(&mut self, pos: u64) -> TieringResult<BatchHeader> {
        let len = (HEADER_LEN as u64).min(self.size - pos) as usize;
        let bytes = self.range(pos, len).await?;
        let header = BatchHeader::parse(&bytes).map_err(|e| TieringError::Corrupt {
            key: self.key.to_string(),
            reason: e.to_string(),
        })?;
        if pos + header.total_len() as u64 > self.size {
            return Err(TieringError::Corrupt {
                key: self.key.to_string(),
                reason: format!("batch at {pos} runs past the segment end"),
            });
        }
        Ok(header)
    }
}
