//! The bucket as the source of truth: what a broker writes into its object
//! store besides the segments and manifests so that the store describes
//! the whole cluster (`catalogue.rs`: the catalogue, the owner lease and
//! the group offsets snapshot), what it checks before it starts on a
//! bucket (`startup.rs`), the restore of an empty data directory from the
//! bucket (`restore.rs`), and the read replica that serves a primary's
//! bucket without writing to it (`replica.rs`). The layout is in FORMAT.md.

pub mod catalogue;
pub mod check_cli;
pub mod follower;
pub mod offsets_snapshot;
pub mod replica;
pub mod restore;
pub mod startup;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use uuid::Uuid;

/// What this broker is to its bucket.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Writes the bucket: uploads, the catalogue, the lease.
    Primary,
    /// Serves a primary's bucket and never writes to it
    /// (`strata --read-replica`).
    ReadReplica,
}

/// The broker's state toward its bucket. Shared by every task; each field
/// is atomic or behind its own mutex, held only for memory changes.
pub struct BucketState {
    pub role: Role,
    /// This data directory's broker instance id (`meta/instance.json`).
    pub instance: Uuid,
    /// The last catalogue generation read or written.
    generation: AtomicU64,
    /// The catalogue changed since it was last published.
    dirty: AtomicBool,
    /// Another broker wrote a generation this broker meant to write: it no
    /// longer writes anything to the bucket.
    fenced: AtomicBool,
    /// Renewals of the lease so far.
    pub(crate) renewals: AtomicU64,
    /// The bytes of the last group offsets snapshot written, so that an
    /// unchanged one is not written again.
    pub(crate) last_offsets: Mutex<Option<Vec<u8>>>,
    /// For a read replica the primary names as its own: the primary.
    leader: Mutex<Option<follower::Endpoint>>,
}

impl BucketState {
    pub fn new(role: Role, instance: Uuid, generation: u64) -> BucketState {
        BucketState {
            role,
            instance,
            generation: AtomicU64::new(generation),
            // The first pass publishes: a bucket written by an older build
            // gets its catalogue, and a restarted broker's changes while the
            // store was unreachable are not lost.
            dirty: AtomicBool::new(role == Role::Primary),
            fenced: AtomicBool::new(false),
            renewals: AtomicU64::new(0),
            last_offsets: Mutex::new(None),
            leader: Mutex::new(None),
        }
    }

    /// Whether this broker may write to the bucket now.
    pub fn writes(&self) -> bool {
        self.role == Role::Primary && !self.fenced.load(Ordering::Acquire)
    }

    pub fn is_read_replica(&self) -> bool {
        self.role == Role::ReadReplica
    }

    /// Records that the catalogue changed (a topic was created, deleted or
    /// reconfigured, or a broker config changed).
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    pub(crate) fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn set_generation(&self, generation: u64) {
        self.generation.store(generation, Ordering::Release);
    }

    /// The primary this read replica follows (KIP-392), if it names it.
    pub fn leader(&self) -> Option<follower::Endpoint> {
        self.leader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets the primary this read replica follows; returns whether it
    /// changed.
    pub(crate) fn set_leader(&self, leader: Option<follower::Endpoint>) -> bool {
        let mut current = self.leader.lock().unwrap_or_else(|p| p.into_inner());
        let changed = *current != leader;
        *current = leader;
        changed
    }

    pub(crate) fn fence(&self) {
        self.fenced.store(true, Ordering::Release);
    }
}
