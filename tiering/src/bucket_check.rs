//! `strata bucket check`: compares what the bucket holds with what its
//! catalogue and manifests say it holds. Orphans are objects no manifest
//! references (the leftovers of interrupted uploads, or of deleted topics
//! whose removal did not finish); missing objects are referenced by a
//! finished segment but absent; a size mismatch is a segment object whose
//! length is not the manifest's. The repair deletes orphans only, and only
//! those older than a grace period, so that a segment uploaded just before
//! its manifest's mirror is never taken for one.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use strata_storage::SegmentFile;

use crate::catalogue::Catalogue;
use crate::error::{TieringError, TieringResult};
use crate::keys::PartitionKey;
use crate::manifest::SegmentState;
use crate::remote_partition::RemotePartition;
use crate::store::RemoteStore;

/// One object of the listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key below the store's prefix.
    pub key: String,
    pub size: u64,
    /// Milliseconds since the epoch, by the store's clock.
    pub last_modified_ms: i64,
}

/// What a check found.
#[derive(Clone, Debug, Default)]
pub struct BucketReport {
    /// Objects listed.
    pub objects: usize,
    /// Partitions whose manifests were read.
    pub partitions: usize,
    /// Objects nothing references.
    pub orphans: Vec<ObjectInfo>,
    /// Objects a finished segment references that the store does not hold.
    pub missing: Vec<String>,
    /// (key, size in the manifest, size in the store).
    pub size_mismatches: Vec<(String, u64, u64)>,
}

impl BucketReport {
    pub fn is_clean(&self) -> bool {
        self.orphans.is_empty() && self.missing.is_empty() && self.size_mismatches.is_empty()
    }
}

async fn list_all(store: &RemoteStore) -> TieringResult<BTreeMap<String, ObjectInfo>> {
    let prefix = store.prefix.clone();
    let root = (!prefix.as_ref().is_empty()).then_some(&prefix);
    let mut listing = store.store.list(root);
    let mut out = BTreeMap::new();
    let strip = if prefix.as_ref().is_empty() {
        String::new()
    } else {
        format!("{}/", prefix.as_ref())
    };
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(TieringError::store("list", &prefix))?;
        let full = meta.location.to_string();
        let key = full.strip_prefix(&strip).unwrap_or(&full).to_string();
        out.insert(
            key.clone(),
            ObjectInfo {
                key,
                size: meta.size,
                last_modified_ms: meta.last_modified.timestamp_millis(),
            },
        );
    }
    Ok(out)
}

/// Checks the bucket against its newest catalogue and the manifests of the
/// catalogue's partitions.
pub async fn check(store: &RemoteStore) -> TieringResult<BucketReport> {
    let objects = list_all(store).await?;
    let catalogue = Catalogue::newest(store).await?;
    let mut report = BucketReport {
        objects: objects.len(),
        ..Default::default()
    };
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    let topics = catalogue
        .as_ref()
        .map(|c| c.topics.clone())
        .unwrap_or_default();
    for topic in &topics {
        for p in 0..topic.partitions as i32 {
            let key = PartitionKey {
                topic: topic.name.clone(),
                topic_id: topic.id,
                partition: p,
            };
            report.partitions += 1;
            referenced.insert(key.manifest_object());
            let Some(manifest) = RemotePartition::stored_manifest(&key, store).await? else {
                // A partition that never uploaded has no manifest yet.
                continue;
            };
            for entry in &manifest.segments {
                let mut files = SegmentFile::SEGMENT.to_vec();
                if entry.txn_index {
                    files.push(SegmentFile::TxnIndex);
                }
                for file in files {
                    let name = key.segment_object(entry.base_offset, entry.id, file);
                    // Segments being copied or deleted are referenced (a
                    // running broker finishes them), but only finished ones
                    // must be whole.
                    if entry.state == SegmentState::CopyFinished {
                        match objects.get(&name) {
                            None => report.missing.push(name.clone()),
                            Some(o) if file == SegmentFile::Log && o.size != entry.size => report
                                .size_mismatches
                                .push((name.clone(), entry.size, o.size)),
                            Some(_) => {}
                        }
                    }
                    referenced.insert(name);
                }
            }
        }
    }
    for (key, info) in &objects {
        if key.starts_with("_strata/") || referenced.contains(key) {
            continue;
        }
        report.orphans.push(info.clone());
    }
    Ok(report)
}

/// Deletes the orphans of `report` last modified before `older_than_ms`
/// (by the store's clock); returns the keys deleted. Nothing else is
/// touched.
pub async fn delete_orphans(
    store: &RemoteStore,
    report: &BucketReport,
    older_than_ms: i64,
) -> TieringResult<Vec<String>> {
    let mut deleted = Vec::new();
    for o in report
        .orphans
        .iter()
        .filter(|o| o.last_modified_ms < older_than_ms)
    {
        let key: ObjectPath = store.key(&o.key);
        match store.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted.push(o.key.clone()),
            Err(e) => return Err(TieringError::store_failed("delete", key.to_string(), e)),
        }
    }
    Ok(deleted)
}
