//! A bounded on-disk cache of fixed-size chunks of remote segments.
//!
//! Remote segments are read in aligned chunks of `chunk_bytes` with ranged
//! GETs. Each downloaded chunk is kept as a file under the cache directory
//! until the cache exceeds `max_bytes`, when the least recently used chunks
//! are deleted. Concurrent readers of a chunk that is being downloaded wait
//! for that one download instead of starting their own. The chunks read
//! last are also kept in memory: a sequential reader asks for the same chunk
//! over several fetches in a row.
//!
//! Downloads are bounded broker-wide: at most `max_inflight` ranged GETs at
//! once (read-ahead only takes a permit when a quarter of them is left for
//! readers that wait), read-ahead never holds more than half the cache in
//! chunks nobody has read yet, the bytes go through the store's fetch
//! quota, and a
//! store that answers "slow down" pauses read-ahead with a growing backoff
//! while a reader's own GET is retried after it instead of failing.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

use crate::error::{TieringError, TieringResult};
use crate::store::RemoteStore;

type ChunkKey = (String, u64);

/// Memory for the chunks read last, over all partitions: at least
/// `MIN_HOT_CHUNKS` chunks.
const HOT_BYTES: u64 = 64 << 20;
const MIN_HOT_CHUNKS: usize = 4;
/// A reader's GET that the store throttles is tried this many times (with
/// the backoff between) before the read fails.
const THROTTLED_ATTEMPTS: u32 = 10;
const MIN_THROTTLE_BACKOFF: Duration = Duration::from_millis(50);
const MAX_THROTTLE_BACKOFF: Duration = Duration::from_secs(5);
type Download = Shared<BoxFuture<'static, Result<Bytes, Arc<TieringError>>>>;

/// The chunk cache's bounds, from the broker's configs.
#[derive(Clone, Debug)]
pub struct CacheLimits {
    /// `remote.log.reader.cache.bytes`.
    pub max_bytes: u64,
    /// `remote.log.reader.chunk.bytes`.
    pub chunk_bytes: u64,
    /// `remote.log.reader.max.inflight.gets`: ranged GETs at once.
    pub max_inflight: usize,
    /// `remote.log.reader.readahead.max.bytes`: the most one partition
    /// reads ahead of its reader.
    pub readahead_max_bytes: u64,
}

impl CacheLimits {
    /// Limits with no GET bound and no quota, for tests.
    pub fn new(max_bytes: u64, chunk_bytes: u64) -> CacheLimits {
        CacheLimits {
            max_bytes,
            chunk_bytes,
            max_inflight: 64,
            readahead_max_bytes: 64 << 20,
        }
    }
}

/// How the cache served one chunk to a reader: what read-ahead learns from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// It was there, in memory or on disk.
    Ready,
    /// Its download had started before the reader asked and the reader
    /// waited for the rest: read-ahead was not far enough ahead.
    Waited,
    /// Nobody had asked for it: the reader's own GET.
    Missed,
}

/// What a read-ahead request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefetch {
    /// The chunk is cached or already downloading.
    Present,
    /// Its download started.
    Started,
    /// Not now: the broker-wide GET limit is reached.
    Busy,
    /// Not now: read-ahead holds half the cache in unread chunks.
    NoRoom,
    /// Not now: the store asked for fewer requests.
    Throttled,
}

struct Cached {
    size: u64,
    last_used: u64,
    /// Which download's file holds the chunk: each download writes a file
    /// of its own, so that the removal of an evicted copy, which runs later
    /// on the blocking pool, never removes a newer one.
    file: u64,
    /// Downloaded by read-ahead and not read yet.
    unread: bool,
}

#[derive(Default)]
struct State {
    chunks: HashMap<ChunkKey, Cached>,
    total: u64,
    /// Bytes of chunks read ahead and not read yet.
    unread: u64,
    clock: u64,
    /// The number of the next download's file.
    next_file: u64,
}

/// The store's "slow down": read-ahead waits until `until`; each throttled
/// answer doubles `delay`, a successful GET resets it.
struct Throttle {
    until: Option<Instant>,
    delay: Duration,
}

