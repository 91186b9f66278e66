//! One partition's cold tier state: its remote manifest (which segments
//! the store holds, and where the remote log starts), kept on local disk and
//! mirrored into the store, with the backoff its store operations share.
//! Uploads (`upload.rs`), remote retention (`remote_retention.rs`) and reads
//! (`remote_read.rs`) are further `impl` blocks of the same type.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use strata_storage::{Offset, SegmentFile};
use tracing::{debug, warn};

use crate::cache::ChunkCache;
use crate::error::{TieringError, TieringResult};
use crate::index_cache::IndexCache;
use crate::keys::PartitionKey;
use crate::manifest::{Manifest, SegmentEntry};
use crate::read_ahead::ReadAhead;
use crate::store::RemoteStore;

/// Backoff bounds for failed uploads and deletions.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Total retention, for both tiers: Kafka's `retention.ms` and
/// `retention.bytes`, negative for unlimited.
#[derive(Clone, Copy, Debug)]
pub struct RetentionLimits {
    pub retention_ms: i64,
    pub retention_bytes: i64,
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
    pub(crate) key: PartitionKey,
    pub(crate) store: RemoteStore,
    pub(crate) cache: Arc<ChunkCache>,
    manifest_path: PathBuf,
    pub(crate) manifest: Mutex<Manifest>,
    /// Remote segments' indexes, shared by every partition of the broker.
    pub(crate) indexes: Arc<IndexCache>,
    pub(crate) writer: tokio::sync::Mutex<()>,
    backoff: Mutex<Backoff>,
    mirror_dirty: AtomicBool,
    /// How far ahead of its sequential reader the partition is read.
    pub(crate) read_ahead: Mutex<ReadAhead>,
}

impl RemotePartition {
    /// Opens the partition's cold tier state from `local_dir` (the
    /// partition's directory), starting empty if it has none. Blocking.
    pub fn open(
        key: PartitionKey,
        store: RemoteStore,
        cache: Arc<ChunkCache>,
        indexes: Arc<IndexCache>,
        local_dir: &Path,
    ) -> TieringResult<Self> {
        let readahead = cache.readahead_max_chunks();
        let manifest_path = local_dir.join("remote-manifest.json");
        let manifest = Manifest::load(&manifest_path)?
            .unwrap_or_else(|| Manifest::new(&key.topic, key.topic_id, key.partition));
        Ok(RemotePartition {
            key,
            store,
            cache,
            manifest_path,
            manifest: Mutex::new(manifest),
            indexes,
            writer: tokio::sync::Mutex::new(()),
            backoff: Mutex::new(Backoff {
                until: None,
                delay: MIN_BACKOFF,
            }),
            mirror_dirty: AtomicBool::new(false),
            read_ahead: Mutex::new(ReadAhead::new(readahead)),
        })
    }

    /// The copy of the partition's manifest mirrored next to its segments
    /// in the store, `None` when there is none.
    pub async fn stored_manifest(
        key: &PartitionKey,
        store: &RemoteStore,
    ) -> TieringResult<Option<Manifest>> {
        let object = key.manifest_object();
        match store.get_bytes(&object).await? {
            Some(bytes) => Manifest::from_json(&bytes, Path::new(&object)).map(Some),
            None => Ok(None),
        }
    }

