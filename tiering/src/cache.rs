//! A bounded on-disk cache of fixed-size chunks of remote segments.
//!
//! Remote segments are read in aligned chunks of `chunk_bytes` with ranged
//! GETs. Each downloaded chunk is kept as a file under the cache directory
//! until the cache exceeds `max_bytes`, when the least recently used chunks
//! are deleted. Concurrent readers of a chunk that is being downloaded wait
//! for that one download instead of starting their own.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use tracing::{debug, warn};

use crate::error::{TieringError, TieringResult};
use crate::store::RemoteStore;

type ChunkKey = (String, u64);
type Download = Shared<BoxFuture<'static, Result<Bytes, Arc<TieringError>>>>;

struct Cached {
    size: u64,
    last_used: u64,
}

#[derive(Default)]
struct State {
    chunks: HashMap<ChunkKey, Cached>,
    total: u64,
    clock: u64,
}

/// Shared by every remote reader of the broker. All methods may be called
/// concurrently; locks are held only for map updates, never across I/O.
pub struct ChunkCache {
    dir: PathBuf,
    max_bytes: u64,
    chunk_bytes: u64,
    state: Mutex<State>,
    inflight: Mutex<HashMap<ChunkKey, Download>>,
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
        }))
    }

    pub fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes
    }

    fn file(&self, key: &ChunkKey) -> PathBuf {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        self.dir
            .join(format!("{:016x}-{}.chunk", h.finish(), key.1))
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
        let cached = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.clock += 1;
            let now = state.clock;
            state
                .chunks
                .get_mut(&ck)
                .map(|c| c.last_used = now)
                .is_some()
        };
        if cached {
            if let Ok(bytes) = tokio::fs::read(self.file(&ck)).await {
                return Ok(Bytes::from(bytes));
            }
        }
        let download = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match inflight.get(&ck) {
                Some(d) => d.clone(),
                None => {
                    let d = self
                        .clone()
                        .download(store.clone(), key.clone(), object_size, ck.clone())
                        .boxed()
                        .shared();
                    inflight.insert(ck.clone(), d.clone());
                    d
                }
            }
        };
        download.await.map_err(|e| TieringError::Download {
            key: key.to_string(),
            reason: e.to_string(),
        })
    }

    async fn download(
        self: Arc<Self>,
        store: RemoteStore,
        key: ObjectPath,
        object_size: u64,
        ck: ChunkKey,
    ) -> Result<Bytes, Arc<TieringError>> {
        let start = ck.1 * self.chunk_bytes;
        let end = (start + self.chunk_bytes).min(object_size);
        let result = if start >= end {
            Err(TieringError::Corrupt {
                key: key.to_string(),
                reason: format!("chunk {} is past the end ({object_size} bytes)", ck.1),
            })
        } else {
            store
                .store
                .get_range(&key, start..end)
                .await
                .map_err(TieringError::store("read", &key))
        };
        let result = result.and_then(|bytes| {
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
        });
        if let Ok(bytes) = &result {
            match tokio::fs::write(self.file(&ck), bytes).await {
                Ok(()) => self.insert(ck.clone(), bytes.len() as u64),
                Err(e) => warn!(error = %e, "could not write a chunk to the read cache"),
            }
        }
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ck);
        result.map_err(Arc::new)
    }

    fn insert(&self, ck: ChunkKey, size: u64) {
        let mut evicted = Vec::new();
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.clock += 1;
            let now = state.clock;
            if state
                .chunks
                .insert(
                    ck.clone(),
                    Cached {
                        size,
                        last_used: now,
                    },
                )
                .is_none()
            {
                state.total += size;
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
                evicted.push(k);
            }
        }
        for k in evicted {
            debug!(key = %k.0, chunk = k.1, "evicted a cached chunk");
            let _ = std::fs::remove_file(self.file(&k));
        }
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
