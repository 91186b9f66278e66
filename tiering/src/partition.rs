//! One partition's cold tier: uploads of its sealed segments, total
//! retention of the remote copies, and reads of remote history.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use strata_storage::batch::{BatchHeader, HEADER_LEN};
use strata_storage::index::{offset_index_lookup, time_index_lookup};
use strata_storage::{Log, Offset, SealedSegment};
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::cache::ChunkCache;
use crate::error::{TieringError, TieringResult};
use crate::manifest::{Manifest, SegmentEntry, SegmentState};
use crate::store::RemoteStore;

/// Segments larger than this are uploaded in parts of this size.
const MULTIPART_PART: usize = 8 * 1024 * 1024;
/// Remote indexes kept in memory per partition before the map is cleared.
const MAX_CACHED_INDEXES: usize = 256;
/// Backoff bounds for failed uploads and deletions.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Names a partition in the object store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionKey {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

impl PartitionKey {
    /// `<topic>-<topic id>/<partition>`: the id keeps a topic deleted and
    /// created again under the same name apart from the old one.
    pub fn dir(&self) -> String {
        format!(
            "{}-{}/{}",
            self.topic,
            self.topic_id.simple(),
            self.partition
        )
    }

    /// Prefix of everything the topic has in the store.
    pub fn topic_dir(&self) -> String {
        format!("{}-{}", self.topic, self.topic_id.simple())
    }
}

/// Total retention, for both tiers: Kafka's `retention.ms` and
/// `retention.bytes`, negative for unlimited.
#[derive(Clone, Copy, Debug)]
pub struct RetentionLimits {
    pub retention_ms: i64,
    pub retention_bytes: i64,
}

/// Batches read from the cold tier.
#[derive(Clone, Debug)]
pub struct RemoteRead {
    pub records: Bytes,
}

#[derive(Clone, Copy)]
enum Kind {
    Log,
    Index,
    TimeIndex,
}

impl Kind {
    fn ext(self) -> &'static str {
        match self {
            Kind::Log => "log",
            Kind::Index => "index",
            Kind::TimeIndex => "timeindex",
        }
    }
}

struct Backoff {
    until: Option<Instant>,
    delay: Duration,
}

/// Shared by the uploader, retention and every fetch of the partition. The
/// manifest is behind a mutex held only for in-memory changes; `writer`
/// serializes the tasks that change the store (uploads and deletions) so
/// that their manifest records stay in order.
pub struct RemotePartition {
    key: PartitionKey,
    store: RemoteStore,
    cache: Arc<ChunkCache>,
    manifest_path: PathBuf,
    manifest: Mutex<Manifest>,
    indexes: Mutex<HashMap<(Uuid, u8), Bytes>>,
    writer: tokio::sync::Mutex<()>,
    backoff: Mutex<Backoff>,
    mirror_dirty: AtomicBool,
}

impl RemotePartition {
    /// Opens the partition's cold tier state from `local_dir` (the
    /// partition's directory), starting empty if it has none. Blocking.
    pub fn open(
        key: PartitionKey,
        store: RemoteStore,
        cache: Arc<ChunkCache>,
        local_dir: &Path,
    ) -> TieringResult<Self> {
        let manifest_path = local_dir.join("remote-manifest.json");
        let manifest = Manifest::load(&manifest_path)?
            .unwrap_or_else(|| Manifest::new(&key.topic, key.topic_id, key.partition));
        Ok(RemotePartition {
            key,
            store,
            cache,
            manifest_path,
            manifest: Mutex::new(manifest),
            indexes: Mutex::new(HashMap::new()),
            writer: tokio::sync::Mutex::new(()),
            backoff: Mutex::new(Backoff {
                until: None,
                delay: MIN_BACKOFF,
            }),
            mirror_dirty: AtomicBool::new(false),
        })
    }

