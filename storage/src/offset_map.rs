//! The cleaner's map from each key to the offset of its latest record in
//! the dirty part of a log (Kafka's `OffsetMap`), bounded in bytes. Keys
//! are kept whole rather than hashed, so that two keys never collide; each
//! entry is charged its key's length plus a fixed overhead against the
//! bound (`log.cleaner.dedupe.buffer.size` shared among the cleaner
//! threads).

use std::collections::HashMap;

/// What an entry costs beyond its key: the map's own bookkeeping, the
/// boxed key's pointer and length, and the offset.
const ENTRY_OVERHEAD: usize = 48;

/// Owned by one cleaning pass; not shared.
pub(crate) struct OffsetMap {
    latest: HashMap<Box<[u8]>, i64>,
    bytes: usize,
    limit: usize,
}

impl OffsetMap {
    pub fn new(limit: usize) -> OffsetMap {
        OffsetMap {
            latest: HashMap::new(),
            bytes: 0,
            limit,
        }
    }

    /// Whether a new key of `len` bytes still fits.
    pub fn has_room_for(&self, len: usize) -> bool {
        self.bytes + len + ENTRY_OVERHEAD <= self.limit
    }

    /// Records `offset` as the latest of `key` (offsets come in order).
    /// Returns false, changing nothing, when a new key does not fit.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        if let Some(o) = self.latest.get_mut(key) {
            *o = offset;
            return true;
        }
        if !self.has_room_for(key.len()) {
            return false;
        }
        self.bytes += key.len() + ENTRY_OVERHEAD;
        self.latest.insert(key.into(), offset);
        true
    }

    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_within_its_bound() {
        let mut m = OffsetMap::new(2 * (ENTRY_OVERHEAD + 1));
        assert!(m.put(b"a", 1));
        assert!(m.put(b"b", 2));
        assert!(m.put(b"a", 3));
        assert!(!m.put(b"c", 4));
        assert_eq!(
            (m.get(b"a"), m.get(b"b"), m.get(b"c")),
            (Some(3), Some(2), None)
        );
        assert_eq!(m.len(), 2);
    }
}
