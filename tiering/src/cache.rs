//! A bounded on-disk cache of fixed-size chunks of remote segments.
//!
//! Remote segments are read in aligned chunks of `chunk_bytes` with ranged
//! GETs. Each downloaded chunk is kept as a file under the cache directory
//! until the cache exceeds `max_bytes`, when the least recently used chunks
//! are deleted. Concurrent readers of a chunk that is being downloaded wait
//! for that one download instead of starting their own. The few chunks read
//! last are also kept in memory: a sequential reader asks for the same chunk
//! over several fetches in a row.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use tracing::{debug, warn};

use crate::error::{TieringError, TieringResult};
use crate::store::RemoteStore;

type ChunkKey = (String, u64);

/// How many recently read chunks stay in memory (4 MiB each by default).
const HOT_CHUNKS: usize = 4;
type Download = Shared<BoxFuture<'static, Result<Bytes, Arc<TieringError>>>>;

struct Cached {
    size: u64,
    last_used: u64,
    /// Which download's file holds the chunk: each download writes a file
    /// of its own, so that the removal of an evicted copy, which runs later
    /// on the blocking pool, never removes a newer one.
    file: u64,
}

#[derive(Default)]
struct State {
    chunks: HashMap<ChunkKey, Cached>,
    total: u64,
    clock: u64,
    /// The number of the next download's file.
    next_file: u64,
}

/// Shared by every remote reader of the broker. All methods may be called
/// concurrently; locks are held only for map updates, never across I/O.
pub struct ChunkCache {
    dir: PathBuf,
    max_bytes: u64,
    chunk_bytes: u64,
    state: Mutex<State>,
    inflight: Mutex<HashMap<ChunkKey, Download>>,
    hot: Mutex<VecDeque<(ChunkKey, Bytes)>>,
    /// Evicted chunk files whose removal on the blocking pool has not
    /// finished yet.
    removing: Arc<AtomicUsize>,
}