    /// Restores the partition's local manifest in `local_dir` from the copy
    /// mirrored next to its segments in the store, for when the local one
    /// cannot be read (a damaged disk) or the disk is new (a restore).
    /// Returns the restored manifest, `None` when the store has no copy.
    /// The copy may trail the lost file by the last few changes: a segment
    /// uploaded after it is uploaded again, and one deleted after it reads
    /// as missing until retention drops it again. Only finished copies are
    /// kept: the objects of an interrupted copy or deletion are left in the
    /// store for `strata bucket check --repair`, so that nothing read from
    /// the store makes this broker delete anything there.
    pub async fn restore_manifest(
        key: &PartitionKey,
        store: &RemoteStore,
        local_dir: &Path,
    ) -> TieringResult<Option<Manifest>> {
        let Some(mut manifest) = Self::stored_manifest(key, store).await? else {
            return Ok(None);
        };
        manifest
            .segments
            .retain(|s| s.state == crate::manifest::SegmentState::CopyFinished);
        let path = local_dir.join("remote-manifest.json");
        let (saved, dir) = (manifest.clone(), local_dir.to_owned());
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| TieringError::Manifest {
                path: dir.clone(),
                reason: e.to_string(),
            })?;
            saved.save(&path)
        })
        .await
        .expect("manifest save does not panic")?;
        Ok(Some(manifest))
    }

    /// For a read replica: takes the manifest the primary mirrored into the
    /// store, if it changed, and keeps it locally too. Returns whether it
    /// changed. Never writes to the store.
    pub async fn follow_store(&self) -> TieringResult<bool> {
        let Some(mut stored) = Self::stored_manifest(&self.key, &self.store).await? else {
            return Ok(false);
        };
        stored
            .segments
            .retain(|s| s.state == crate::manifest::SegmentState::CopyFinished);
        if stored == self.snapshot() {
            return Ok(false);
        }
        let path = self.manifest_path.clone();
        *self.manifest.lock().unwrap_or_else(|p| p.into_inner()) = stored.clone();
        tokio::task::spawn_blocking(move || stored.save(&path))
            .await
            .expect("manifest save does not panic")?;
        Ok(true)
    }

    pub(crate) fn object(&self, entry: &SegmentEntry, file: SegmentFile) -> ObjectPath {
        self.store
            .key(&self.key.segment_object(entry.base_offset, entry.id, file))
    }

    fn manifest_object(&self) -> ObjectPath {
        self.store.key(&self.key.manifest_object())
    }

    pub(crate) fn snapshot(&self) -> Manifest {
        self.manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies `change` to the manifest and persists it locally before
    /// returning: the crash-safe record of each step.
    pub(crate) async fn record(&self, change: impl FnOnce(&mut Manifest)) -> TieringResult<()> {
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
    pub(crate) async fn mirror(&self) {
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

    /// The finished remote segments holding offsets at or after `from`,
    /// oldest first: what a reader of the whole cold history (the lake's
    /// translator) goes through, one object at a time.
    pub fn segments_from(&self, from: Offset) -> Vec<SegmentEntry> {
        self.manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .finished()
            .filter(|s| s.next_offset > from)
            .cloned()
            .collect()
    }

    /// The object key of one of `entry`'s files.
    pub fn segment_key(&self, entry: &SegmentEntry, file: SegmentFile) -> ObjectPath {
        self.object(entry, file)
    }

    /// The store the partition's segments are in.
    pub fn store(&self) -> &RemoteStore {
        &self.store
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
        let log_start = m.log_start_offset.unwrap_or(Offset::ZERO);
        let mut best: Option<(i64, Offset)> = None;
        for s in m.finished().filter(|s| s.next_offset > log_start) {
            if best.is_none_or(|(ts, _)| s.max_timestamp > ts) {
                best = Some((s.max_timestamp, s.base_offset.max(log_start)));
            }
        }
        best
    }

    pub(crate) fn backing_off(&self) -> bool {
        let b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        b.until.is_some_and(|t| Instant::now() < t)
    }

    /// Records how a pass (`op`) ended: a failure starts or lengthens the
    /// backoff after which the pass is retried.
    pub(crate) fn note_outcome<T>(&self, op: &'static str, result: &TieringResult<T>) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::SegmentState;
    use strata_storage::batch::BatchHeader;
    use strata_storage::testing::BatchBuilder;
    use strata_storage::{Log, LogConfig};
    use uuid::Uuid;

    /// A v2 batch of one record of 20 bytes: 81 bytes in all.
    fn batch(timestamp: i64) -> Vec<u8> {
        BatchBuilder::new(1)
            .timestamp(timestamp)
            .payload(20)
            .build()
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
        let cache = ChunkCache::new(
            dir.path().join("cache"),
            crate::cache::CacheLimits::new(1 << 20, 64 * 1024),
        )
        .unwrap();
        let indexes = Arc::new(IndexCache::new(1 << 20));
        let key = PartitionKey {
            topic: "t".into(),
            topic_id: Uuid::nil(),
            partition: 0,
        };
        let remote = RemotePartition::open(key, store, cache, indexes, log.dir()).unwrap();
        (dir, log, remote, remote_dir)
    }

    #[tokio::test]
    async fn an_interrupted_copy_is_cleaned_up_and_uploaded_again() {
        let (_dir, log, remote, remote_dir) = setup();
        // A crash after recording a copy as started and writing part of it.
        let stale = SegmentEntry {
            id: Uuid::new_v4(),
            base_offset: Offset(0),
            next_offset: Offset(5),
            size: 1,
            max_timestamp: 0,
            state: SegmentState::CopyStarted,
            txn_index: false,
        };
        remote
            .record(|m| m.segments.push(stale.clone()))
            .await
            .unwrap();
        let stale_key = remote.object(&stale, SegmentFile::Log);
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

    #[tokio::test]
    async fn remote_indexes_stay_within_the_index_cache_bound() {
        let (dir, log, _, _) = setup();
        // Room for two of the test segments' indexes and no more.
        let store = RemoteStore::local(&dir.path().join("remote2")).unwrap();
        let cache = ChunkCache::new(
            dir.path().join("cache2"),
            crate::cache::CacheLimits::new(1 << 20, 64 * 1024),
        )
        .unwrap();
        let indexes = Arc::new(IndexCache::new(48));
        let key = PartitionKey {
            topic: "t".into(),
            topic_id: Uuid::nil(),
            partition: 0,
        };
        let remote =
            RemotePartition::open(key, store, cache, Arc::clone(&indexes), log.dir()).unwrap();
        let segments = remote.upload_pending(&log).await.unwrap();
        assert!(segments >= 3);
        let mut offset = Offset(0);
        let mut reads = 0;
        while let Some(read) = remote.read(offset, 1 << 20, true).await.unwrap() {
            let last =
                strata_storage::batch::BatchHeader::parse(&read.records[read.records.len() - 81..])
                    .ok()
                    .filter(|h| h.total_len() == 81);
            reads += 1;
            assert!(
                indexes.bytes() <= 48,
                "{} bytes of indexes cached after {reads} reads",
                indexes.bytes()
            );
            // Every test batch is 81 bytes, one record each.
            offset = offset.plus((read.records.len() / 81) as i64);
            assert!(last.is_some());
            if remote.uploaded_end().is_some_and(|end| offset >= end) {
                break;
            }
        }
        assert!(reads >= 3, "read {reads} remote segments");
        // A sequential reader needs no index (it starts each segment at its
        // first byte and goes on where it stopped); reads that seek into
        // segments load theirs, within the bound.
        let bases: Vec<Offset> = remote
            .snapshot()
            .finished()
            .map(|e| e.base_offset)
            .collect();
        for base in bases {
            assert!(remote
                .read(base.plus(1), 100, true)
                .await
                .unwrap()
                .is_some());
            assert!(
                indexes.bytes() <= 48,
                "{} bytes of indexes",
                indexes.bytes()
            );
        }
        assert!(indexes.bytes() > 0);
    }
}
