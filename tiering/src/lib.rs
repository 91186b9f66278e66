//! Strata's cold tier: sealed segments copied to object storage, the
//! per-partition remote manifest that records them, total retention on the
//! remote copies, and reads of history through a bounded on-disk chunk cache
//! with read-ahead and a bounded index cache; and `TieredPartition`, one
//! partition across both tiers, which the broker's handlers call.
//!
//! Object keys and the manifest format are documented in `FORMAT.md`.

pub mod bucket_check;
mod cache;
mod catalogue;
mod error;
mod index_cache;
mod keys;
mod lease;
mod manifest;
mod quota;
mod read_ahead;
mod remote_partition;
mod remote_read;
mod remote_retention;
mod store;
mod tiered_partition;
mod upload;

pub use cache::{CacheLimits, ChunkCache};
pub use catalogue::{Catalogue, CatalogueTopic, CATALOGUE_FORMAT_VERSION};
pub use error::{TieringError, TieringResult};
pub use index_cache::IndexCache;
pub use keys::PartitionKey;
pub use lease::{Lease, LeaseHolder};
pub use manifest::{Manifest, SegmentEntry, SegmentState, MANIFEST_FORMAT_VERSION};
pub use quota::ByteQuota;
pub use remote_partition::{RemotePartition, RetentionLimits};
pub use remote_read::RemoteRead;
pub use store::{RemoteStore, StoreQuotas};
pub use tiered_partition::{
    HotRead, Isolation, OffsetQuery, PartitionOffsets, ReadForm, RecordFinder, TierPolicy,
    TieredPartition,
};