impl ChunkCache {
    /// A cache in `dir`, emptied first: chunks are not trusted across runs.
    pub fn new(dir: PathBuf, max_bytes: u64, chunk_bytes: u64) -> TieringResult<Arc<ChunkCache>> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|source| TieringError::LocalDir {
            path: dir.clone(),
            source,
        })?;
        Ok(Arc::new(ChunkCache {
            dir,
            max_bytes,
            chunk_bytes: chunk_bytes.max(64 * 1024),
            state: Mutex::new(State::default()),
            inflight: Mutex::new(HashMap::new()),
            hot: Mutex::new(VecDeque::with_capacity(HOT_CHUNKS)),
            removing: Arc::new(AtomicUsize::new(0)),
        }))
    }

    pub fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes
    }

    /// The most record bytes one read should return: two chunks' worth, so
    /// that the (at most three) chunks it walks through are still in memory
    /// when it copies its answer out of them. With chunks far smaller than a
    /// fetch (a test setting), a read spanning more chunks than the cache
    /// holds would evict its own first chunks and download them again on
    /// every attempt.
    pub fn read_budget(&self) -> usize {
        (self.chunk_bytes * (HOT_CHUNKS as u64 / 2)) as usize
    }

    fn file(&self, key: &ChunkKey, file: u64) -> PathBuf {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        self.dir
            .join(format!("{:016x}-{}-{file}.chunk", h.finish(), key.1))
    }

    /// Chunk `chunk` of the object `key` whose size is `object_size`.
    pub async fn get(
        self: &Arc<Self>,
        store: &RemoteStore,
        key: &ObjectPath,
        object_size: u64,
        chunk: u64,
    ) -> TieringResult<Bytes> {
        let ck: ChunkKey = (key.to_string(), chunk);
        if let Some(bytes) = self.hot(&ck) {
            metrics::counter!("strata_remote_cache_hits_total", "level" => "memory").increment(1);
            return Ok(bytes);
        }
        if store.local {
            metrics::counter!("strata_remote_cache_misses_total").increment(1);
            // A local-directory store is read in place: copying its chunks
            // into cache files on the same disks would only add a write and
            // a read per chunk.
            let bytes = read_range(store, key, object_size, &ck, self.chunk_bytes).await?;
            self.keep_hot(ck, bytes.clone());
            return Ok(bytes);
        }
        let cached = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.clock += 1;
            let now = state.clock;
            state.chunks.get_mut(&ck).map(|c| {
                c.last_used = now;
                c.file
            })
        };
        if let Some(file) = cached {
            if let Ok(bytes) = tokio::fs::read(self.file(&ck, file)).await {
                metrics::counter!("strata_remote_cache_hits_total", "level" => "disk").increment(1);
                let bytes = Bytes::from(bytes);
                self.keep_hot(ck, bytes.clone());
                return Ok(bytes);
            }
        }
        metrics::counter!("strata_remote_cache_misses_total").increment(1);
        let download = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match inflight.get(&ck) {
                Some(d) => d.clone(),
                None => {
                    // The download runs as its own task, so that a reader
                    // that stops waiting (a fetch at its deadline) leaves it
                    // going into the cache for the next fetch instead of
                    // suspending it with nobody polling.
                    let task = tokio::spawn(self.clone().download(
                        store.clone(),
                        key.clone(),
                        object_size,
                        ck.clone(),
                    ));
                    let (this, task_ck) = (Arc::clone(self), ck.clone());
                    let d = async move {
                        task.await.unwrap_or_else(|e| {
                            // The task ended without its own clean-up; let
                            // the next reader try again.
                            this.inflight
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .remove(&task_ck);
                            Err(Arc::new(TieringError::Download {
                                key: task_ck.0,
                                reason: e.to_string(),
                            }))
                        })
                    }
                    .boxed()
                    .shared();
                    inflight.insert(ck.clone(), d.clone());
                    d
                }
            }
        };
        let bytes = download.await.map_err(|e| TieringError::Download {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        self.keep_hot(ck, bytes.clone());
        Ok(bytes)
    }

    /// The chunk if it is among the ones kept in memory; it becomes the
    /// most recent.
    fn hot(&self, ck: &ChunkKey) -> Option<Bytes> {
        let mut hot = self.hot.lock().unwrap_or_else(|p| p.into_inner());
        let i = hot.iter().position(|(k, _)| k == ck)?;
        let entry = hot.remove(i).expect("found");
        let bytes = entry.1.clone();
        hot.push_back(entry);
        Some(bytes)
    }

    fn keep_hot(&self, ck: ChunkKey, bytes: Bytes) {
        let mut hot = self.hot.lock().unwrap_or_else(|p| p.into_inner());
        if hot.iter().any(|(k, _)| *k == ck) {
            return;
        }
        if hot.len() == HOT_CHUNKS {
            hot.pop_front();
        }
        hot.push_back((ck, bytes));
    }

    async fn download(
        self: Arc<Self>,
        store: RemoteStore,
        key: ObjectPath,
        object_size: u64,
        ck: ChunkKey,
    ) -> Result<Bytes, Arc<TieringError>> {
        let result = read_range(&store, &key, object_size, &ck, self.chunk_bytes).await;
        if let Ok(bytes) = &result {
            let file = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.next_file += 1;
                state.next_file
            };
            match tokio::fs::write(self.file(&ck, file), bytes).await {
                Ok(()) => self.insert(ck.clone(), bytes.len() as u64, file),
                Err(e) => warn!(error = %e, "could not write a chunk to the read cache"),
            }
        }
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ck);
        result.map_err(Arc::new)
    }

    fn insert(&self, ck: ChunkKey, size: u64, file: u64) {
        // (key, file) of every copy no longer in the cache.
        let mut evicted: Vec<(ChunkKey, u64)> = Vec::new();
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.clock += 1;
            let now = state.clock;
            let entry = Cached {
                size,
                last_used: now,
                file,
            };
            match state.chunks.insert(ck.clone(), entry) {
                // A second download of a cached chunk: its older file goes.
                Some(old) => {
                    state.total = state.total - old.size + size;
                    evicted.push((ck.clone(), old.file));
                }
                None => state.total += size,
            }
            while state.total > self.max_bytes && state.chunks.len() > 1 {
                let oldest = state
                    .chunks
                    .iter()
                    .filter(|(k, _)| **k != ck)
                    .min_by_key(|(_, c)| c.last_used)
                    .map(|(k, _)| k.clone());
                let Some(k) = oldest else { break };
                let c = state.chunks.remove(&k).expect("present");
                state.total -= c.size;
                evicted.push((k, c.file));
            }
            metrics::gauge!("strata_remote_cache_bytes").set(state.total as f64);
        }
        metrics::counter!("strata_remote_cache_evictions_total").increment(evicted.len() as u64);
        if evicted.is_empty() {
            return;
        }
        let files: Vec<PathBuf> = evicted
            .iter()
            .map(|(k, file)| {
                debug!(key = %k.0, chunk = k.1, "evicted a cached chunk");
                self.file(k, *file)
            })
            .collect();
        // Called from download tasks: the files go on the blocking pool, not
        // on the executor's threads.
        let removing = Arc::clone(&self.removing);
        removing.fetch_add(1, Ordering::SeqCst);
        tokio::task::spawn_blocking(move || {
            for f in files {
                let _ = std::fs::remove_file(f);
            }
            removing.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Starts downloading a chunk in the background if it is not cached.
    pub fn prefetch(
        self: &Arc<Self>,
        store: &RemoteStore,
        key: &ObjectPath,
        object_size: u64,
        chunk: u64,
    ) {
        if chunk * self.chunk_bytes >= object_size {
            return;
        }
        let ck: ChunkKey = (key.to_string(), chunk);
        let cached = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .chunks
            .contains_key(&ck);
        let inflight = self
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&ck);
        if cached || inflight {
            return;
        }
        let (this, store, key) = (Arc::clone(self), store.clone(), key.clone());
        tokio::spawn(async move {
            let _ = this.get(&store, &key, object_size, chunk).await;
        });
    }
}

