//! The broker as the coordinator's [`Participants`]: markers go to the
//! partitions' logs (waking their parked fetches, as the last stable
//! offset may move), offsets to the group coordinator.

use strata_storage::{Marker, StorageError};

use super::Participants;
use crate::broker::Broker;
use crate::clock::now_ms;

impl Participants for Broker {
    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        marker: Marker,
    ) -> Result<(), StorageError> {
        let Some(p) = self
            .topic(topic)
            .and_then(|t| t.partition(partition).cloned())
        else {
            // The topic was deleted meanwhile: nothing is left to mark.
            return Ok(());
        };
        // A segment the marker sealed is fsynced by the periodic flush pass
        // (`flush_due`), not here under the coordinator's mutex.
        match p
            .log()
            .append_marker(producer_id, epoch, marker, 0, now_ms())
        {
            Err(StorageError::Closed { .. }) => return Ok(()),
            other => other?,
        };
        p.wake_waiters();
        Ok(())
    }

    fn complete_offsets(
        &self,
        group: &str,
        producer_id: i64,
        commit: bool,
    ) -> Result<(), StorageError> {
        self.groups.complete_txn(group, producer_id, commit)
    }
}
