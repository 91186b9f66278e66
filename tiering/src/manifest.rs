//! The remote manifest of one partition: which segments are in the object
//! store, and in what state. Kept as a JSON file in the partition's local
//! directory (replaced atomically, fsynced) and mirrored to the store next to
//! the segments. See FORMAT.md.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use strata_storage::Offset;
use uuid::Uuid;

use crate::error::{TieringError, TieringResult};

pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// Where a remote segment is in its life. Only `CopyFinished` segments are
/// read or let local retention delete the local copy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SegmentState {
    /// Recorded before the first byte is uploaded; found at start-up, it
    /// means the copy was interrupted: its objects are deleted and the
    /// segment uploaded again.
    CopyStarted,
    CopyFinished,
    /// Recorded before the objects are deleted by total retention.
    DeleteStarted,
}

/// One segment in the store.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SegmentEntry {
    /// Unique per upload attempt, part of the object keys, so that a retried
    /// copy never collides with the leftovers of an interrupted one.
    pub id: Uuid,
    pub base_offset: Offset,
    /// Offset after the segment's last record.
    pub next_offset: Offset,
    pub size: u64,
    pub max_timestamp: i64,
    pub state: SegmentState,
    /// Whether the segment has aborted transactions, uploaded as its
    /// `.txnindex` object.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub txn_index: bool,
}

impl SegmentEntry {
    pub fn contains(&self, offset: Offset) -> bool {
        self.base_offset <= offset && offset < self.next_offset
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub format_version: u32,
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    /// Sorted by base offset.
    pub segments: Vec<SegmentEntry>,
    /// Set by DeleteRecords: records below it are gone even where a remote
    /// segment still holds them (until retention deletes that segment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_start_offset: Option<Offset>,
}

impl Manifest {
    pub fn new(topic: &str, topic_id: Uuid, partition: i32) -> Manifest {
        Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            topic: topic.into(),
            topic_id,
            partition,
            segments: Vec::new(),
            log_start_offset: None,
        }
    }

    pub fn finished(&self) -> impl Iterator<Item = &SegmentEntry> {
        self.segments
            .iter()
            .filter(|s| s.state == SegmentState::CopyFinished)
    }

    /// First offset held remotely that is not below the log start set by
    /// DeleteRecords.
    pub fn start(&self) -> Option<Offset> {
        let floor = self.log_start_offset.unwrap_or(Offset::ZERO);
        self.finished()
            .find(|s| s.next_offset > floor)
            .map(|s| s.base_offset.max(floor))
    }

    /// Offset after the last record held remotely: every local segment
    /// ending at or below it has a finished remote copy.
    pub fn uploaded_end(&self) -> Option<Offset> {
        self.finished().map(|s| s.next_offset).max()
    }

    pub fn remote_bytes(&self) -> u64 {
        self.finished().map(|s| s.size).sum()
    }

    /// The finished segment holding `offset`.
    pub fn segment_for(&self, offset: Offset) -> Option<&SegmentEntry> {
        if self.log_start_offset.is_some_and(|start| offset < start) {
            return None;
        }
        self.finished().find(|s| s.contains(offset))
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest serializes")
    }

    pub fn from_json(bytes: &[u8], origin: &Path) -> TieringResult<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| TieringError::Manifest {
            path: origin.to_owned(),
            reason: e.to_string(),
        })?;
        if m.format_version != MANIFEST_FORMAT_VERSION {
            return Err(TieringError::Manifest {
                path: origin.to_owned(),
                reason: format!("unsupported format_version {}", m.format_version),
            });
        }
        Ok(m)
    }

    /// Reads the local manifest, `None` if there is none.
    pub fn load(path: &Path) -> TieringResult<Option<Manifest>> {
        match fs::read(path) {
            Ok(bytes) => Self::from_json(&bytes, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TieringError::Manifest {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
        }
    }

    /// Replaces the local manifest atomically and durably.
    pub fn save(&self, path: &Path) -> TieringResult<()> {
        let fail = |e: std::io::Error| TieringError::Manifest {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let tmp = path.with_extension("json.tmp");
        let mut f = fs::File::create(&tmp).map_err(fail)?;
        f.write_all(&self.to_json()).map_err(fail)?;
        f.sync_all().map_err(fail)?;
        fs::rename(&tmp, path).map_err(fail)?;
        if let Some(dir) = path.parent() {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(fail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tracks_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("remote-manifest.json");
        assert_eq!(Manifest::load(&path).unwrap(), None);
        let mut m = Manifest::new("t", Uuid::nil(), 3);
        let entry = |base, next, state| SegmentEntry {
            id: Uuid::new_v4(),
            base_offset: Offset(base),
            next_offset: Offset(next),
            size: 10,
            max_timestamp: 5,
            state,
            txn_index: false,
        };
        m.segments.push(entry(0, 100, SegmentState::CopyFinished));
        m.segments.push(entry(100, 250, SegmentState::CopyFinished));
        m.segments.push(entry(250, 300, SegmentState::CopyStarted));
        m.save(&path).unwrap();
        let back = Manifest::load(&path).unwrap().unwrap();
        assert_eq!(back, m);
        assert_eq!(back.start(), Some(Offset(0)));
        assert_eq!(back.uploaded_end(), Some(Offset(250)));
        assert_eq!(
            back.segment_for(Offset(120)).unwrap().base_offset,
            Offset(100)
        );
        assert!(back.segment_for(Offset(260)).is_none());
        std::fs::write(&path, br#"{"format_version": 9, "topic": "t", "topic_id": "00000000-0000-0000-0000-000000000000", "partition": 0, "segments": []}"#).unwrap();
        assert!(Manifest::load(&path).is_err());
    }

    #[test]
    fn offsets_are_plain_json_numbers_as_format_md_says() {
        let mut m = Manifest::new("t", Uuid::nil(), 0);
        m.log_start_offset = Some(Offset(7));
        m.segments.push(SegmentEntry {
            id: Uuid::nil(),
            base_offset: Offset(5),
            next_offset: Offset(9),
            size: 1,
            max_timestamp: 2,
            state: SegmentState::CopyFinished,
            txn_index: false,
        });
        let json: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(json["log_start_offset"], 7);
        assert_eq!(json["segments"][0]["base_offset"], 5);
        assert_eq!(json["segments"][0]["next_offset"], 9);
    }
}