/// Shared by every remote reader of the broker. All methods may be called
/// concurrently; locks are held only for map updates, never across I/O.
pub struct ChunkCache {
    dir: PathBuf,
    max_bytes: u64,
    chunk_bytes: u64,
    max_inflight: usize,
    readahead_max_chunks: u64,
    permits: Arc<Semaphore>,
    throttle: Mutex<Throttle>,
    state: Mutex<State>,
    inflight: Mutex<HashMap<ChunkKey, Download>>,
    hot: Mutex<VecDeque<(ChunkKey, Bytes)>>,
    hot_chunks: usize,
    /// Evicted chunk files whose removal on the blocking pool has not
    /// finished yet.
    removing: Arc<AtomicUsize>,
}

impl ChunkCache {
    /// A cache in `dir`, emptied first: chunks are not trusted across runs.
    pub fn new(dir: PathBuf, limits: CacheLimits) -> TieringResult<Arc<ChunkCache>> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|source| TieringError::LocalDir {
            path: dir.clone(),
            source,
        })?;
        let chunk_bytes = limits.chunk_bytes.max(64 * 1024);
        let hot_chunks = ((HOT_BYTES / chunk_bytes) as usize).max(MIN_HOT_CHUNKS);
        let max_inflight = limits.max_inflight.max(1);
        Ok(Arc::new(ChunkCache {
            dir,
            max_bytes: limits.max_bytes,
            chunk_bytes,
            max_inflight,
            readahead_max_chunks: (limits.readahead_max_bytes / chunk_bytes).max(1),
            permits: Arc::new(Semaphore::new(max_inflight)),
            throttle: Mutex::new(Throttle {
                until: None,
                delay: MIN_THROTTLE_BACKOFF,
            }),
            state: Mutex::new(State::default()),
            inflight: Mutex::new(HashMap::new()),
            hot: Mutex::new(VecDeque::with_capacity(hot_chunks)),
            hot_chunks,
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
        (self.chunk_bytes * 2) as usize
    }

    /// The most chunks one partition reads ahead.
    pub fn readahead_max_chunks(&self) -> u64 {
        self.readahead_max_chunks
    }

    /// Whether chunks come from a directory on this machine, where reading
    /// far ahead only fills memory: the page cache already does it.
    pub fn reads_in_place(store: &RemoteStore) -> bool {
        store.local
    }

    fn file(&self, key: &ChunkKey, file: u64) -> PathBuf {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        self.dir
            .join(format!("{:016x}-{}-{file}.chunk", h.finish(), key.1))
    }

    /// Chunk `chunk` of the object `key` whose size is `object_size`, and
    /// how it was served.
    pub async fn get(
        self: &Arc<Self>,
        store: &RemoteStore,
        key: &ObjectPath,
        object_size: u64,
        chunk: u64,
    ) -> TieringResult<(Bytes, Served)> {
        let ck: ChunkKey = (key.to_string(), chunk);
        if let Some(bytes) = self.hot(&ck) {
            metrics::counter!("strata_remote_cache_hits_total", "level" => "memory").increment(1);
            return Ok((bytes, Served::Ready));
        }
        if store.local {
            metrics::counter!("strata_remote_cache_misses_total").increment(1);
            // A local-directory store is read in place: copying its chunks
            // into cache files on the same disks would only add a write and
            // a read per chunk.
            let bytes = read_range(store, key, object_size, &ck, self.chunk_bytes).await?;
            self.keep_hot(ck, bytes.clone());
            return Ok((bytes, Served::Missed));
        }
        let cached = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.clock += 1;
            let now = state.clock;
            let mut unread = 0;
            let file = state.chunks.get_mut(&ck).map(|c| {
                c.last_used = now;
                if std::mem::take(&mut c.unread) {
                    unread = c.size;
                }
                c.file
            });
            state.unread -= unread;
            file
        };
        if let Some(file) = cached {
            if let Ok(bytes) = tokio::fs::read(self.file(&ck, file)).await {
                metrics::counter!("strata_remote_cache_hits_total", "level" => "disk").increment(1);
                let bytes = Bytes::from(bytes);
                self.keep_hot(ck, bytes.clone());
                return Ok((bytes, Served::Ready));
            }
        }
        metrics::counter!("strata_remote_cache_misses_total").increment(1);
        let mut joined_failed = false;
        let (bytes, served) = loop {
            let (download, served) = {
                let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
                match inflight.get(&ck) {
                    Some(d) if !joined_failed => (d.clone(), Served::Waited),
                    _ => {
                        let d = self.start_download(store, key, object_size, &ck, None);
                        inflight.insert(ck.clone(), d.clone());
                        (d, Served::Missed)
                    }
                }
            };
            match download.await {
                Ok(bytes) => break (bytes, served),
                // A download this reader joined (read-ahead's, which gives
                // up when the store throttles it) failed: the reader tries
                // once with its own, which waits out the throttling.
                Err(_) if served == Served::Waited && !joined_failed => joined_failed = true,
                Err(e) => {
                    return Err(TieringError::Download {
                        key: key.to_string(),
                        reason: e.to_string(),
                    })
                }
            }
        };
        if served == Served::Waited {
            self.mark_read(&ck);
        }
        self.keep_hot(ck, bytes.clone());
        Ok((bytes, served))
    }

    /// Starts the download of `ck` as a task of its own, so that a reader
    /// that stops waiting (a fetch at its deadline) leaves it going into the
    /// cache for the next fetch instead of suspending it with nobody
    /// polling. `permit` is read-ahead's, taken before; a reader's download
    /// waits for one.
    fn start_download(
        self: &Arc<Self>,
        store: &RemoteStore,
        key: &ObjectPath,
        object_size: u64,
        ck: &ChunkKey,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Download {
        let task = tokio::spawn(self.clone().download(
            store.clone(),
            key.clone(),
            object_size,
            ck.clone(),
            permit,
        ));
        let (this, task_ck) = (Arc::clone(self), ck.clone());
        async move {
            task.await.unwrap_or_else(|e| {
                // The task ended without its own clean-up; let the next
                // reader try again.
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
        .shared()
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
        if hot.len() >= self.hot_chunks {
            hot.pop_front();
        }
        hot.push_back((ck, bytes));
    }

    /// One chunk's download: a GET permit (read-ahead brings its own), the
    /// fetch quota, the ranged GET (a reader's retried while the store
    /// throttles it), then the cache file.
    async fn download(
        self: Arc<Self>,
        store: RemoteStore,
        key: ObjectPath,
        object_size: u64,
        ck: ChunkKey,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Bytes, Arc<TieringError>> {
        let ahead = permit.is_some();
        let _permit = match permit {
            Some(p) => p,
            None => Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed"),
        };
        let len = self
            .chunk_bytes
            .min(object_size.saturating_sub(ck.1 * self.chunk_bytes));
        store.quotas.fetch.take(len).await;
        metrics::gauge!("strata_remote_gets_inflight")
            .set((self.max_inflight - self.permits.available_permits()) as f64);
        let purpose = if ahead { "readahead" } else { "read" };
        let mut attempt = 1;
        let result = loop {
            metrics::counter!("strata_remote_gets_total", "purpose" => purpose).increment(1);
            let result = read_range(&store, &key, object_size, &ck, self.chunk_bytes).await;
            match &result {
                Err(e) if e.is_throttled() => {
                    let wait = self.throttled();
                    if ahead || attempt >= THROTTLED_ATTEMPTS {
                        break result;
                    }
                    attempt += 1;
                    debug!(key = %key, chunk = ck.1, wait_ms = wait.as_millis() as u64, "the store throttled a read; retrying after a backoff");
                    tokio::time::sleep(wait).await;
                }
                Ok(_) => {
                    self.unthrottled();
                    break result;
                }
                Err(_) => break result,
            }
        };
        if let Ok(bytes) = &result {
            let file = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.next_file += 1;
                state.next_file
            };
            match tokio::fs::write(self.file(&ck, file), bytes).await {
                Ok(()) => self.insert(ck.clone(), bytes.len() as u64, file, ahead),
                Err(e) => warn!(error = %e, "could not write a chunk to the read cache"),
            }
        }
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ck);
        result.map_err(Arc::new)
    }

    /// Notes a throttled answer: read-ahead pauses for the (doubled)
    /// backoff, which is also how long a reader waits before its retry.
    fn throttled(&self) -> Duration {
        metrics::counter!("strata_remote_throttled_total").increment(1);
        let mut t = self.throttle.lock().unwrap_or_else(|p| p.into_inner());
        let wait = t.delay;
        t.until = Some(Instant::now() + wait);
        t.delay = (t.delay * 2).min(MAX_THROTTLE_BACKOFF);
        wait
    }

    fn unthrottled(&self) {
        let mut t = self.throttle.lock().unwrap_or_else(|p| p.into_inner());
        t.delay = MIN_THROTTLE_BACKOFF;
    }

    fn is_throttled(&self) -> bool {
        let t = self.throttle.lock().unwrap_or_else(|p| p.into_inner());
        t.until.is_some_and(|u| Instant::now() < u)
    }

    fn insert(&self, ck: ChunkKey, size: u64, file: u64, unread: bool) {
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
                unread,
            };
            if unread {
                state.unread += size;
            }
            match state.chunks.insert(ck.clone(), entry) {
                // A second download of a cached chunk: its older file goes.
                Some(old) => {
                    state.total = state.total - old.size + size;
                    if old.unread {
                        state.unread -= old.size;
                    }
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
                if c.unread {
                    // Read ahead and never read: the cost of reading too far.
                    state.unread -= c.size;
                    metrics::counter!("strata_remote_readahead_unused_bytes_total")
                        .increment(c.size);
                }
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

    /// Starts downloading a chunk in the background for read-ahead, if it
    /// is not cached or downloading and the broker-wide bounds allow.
    pub fn prefetch(
        self: &Arc<Self>,
        store: &RemoteStore,
        key: &ObjectPath,
        object_size: u64,
        chunk: u64,
    ) -> Prefetch {
        if chunk * self.chunk_bytes >= object_size {
            return Prefetch::Present;
        }
        let ck: ChunkKey = (key.to_string(), chunk);
        if store.local {
            // Read in place: only the next chunk or two, into memory.
            if self.hot_has(&ck) {
                return Prefetch::Present;
            }
            let (this, store, key) = (Arc::clone(self), store.clone(), key.clone());
            tokio::spawn(async move {
                let _ = this.get(&store, &key, object_size, chunk).await;
            });
            return Prefetch::Started;
        }
        {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.chunks.contains_key(&ck) {
                return Prefetch::Present;
            }
            if state.unread + self.chunk_bytes > self.max_bytes / 2 {
                return Prefetch::NoRoom;
            }
        }
        if self.is_throttled() {
            return Prefetch::Throttled;
        }
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if inflight.contains_key(&ck) {
            return Prefetch::Present;
        }
        // A quarter of the GETs stay for readers that wait for theirs.
        if self.permits.available_permits() <= self.max_inflight / 4 {
            return Prefetch::Busy;
        }
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            return Prefetch::Busy;
        };
        let d = self.start_download(store, key, object_size, &ck, Some(permit));
        inflight.insert(ck, d);
        Prefetch::Started
    }

    /// A chunk read-ahead downloaded has now been read.
    fn mark_read(&self, ck: &ChunkKey) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut size = 0;
        if let Some(c) = state.chunks.get_mut(ck) {
            if std::mem::take(&mut c.unread) {
                size = c.size;
            }
        }
        state.unread -= size;
    }

    fn hot_has(&self, ck: &ChunkKey) -> bool {
        let hot = self.hot.lock().unwrap_or_else(|p| p.into_inner());
        hot.iter().any(|(k, _)| k == ck)
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
        let cache =
            ChunkCache::new(cache_dir.clone(), CacheLimits::new(4 * C as u64, C as u64)).unwrap();
        for i in 0..10u64 {
            let (chunk, _) = cache.get(&store, &key, size, i).await.unwrap();
            assert!(chunk == expect(i), "chunk {i}");
        }
        assert_eq!(files_in(&cache_dir), 0);

        // Any other store goes through the disk cache, bounded by its size;
        // chunks come back whole from memory, the disk cache or the store.
        store.local = false;
        let cache =
            ChunkCache::new(cache_dir.clone(), CacheLimits::new(4 * C as u64, C as u64)).unwrap();
        for round in 0..2 {
            for i in (0..10u64).rev() {
                let (chunk, _) = cache.get(&store, &key, size, i).await.unwrap();
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
