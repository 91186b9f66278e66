//! Transactions: the state of one transactional id and its transitions
//! (`state.rs`, pure and unit-tested), the coordinator that serves every
//! id and writes the markers (`coordinator.rs`), and the durable store of
//! transaction state (`txn_store.rs`) on the broker's keyed internal log.

mod coordinator;
mod participants;
mod state;
mod txn_store;

pub use coordinator::{Participants, TxnCoordinator, TxnSettings};
pub use state::TxnState;
