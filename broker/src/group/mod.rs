//! Consumer groups: the classic protocol's state machine for one group
//! (`state.rs`, pure and unit-tested), the coordinator that serves every
//! group (`coordinator.rs`), and the durable store of committed offsets
//! (`offset_store.rs`) on the broker's keyed internal log.

mod coordinator;
mod offset_store;
mod state;

pub use coordinator::{Coordinator, GroupSettings};
pub use offset_store::Committed;
pub use state::JoinArgs;
