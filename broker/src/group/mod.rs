//! Consumer groups: the classic protocol's state machine for one group
//! (`state.rs`, pure and unit-tested), KIP-848's consumer protocol beside it
//! (`consumer.rs`, with its server-side assignors in `assignor.rs`), the
//! coordinator that serves every
//! group (`coordinator.rs`), and the durable store of committed offsets
//! (`offset_store.rs`) on the broker's keyed internal log.

mod assignor;
mod consumer;
mod coordinator;
mod offset_store;
mod state;

pub use assignor::{Assignment, TopicShape};
pub use consumer::{ConsumerSettings, HeartbeatArgs};
pub use coordinator::{Coordinator, GroupSettings};
pub use offset_store::Committed;
pub use state::JoinArgs;
