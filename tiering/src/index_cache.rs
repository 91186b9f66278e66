//! The broker-wide memory cache of remote segments' offset and time indexes,
//! bounded in bytes (Kafka's `remote.log.index.file.cache.total.size.bytes`)
//! and emptied least recently used first. A replay of a partition with 1 GiB
//! segments reads a 10 MiB index per segment; without a byte bound, every
//! replayed partition would keep hundreds of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::Bytes;
use strata_storage::SegmentFile;
use uuid::Uuid;

/// Which index of a remote segment: the segment's id and the index file.
pub(crate) type IndexKey = (Uuid, SegmentFile);

struct Entry {
    bytes: Bytes,
    /// When it was last used, in the cache's own ticks.
    used: u64,
}

struct Inner {
    entries: HashMap<IndexKey, Entry>,
    /// Entries by last use, oldest first.
    by_use: BTreeMap<u64, IndexKey>,
    bytes: u64,
    tick: u64,
}

/// Shared by every partition's remote reads; safe to call from any thread
/// (one mutex, held only for map updates, never across I/O).
pub struct IndexCache {
    capacity: u64,
    inner: Mutex<Inner>,
    gauge: metrics::Gauge,
}

impl IndexCache {
    /// A cache holding at most `capacity` bytes of indexes.
    pub fn new(capacity: u64) -> IndexCache {
        IndexCache {
            capacity,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                by_use: BTreeMap::new(),
                bytes: 0,
                tick: 0,
            }),
            gauge: metrics::gauge!("strata_remote_index_cache_bytes"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached index, marked as just used.
    pub(crate) fn get(&self, key: &IndexKey) -> Option<Bytes> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.entries.get_mut(key)?;
        let old = std::mem::replace(&mut entry.used, tick);
        let bytes = entry.bytes.clone();
        inner.by_use.remove(&old);
        inner.by_use.insert(tick, *key);
        Some(bytes)
    }

    /// Keeps an index, evicting the least recently used ones to make room.
    /// An index larger than the whole cache is not kept.
    pub(crate) fn insert(&self, key: IndexKey, bytes: Bytes) {
        let size = bytes.len() as u64;
        let mut inner = self.lock();
        Self::remove_locked(&mut inner, &key);
        if size > self.capacity {
            self.gauge.set(inner.bytes as f64);
            return;
        }
        while inner.bytes + size > self.capacity {
            let Some((_, oldest)) = inner.by_use.pop_first() else {
                break;
            };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.bytes -= e.bytes.len() as u64;
            }
        }
        inner.tick += 1;
        let tick = inner.tick;
        inner.by_use.insert(tick, key);
        inner.entries.insert(key, Entry { bytes, used: tick });
        inner.bytes += size;
        self.gauge.set(inner.bytes as f64);
    }

    /// Drops the indexes of a remote segment that was deleted.
    pub(crate) fn remove_segment(&self, id: Uuid) {
        let mut inner = self.lock();
        let keys: Vec<IndexKey> = inner
            .entries
            .keys()
            .filter(|k| k.0 == id)
            .copied()
            .collect();
        for k in keys {
            Self::remove_locked(&mut inner, &k);
        }
        self.gauge.set(inner.bytes as f64);
    }

    fn remove_locked(inner: &mut Inner, key: &IndexKey) {
        if let Some(e) = inner.entries.remove(key) {
            inner.by_use.remove(&e.used);
            inner.bytes -= e.bytes.len() as u64;
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u128) -> IndexKey {
        (Uuid::from_u128(n), SegmentFile::OffsetIndex)
    }

    #[test]
    fn holds_at_most_its_capacity_and_evicts_the_least_recently_used() {
        let cache = IndexCache::new(100);
        cache.insert(key(1), Bytes::from(vec![1; 40]));
        cache.insert(key(2), Bytes::from(vec![2; 40]));
        // Using 1 makes 2 the oldest.
        assert!(cache.get(&key(1)).is_some());
        cache.insert(key(3), Bytes::from(vec![3; 40]));
        assert_eq!(cache.bytes(), 80);
        assert!(cache.get(&key(2)).is_none(), "the least recently used went");
        assert!(cache.get(&key(1)).is_some() && cache.get(&key(3)).is_some());
        // Larger than the cache: not kept, nothing evicted for it.
        cache.insert(key(4), Bytes::from(vec![4; 101]));
        assert!(cache.get(&key(4)).is_none());
        assert_eq!(cache.bytes(), 80);
        // Replacing an entry counts its new size only.
        cache.insert(key(1), Bytes::from(vec![1; 60]));
        assert_eq!(cache.bytes(), 100);
        cache.remove_segment(Uuid::from_u128(1));
        assert_eq!(cache.bytes(), 40);
    }
}
