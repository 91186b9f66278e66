//! Strata's cold tier: sealed segments copied to object storage, the
//! per-partition remote manifest that records them, total retention on the
//! remote copies, and reads of history through a bounded on-disk chunk cache
//! with read-ahead.
//!
//! Object keys and the manifest format are documented in `FORMAT.md`.

mod cache;
mod error;
mod manifest;
mod partition;
mod store;

pub use cache::ChunkCache;
pub use error::{TieringError, TieringResult};
pub use manifest::{Manifest, SegmentEntry, SegmentState, MANIFEST_FORMAT_VERSION};
pub use partition::{PartitionKey, RemotePartition, RemoteRead, RetentionLimits};
pub use store::RemoteStore;
