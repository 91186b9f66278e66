//! Snapshots of every group's committed offsets in the bucket
//! (`_strata/group-offsets.json`), written by the primary's upload pass
//! when they changed, and read back by a restore: the committed-offsets log
//! is a compacted local log, which the cold tier does not hold. See
//! FORMAT.md.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use strata_storage::Offset;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::clock::now_ms;
use crate::group::Committed;

pub const OFFSETS_KEY: &str = "_strata/group-offsets.json";

/// One committed offset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// The snapshot as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OffsetsSnapshot {
    pub format_version: u32,
    pub cluster_id: String,
    pub written_ms: i64,
    pub groups: BTreeMap<String, Vec<GroupOffset>>,
}

/// What a restore of group offsets did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OffsetsRestored {
    pub groups: usize,
    pub offsets: usize,
    /// Offsets moved into the restored partition's range.
    pub clamped: usize,
    /// Offsets of topics or partitions the restored cluster lacks.
    pub dropped: usize,
}

impl Broker {
    fn offsets_now(&self) -> BTreeMap<String, Vec<GroupOffset>> {
        let mut groups = BTreeMap::new();
        for (group, ..) in self.groups.list() {
            let offsets: Vec<GroupOffset> = self
                .groups
                .committed_partitions(&group)
                .into_iter()
                .map(|(topic, partition, c)| GroupOffset {
                    topic,
                    partition,
                    offset: c.offset.0,
                    leader_epoch: c.leader_epoch,
                    metadata: c.metadata,
                })
                .collect();
            if !offsets.is_empty() {
                groups.insert(group, offsets);
            }
        }
        groups
    }

    /// Writes the group offsets snapshot if the offsets changed since the
    /// last one.
    pub async fn write_offsets_snapshot(self: &Arc<Self>) {
        if !self.bucket.writes() {
            return;
        }
        let groups = self.offsets_now();
        let fingerprint = serde_json::to_vec(&groups).expect("offsets serialize");
        if self
            .bucket
            .last_offsets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            == Some(&fingerprint)
        {
            return;
        }
        let snapshot = OffsetsSnapshot {
            format_version: 1,
            cluster_id: self.cluster_id.clone(),
            written_ms: now_ms(),
            groups,
        };
        let json = serde_json::to_vec_pretty(&snapshot).expect("a snapshot serializes");
        match self.remote_store.put_bytes(OFFSETS_KEY, json).await {
            Ok(()) => {
                *self
                    .bucket
                    .last_offsets
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(fingerprint)
            }
            Err(e) => {
                warn!(error = %e, "writing the group offsets snapshot failed; retrying next pass")
            }
        }
    }

    /// Commits the offsets of the bucket's snapshot into the restored
    /// cluster's groups, each moved into its partition's range (between
    /// the log start and the high watermark), as a consumer resuming there
    /// would be by its reset policy. Blocking.
    pub fn restore_group_offsets(&self, snapshot: &OffsetsSnapshot) -> OffsetsRestored {
        let mut out = OffsetsRestored::default();
        for (group, offsets) in &snapshot.groups {
            let mut commit = Vec::new();
            for o in offsets {
                let Some(p) = self
                    .topic(&o.topic)
                    .and_then(|t| t.partitions.get(o.partition as usize).cloned())
                else {
                    out.dropped += 1;
                    continue;
                };
                let range = p.offsets();
                let offset = Offset(o.offset)
                    .max(range.log_start)
                    .min(range.high_watermark);
                if offset.0 != o.offset {
                    out.clamped += 1;
                }
                commit.push((
                    o.topic.clone(),
                    o.partition,
                    Committed {
                        offset,
                        leader_epoch: o.leader_epoch,
                        metadata: o.metadata.clone(),
                    },
                ));
            }
            if commit.is_empty() {
                continue;
            }
            let n = commit.len();
            match self.groups.commit(group, -1, "", commit) {
                Ok(0) => {
                    out.groups += 1;
                    out.offsets += n;
                }
                Ok(code) => warn!(group = %group, code, "a restored group's offsets were refused"),
                Err(e) => {
                    warn!(group = %group, error = %e, "a restored group's offsets could not be written")
                }
            }
        }
        info!(
            groups = out.groups,
            offsets = out.offsets,
            clamped = out.clamped,
            dropped = out.dropped,
            "restored committed offsets from the bucket's snapshot"
        );
        out
    }

    /// Reads the bucket's group offsets snapshot, `None` without one.
    pub async fn read_offsets_snapshot(&self) -> Option<OffsetsSnapshot> {
        match self.remote_store.get_bytes(OFFSETS_KEY).await {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!(error = %e, "the bucket's group offsets snapshot is unreadable; groups start without offsets");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                warn!(error = %e, "cannot read the bucket's group offsets snapshot; groups start without offsets");
                None
            }
        }
    }
}
