//! Strata's local log: the hot tier of every partition.
//!
//! A partition is a directory of segments. Each segment is a `.log` file of
//! Kafka v2 record batches stored byte for byte as producers sent them (only
//! the base offset, and for `LogAppendTime` topics the timestamp, are
//! rewritten), with a sparse, memory-mapped offset index and time index beside
//! it. This crate knows nothing of the network, the Kafka protocol types or
//! object storage: it parses the fixed v2 batch header itself and hands batches
//! out as opaque [`bytes::Bytes`].
//!
//! The byte layout of every file is documented in `FORMAT.md` at the root of
//! the repository.

mod append;
pub mod batch;
mod checkpoint;
mod cleaner;
pub mod codec;
mod config;
mod error;
pub mod index;
mod loader;
mod log;
pub mod marker;
mod offset;
mod offset_map;
pub mod producer;
mod producer_snapshots;
mod read;
pub mod record;
mod retention;
mod scan;
mod segment;
mod segment_file;
mod segments;
pub mod select;
mod start_at;
mod swap;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod txn_index;

pub use append::AppendInfo;
pub use cleaner::{CleanStats, Cleanability};
pub use config::{LogConfig, TimestampType};
pub use error::{StorageError, StorageResult};
pub use log::{Log, LogOffsets, SealedSegment};
pub use marker::Marker;
pub use offset::Offset;
pub use producer::{OpenTxn, ProducerInfo};
pub use read::{FetchData, FileData, FileRegion};
pub use retention::{RetentionOutcome, SegmentInfo};
pub use segment_file::SegmentFile;
pub use txn_index::AbortedTxn;