/// Chunk `ck` of the object `key` (`object_size` bytes) with one ranged GET,
/// checked for length.
async fn read_range(
    store: &RemoteStore,
    key: &ObjectPath,
    object_size: u64,
    ck: &ChunkKey,
    chunk_bytes: u64,
) -> TieringResult<Bytes> {
    let start = ck.1 * chunk_bytes;
    let end = (start + chunk_bytes).min(object_size);
    if start >= end {
        return Err(TieringError::Corrupt {
            key: key.to_string(),
            reason: format!("chunk {} is past the end ({object_size} bytes)", ck.1),
        });
    }
    let started_at = std::time::Instant::now();
    let bytes = store
        .store
        .get_range(key, start..end)
        .await
        .map_err(TieringError::store("read", key))?;
    metrics::histogram!("strata_remote_read_duration_seconds")
        .record(started_at.elapsed().as_secs_f64());
    metrics::counter!("strata_remote_read_bytes_total").increment(bytes.len() as u64);
    if bytes.len() as u64 != end - start {
        return Err(TieringError::Corrupt {
            key: key.to_string(),
            reason: format!(
                "ranged GET returned {} bytes instead of {}",
                bytes.len(),
                end - start
            ),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;

    /// The smallest chunk size the cache accepts.
    const C: usize = 64 * 1024;

    fn files_in(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[tokio::test]
    async fn chunks_are_cached_within_the_bound_unless_the_store_is_local() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..10 * C as u32).map(|i| (i % 251) as u8).collect();
        let mut store = RemoteStore::local(&dir.path().join("store")).unwrap();
        let key = store.key("t/0.log");
        store
            .store
            .put(&key, PutPayload::from(data.clone()))
            .await
            .unwrap();
        let cache_dir = dir.path().join("cache");
        let size = data.len() as u64;
        let expect = |i: u64| &data[i as usize * C..(i as usize + 1) * C];

        // A local directory is read in place.
        let cache = ChunkCache::new(cache_dir.clone(), 4 * C as u64, C as u64).unwrap();
        for i in 0..10u64 {
            let chunk = cache.get(&store, &key, size, i).await.unwrap();
            assert!(chunk == expect(i), "chunk {i}");
        }
        assert_eq!(files_in(&cache_dir), 0);

        // Any other store goes through the disk cache, bounded by its size;
        // chunks come back whole from memory, the disk cache or the store.
        store.local = false;
        let cache = ChunkCache::new(cache_dir.clone(), 4 * C as u64, C as u64).unwrap();
        for round in 0..2 {
            for i in (0..10u64).rev() {
                let chunk = cache.get(&store, &key, size, i).await.unwrap();
                assert!(chunk == expect(i), "round {round}, chunk {i}");
            }
        }
        // Evicted files are removed on the blocking pool; wait for it.
        for _ in 0..1000 {
            if cache.removing.load(Ordering::SeqCst) == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(files_in(&cache_dir), 4);
    }
}