    /// Restores the partition's local manifest in `local_dir` from the copy
    /// mirrored next to its segments in the store, for when the local one
    /// cannot be read (a damaged disk). Returns false when the store has no
    /// copy. The copy may trail the lost file by the last few changes: a
    /// segment uploaded after it is uploaded again, and one deleted after it
    /// reads as missing until retention drops it again.
    pub async fn restore_manifest(
        key: &PartitionKey,
        store: &RemoteStore,
        local_dir: &Path,
    ) -> TieringResult<bool> {
        let object = store.key(&format!("{}/manifest.json", key.dir()));
        let bytes = match store.store.get(&object).await {
            Ok(got) => got
                .bytes()
                .await
                .map_err(TieringError::store("read", &object))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(TieringError::store_failed("read", object.to_string(), e)),
        };
        let manifest = Manifest::from_json(&bytes, Path::new(object.as_ref()))?;
        let path = local_dir.join("remote-manifest.json");
        tokio::task::spawn_blocking(move || manifest.save(&path))
            .await
            .expect("manifest save does not panic")?;
        Ok(true)
    }

    fn object(&self, entry: &SegmentEntry, kind: Kind) -> ObjectPath {
        self.store.key(&format!(
            "{}/{:020}-{}.{}",
            self.key.dir(),
            entry.base_offset,
            entry.id.simple(),
            kind.ext()
        ))
    }

    fn manifest_object(&self) -> ObjectPath {
        self.store.key(&format!("{}/manifest.json", self.key.dir()))
    }

