//! The files of one segment, named as Kafka names them: the base offset
//! zero-padded to 20 digits and an extension. The one list both tiers use,
//! so that a new kind of file (the transaction index, say) is added once.

use std::path::{Path, PathBuf};

use crate::Offset;

/// One kind of file belonging to a segment.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SegmentFile {
    /// The record batches (`.log`).
    Log,
    /// The sparse offset index (`.index`).
    OffsetIndex,
    /// The sparse time index (`.timeindex`).
    TimeIndex,
    /// The producer state at the segment's base offset (`.snapshot`).
    ProducerSnapshot,
    /// The aborted transactions whose markers the segment holds
    /// (`.txnindex`); only segments with such a marker have one.
    TxnIndex,
}

impl SegmentFile {
    /// The files every segment has, in the order they are written and
    /// uploaded: the log, then its indexes.
    pub const SEGMENT: [SegmentFile; 3] = [
        SegmentFile::Log,
        SegmentFile::OffsetIndex,
        SegmentFile::TimeIndex,
    ];

    /// The indexes among [`SegmentFile::SEGMENT`].
    pub const INDEXES: [SegmentFile; 2] = [SegmentFile::OffsetIndex, SegmentFile::TimeIndex];

    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            SegmentFile::Log => "log",
            SegmentFile::OffsetIndex => "index",
            SegmentFile::TimeIndex => "timeindex",
            SegmentFile::ProducerSnapshot => "snapshot",
            SegmentFile::TxnIndex => "txnindex",
        }
    }

    /// The file's name for the segment at `base`.
    pub fn name(self, base: Offset) -> String {
        format!("{:020}.{}", base.0, self.extension())
    }

    /// The file's path for the segment at `base` in the log directory `dir`.
    pub fn path(self, dir: &Path, base: Offset) -> PathBuf {
        dir.join(self.name(base))
    }
}