    fn snapshot(&self) -> Manifest {
        self.manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies `change` to the manifest and persists it locally before
    /// returning: the crash-safe record of each step.
    async fn record(&self, change: impl FnOnce(&mut Manifest)) -> TieringResult<()> {
        let updated = {
            let mut m = self.manifest.lock().unwrap_or_else(|p| p.into_inner());
            change(&mut m);
            m.clone()
        };
        let path = self.manifest_path.clone();
        tokio::task::spawn_blocking(move || updated.save(&path))
            .await
            .expect("manifest save does not panic")?;
        self.mirror_dirty.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Copies the manifest to the store next to the segments, so that the
    /// cold tier describes itself; retried until it succeeds.
    async fn mirror(&self) {
        if !self.mirror_dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let json = self.snapshot().to_json();
        let key = self.manifest_object();
        if let Err(e) = self.store.store.put(&key, PutPayload::from(json)).await {
            metrics::counter!("strata_object_store_errors_total", "op" => "mirror").increment(1);
            self.mirror_dirty.store(true, Ordering::Relaxed);
            debug!(key = %key, error = %e, "manifest mirror failed; will retry");
        }
    }

    /// First offset held remotely.
    pub fn log_start(&self) -> Option<Offset> {
        self.manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .start()
    }

    /// Offset after the last record held remotely.
    pub fn uploaded_end(&self) -> Option<Offset> {
        self.manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .uploaded_end()
    }

    pub fn remote_bytes(&self) -> u64 {
        self.manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remote_bytes()
    }

    pub fn remote_segments(&self) -> usize {
        self.manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .finished()
            .count()
    }

    /// Whether a finished remote segment holds `offset`.
    pub fn covers(&self, offset: Offset) -> bool {
        self.manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .segment_for(offset)
            .is_some()
    }

    /// The largest timestamp held remotely and the base offset of its
    /// segment (or the log start, if that is inside it), for the
    /// max-timestamp query.
    pub fn max_timestamp(&self) -> Option<(i64, Offset)> {
        let m = self.manifest.lock().unwrap_or_else(|p| p.into_inner());
        let log_start = m.log_start_offset.unwrap_or(i64::MIN);
        let mut best: Option<(i64, Offset)> = None;
        for s in m.finished().filter(|s| s.next_offset > log_start) {
            if best.is_none_or(|(ts, _)| s.max_timestamp > ts) {
                best = Some((s.max_timestamp, Offset(s.base_offset.max(log_start))));
            }
        }
        best
    }

    fn backing_off(&self) -> bool {
        let b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        b.until.is_some_and(|t| Instant::now() < t)
    }

    /// Records how a pass (`op`) ended: a failure starts or lengthens the
    /// backoff after which the pass is retried.
    fn note_outcome<T>(&self, op: &'static str, result: &TieringResult<T>) {
        let mut b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => {
                *b = Backoff {
                    until: None,
                    delay: MIN_BACKOFF,
                }
            }
            Err(e) => {
                metrics::counter!("strata_object_store_retries_total", "op" => op).increment(1);
                b.until = Some(Instant::now() + b.delay);
                warn!(partition = %self.key.dir(), error = %e, retriable = e.is_retriable(), retry_in_ms = b.delay.as_millis() as u64, "cold tier operation failed");
                b.delay = (b.delay * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// Deletes the objects of copies or deletions a crash interrupted and
    /// drops their entries, so that the segments are uploaded afresh.
    async fn clean_up_unfinished(&self) -> TieringResult<()> {
        let unfinished: Vec<SegmentEntry> = self
            .snapshot()
            .segments
            .into_iter()
            .filter(|s| s.state != SegmentState::CopyFinished)
            .collect();
        for entry in unfinished {
            self.delete_objects(&entry).await?;
            let id = entry.id;
            self.record(|m| m.segments.retain(|s| s.id != id)).await?;
            info!(partition = %self.key.dir(), base_offset = entry.base_offset, state = ?entry.state, "cleaned up an interrupted remote copy or deletion");
        }
        Ok(())
    }

    async fn delete_objects(&self, entry: &SegmentEntry) -> TieringResult<()> {
        for kind in [Kind::Log, Kind::Index, Kind::TimeIndex] {
            let key = self.object(entry, kind);
            match self.store.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(TieringError::store_failed("delete", key.to_string(), e)),
            }
        }
        self.indexes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _), _| *id != entry.id);
        Ok(())
    }

    /// Uploads every sealed local segment not yet in the store, oldest
    /// first; returns how many. After a failure it backs off (exponentially,
    /// up to 30 s) and returns the error; the next call resumes.
    pub async fn upload_pending(&self, log: &Arc<Log>) -> TieringResult<usize> {
        if self.backing_off() {
            return Ok(0);
        }
        let result = self.upload_pending_now(log).await;
        self.note_outcome("upload", &result);
        self.mirror().await;
        result
    }

    async fn upload_pending_now(&self, log: &Arc<Log>) -> TieringResult<usize> {
        let _writer = self.writer.lock().await;
        self.clean_up_unfinished().await?;
        let l = Arc::clone(log);
        let sealed = tokio::task::spawn_blocking(move || l.sealed_segments())
            .await
            .expect("no panic")?;
        let mut uploaded = 0;
        for segment in sealed {
            let done = self.uploaded_end().unwrap_or(Offset(i64::MIN));
            if segment.size == 0 || segment.next_offset <= done {
                continue;
            }
            self.upload(segment).await?;
            uploaded += 1;
        }
        Ok(uploaded)
    }

    /// The crash-safe copy of one segment: record it as started, upload the
    /// log and its indexes, record it as finished.
    async fn upload(&self, segment: SealedSegment) -> TieringResult<()> {
        let started_at = Instant::now();
        let entry = SegmentEntry {
            id: Uuid::new_v4(),
            base_offset: segment.base_offset.0,
            next_offset: segment.next_offset.0,
            size: segment.size,
            max_timestamp: segment.max_timestamp,
            state: SegmentState::CopyStarted,
        };
        let started = entry.clone();
        self.record(|m| m.segments.push(started)).await?;

        let log_key = self.object(&entry, Kind::Log);
        if segment.size as usize <= MULTIPART_PART {
            let bytes = read_file_range(&segment.file, 0, segment.size as usize).await?;
            self.store
                .store
                .put(&log_key, PutPayload::from(bytes))
                .await
                .map_err(TieringError::store("upload", &log_key))?;
        } else {
            let upload = self
                .store
                .store
                .put_multipart(&log_key)
                .await
                .map_err(TieringError::store("upload", &log_key))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART);
            let mut pos = 0u64;
            while pos < segment.size {
                let len = (segment.size - pos).min(MULTIPART_PART as u64) as usize;
                let part = read_file_range(&segment.file, pos, len).await?;
                writer
                    .wait_for_capacity(2)
                    .await
                    .map_err(TieringError::store("upload", &log_key))?;
                writer.put(part);
                pos += len as u64;
            }
            writer
                .finish()
                .await
                .map_err(TieringError::store("upload", &log_key))?;
        }
        for (kind, path) in [
            (Kind::Index, &segment.index_path),
            (Kind::TimeIndex, &segment.time_index_path),
        ] {
            let key = self.object(&entry, kind);
            let p = path.clone();
            let bytes = tokio::task::spawn_blocking(move || std::fs::read(&p))
                .await
                .expect("no panic")
                .map_err(|e| {
                    TieringError::Storage(strata_storage::StorageError::Io {
                        op: "read index",
                        path: path.clone(),
                        source: e,
                    })
                })?;
            self.store
                .store
                .put(&key, PutPayload::from(bytes))
                .await
                .map_err(TieringError::store("upload", &key))?;
        }

        let id = entry.id;
        self.record(|m| {
            if let Some(s) = m.segments.iter_mut().find(|s| s.id == id) {
                s.state = SegmentState::CopyFinished;
            }
        })
        .await?;
        metrics::counter!("strata_remote_upload_segments_total").increment(1);
        metrics::counter!("strata_remote_upload_bytes_total").increment(entry.size);
        metrics::histogram!("strata_remote_upload_duration_seconds")
            .record(started_at.elapsed().as_secs_f64());
        info!(partition = %self.key.dir(), base_offset = entry.base_offset, next_offset = entry.next_offset, bytes = entry.size, "uploaded segment");
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
        let log_start = snapshot.log_start_offset.unwrap_or(i64::MIN);
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
            info!(partition = %self.key.dir(), base_offset = entry.base_offset, next_offset = entry.next_offset, "retention deleted remote segment");
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
                m.log_start_offset = Some(m.log_start_offset.unwrap_or(i64::MIN).max(offset.0))
            })
            .await?;
        }
        self.mirror().await;
        Ok(())
    }

    /// Deletes everything the partition's topic has in the store (the
    /// topic is being deleted). Listing is fine here: it is not a read path.
    pub async fn delete_topic_objects(&self) -> TieringResult<usize> {
        let _writer = self.writer.lock().await;
        let prefix = self.store.key(&self.key.topic_dir());
        let mut listing = self.store.store.list(Some(&prefix));
        let mut deleted = 0;
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(TieringError::store("list", &prefix))?;
            match self.store.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => {
                    return Err(TieringError::store_failed(
                        "delete",
                        meta.location.to_string(),
                        e,
                    ))
                }
            }
        }
        Ok(deleted)
    }

    async fn index(&self, entry: &SegmentEntry, kind: Kind) -> TieringResult<Bytes> {
        let k = (entry.id, kind as u8);
        if let Some(b) = self
            .indexes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&k)
        {
            return Ok(b.clone());
        }
        let key = self.object(entry, kind);
        let bytes = self
            .store
            .store
            .get(&key)
            .await
            .map_err(TieringError::store("read", &key))?
            .bytes()
            .await
            .map_err(TieringError::store("read", &key))?;
        let mut map = self.indexes.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CACHED_INDEXES {
            map.clear();
        }
        map.insert(k, bytes.clone());
        Ok(bytes)
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
        let index = self.index(&entry, Kind::Index).await?;
        let (_, position) = offset_index_lookup(&index, Offset(entry.base_offset), offset);
        let mut reader = SegmentReader::new(self, &entry);
        let mut pos = position as u64;
        let (mut start, mut end) = (None, pos);
        let mut remaining = max_bytes.min(self.cache.read_budget());
        while pos < entry.size {
            let header = reader.header(pos).await?;
            let len = header.total_len();
            if header.last_offset() < offset.0 {
                pos += len as u64;
                continue;
            }
            if len > remaining && !(start.is_none() && min_one_batch) {
                break;
            }
            start.get_or_insert(pos);
            remaining = remaining.saturating_sub(len);
            pos += len as u64;
            end = pos;
        }
        let records = match start {
            Some(s) => reader.range(s, (end - s) as usize).await?,
            None => Bytes::new(),
        };
        self.read_ahead(&entry, end);
        Ok(Some(RemoteRead { records }))
    }

    /// Starts downloading the two chunks after `position`, or the start of
    /// the next segment when this one ends.
    fn read_ahead(&self, entry: &SegmentEntry, position: u64) {
        let chunk = self.cache.chunk_bytes();
        let next = position / chunk + 1;
        if position < entry.size {
            for c in [position / chunk, next] {
                self.cache
                    .prefetch(&self.store, &self.object(entry, Kind::Log), entry.size, c);
            }
        } else if let Some(following) = self
            .manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .segment_for(Offset(entry.next_offset))
        {
            self.cache.prefetch(
                &self.store,
                &self.object(following, Kind::Log),
                following.size,
                0,
            );
        }
    }

    /// The first remote batch holding a record with a timestamp `>= ts`.
    pub async fn batch_for_timestamp(&self, ts: i64) -> TieringResult<Option<Bytes>> {
        let (entry, log_start) = {
            let m = self.manifest.lock().unwrap_or_else(|p| p.into_inner());
            let log_start = m.log_start_offset.unwrap_or(i64::MIN);
            let entry = m
                .finished()
                .filter(|s| s.next_offset > log_start)
                .find(|s| s.max_timestamp >= ts)
                .cloned();
            (entry, log_start)
        };
        let Some(entry) = entry else { return Ok(None) };
        let time_index = self.index(&entry, Kind::TimeIndex).await?;
        // Records below the log start (DeleteRecords) are not searched.
        let from =
            time_index_lookup(&time_index, Offset(entry.base_offset), ts).max(Offset(log_start));
        let index = self.index(&entry, Kind::Index).await?;
        let (_, position) = offset_index_lookup(&index, Offset(entry.base_offset), from);
        let mut reader = SegmentReader::new(self, &entry);
        let mut pos = position as u64;
        while pos < entry.size {
            let header = reader.header(pos).await?;
            if header.max_timestamp >= ts && header.last_offset() >= log_start {
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
    size: u64,
    chunks: HashMap<u64, Bytes>,
}

impl<'a> SegmentReader<'a> {
    fn new(partition: &'a RemotePartition, entry: &SegmentEntry) -> Self {
        SegmentReader {
            partition,
            key: partition.object(entry, Kind::Log),
            size: entry.size,
            chunks: HashMap::new(),
        }
    }

    async fn chunk(&mut self, index: u64) -> TieringResult<Bytes> {
        if let Some(c) = self.chunks.get(&index) {
            return Ok(c.clone());
        }
        let c = self
            .partition
            .cache
            .get(&self.partition.store, &self.key, self.size, index)
            .await?;
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

async fn read_file_range(file: &Arc<std::fs::File>, at: u64, len: usize) -> TieringResult<Bytes> {
    let file = Arc::clone(file);
    tokio::task::spawn_blocking(move || {
        let mut buf = BytesMut::zeroed(len);
        file.read_exact_at(&mut buf, at).map(|()| buf.freeze())
    })
    .await
    .expect("no panic")
    .map_err(|e| {
        TieringError::Storage(strata_storage::StorageError::Io {
            op: "read segment for upload",
            path: PathBuf::new(),
            source: e,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_storage::LogConfig;

    /// A v2 batch of one record, enough for the log (it checks the header
    /// and the CRC, never the records).
    fn batch(timestamp: i64) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN + 20];
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[16] = 2;
        b[27..35].copy_from_slice(&timestamp.to_be_bytes());
        b[35..43].copy_from_slice(&timestamp.to_be_bytes());
        b[57..61].copy_from_slice(&1i32.to_be_bytes());
        // Not from an idempotent producer: producer id, epoch and sequence -1.
        b[43..57].fill(0xff);
        let crc = strata_storage::batch::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn setup() -> (tempfile::TempDir, Arc<Log>, RemotePartition, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 300,
            index_interval_bytes: 100,
            ..LogConfig::default()
        };
        let log = Arc::new(Log::open(&dir.path().join("t-0"), config, true, 0).unwrap());
        for ts in 0..20 {
            log.append(&mut batch(1000 + ts), 0).unwrap();
        }
        // Sealed segments are uploaded once fsynced.
        log.flush_sealed().unwrap();
        let remote_dir = dir.path().join("remote");
        let store = RemoteStore::local(&remote_dir).unwrap();
        let cache = ChunkCache::new(dir.path().join("cache"), 1 << 20, 64 * 1024).unwrap();
        let key = PartitionKey {
            topic: "t".into(),
            topic_id: Uuid::nil(),
            partition: 0,
        };
        let remote = RemotePartition::open(key, store, cache, log.dir()).unwrap();
        (dir, log, remote, remote_dir)
    }

    #[tokio::test]
    async fn an_interrupted_copy_is_cleaned_up_and_uploaded_again() {
        let (_dir, log, remote, remote_dir) = setup();
        // A crash after recording a copy as started and writing part of it.
        let stale = SegmentEntry {
            id: Uuid::new_v4(),
            base_offset: 0,
            next_offset: 5,
            size: 1,
            max_timestamp: 0,
            state: SegmentState::CopyStarted,
        };
        remote
            .record(|m| m.segments.push(stale.clone()))
            .await
            .unwrap();
        let stale_key = remote.object(&stale, Kind::Log);
        remote
            .store
            .store
            .put(&stale_key, PutPayload::from(vec![1u8]))
            .await
            .unwrap();

        let sealed = log.sealed_segments().unwrap().len();
        assert!(
            sealed >= 3,
            "{sealed} sealed segments, log end {}",
            log.log_end_offset()
        );
        assert_eq!(remote.upload_pending(&log).await.unwrap(), sealed);
        let m = Manifest::load(&log.dir().join("remote-manifest.json"))
            .unwrap()
            .unwrap();
        assert!(m
            .segments
            .iter()
            .all(|s| s.state == SegmentState::CopyFinished));
        assert!(
            !m.segments.iter().any(|s| s.id == stale.id),
            "the interrupted entry is gone"
        );
        assert!(
            !remote_dir.join(stale_key.as_ref()).exists(),
            "its objects are deleted"
        );
        assert_eq!(
            remote.uploaded_end(),
            log.sealed_segments().unwrap().last().map(|s| s.next_offset)
        );

        // Reading the uploaded history gives the local bytes back.
        let local = log.read(Offset(0), 1 << 20, true).unwrap().records;
        let read = remote
            .read(Offset(0), 1 << 20, true)
            .await
            .unwrap()
            .unwrap()
            .records;
        assert_eq!(&local[..read.len()], &read[..]);
        let by_time = remote.batch_for_timestamp(1002).await.unwrap().unwrap();
        assert_eq!(BatchHeader::parse(&by_time).unwrap().max_timestamp, 1002);

        // Nothing left to upload; a second pass is a no-op.
        assert_eq!(remote.upload_pending(&log).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn total_retention_deletes_remote_segments_oldest_first() {
        let (_dir, log, remote, _remote_dir) = setup();
        remote.upload_pending(&log).await.unwrap();
        let before = remote.remote_segments();
        let limits = RetentionLimits {
            retention_ms: -1,
            retention_bytes: (remote.remote_bytes() / 2) as i64,
        };
        let deleted = remote.enforce_retention(0, limits, 0).await.unwrap();
        assert!(deleted > 0 && remote.remote_segments() == before - deleted);
        assert!(remote.log_start().unwrap() > Offset(0));
        assert!(
            remote.read(Offset(0), 100, true).await.unwrap().is_none(),
            "deleted history is not served"
        );
    }
}
