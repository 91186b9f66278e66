//! The bucket's owner lease: `_strata/owner.json`, renewed by the broker
//! that writes to the bucket every quarter of the lease, so that a broker
//! about to restore from the bucket (or start on it) can tell whether
//! another broker is alive on it. Nothing here trusts a clock of another
//! machine: a starting broker watches the lease for one lease period, and a
//! renewal seen in that time means its holder is alive. See FORMAT.md.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{TieringError, TieringResult};
use crate::store::RemoteStore;

pub const LEASE_KEY: &str = "_strata/owner.json";

/// The lease as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lease {
    pub format_version: u32,
    /// The broker instance holding the lease (see FORMAT.md).
    pub instance: Uuid,
    /// Where that broker serves clients, for the messages of others.
    pub advertised: String,
    /// Incremented at every renewal.
    pub renewals: u64,
    /// The lease period in milliseconds the holder renews within.
    pub lease_ms: u64,
    /// Set by a clean shutdown: the bucket is free at once.
    #[serde(default)]
    pub released: bool,
    /// The holder's node id, for a read replica answering as its follower.
    #[serde(default = "no_node")]
    pub node_id: i32,
    /// The node id of the read replica the holder sends consumers of its
    /// history to (KIP-392), if any.
    #[serde(default)]
    pub read_replica: Option<i32>,
}

fn no_node() -> i32 {
    -1
}

/// What watching the lease found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseHolder {
    /// Nobody holds it, it was released, or this instance holds it.
    Free,
    /// Another instance held it but did not renew it for a whole period.
    Expired(Lease),
    /// Another instance renewed it while we watched.
    Alive(Lease),
}

impl Lease {
    /// The lease as the store holds it now, `None` without one.
    pub async fn read(store: &RemoteStore) -> TieringResult<Option<Lease>> {
        let Some(bytes) = store.get_bytes(LEASE_KEY).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| TieringError::Corrupt {
                key: store.key(LEASE_KEY).to_string(),
                reason: e.to_string(),
            })
    }

    /// Whether a broker other than `me` holds the bucket: the lease is read,
    /// and if another live-looking instance holds it, watched for up to one
    /// of its lease periods (checked every `poll`).
    pub async fn holder(
        store: &RemoteStore,
        me: Uuid,
        poll: Duration,
    ) -> TieringResult<LeaseHolder> {
        let Some(first) = Self::read(store).await? else {
            return Ok(LeaseHolder::Free);
        };
        if first.instance == me || first.released {
            return Ok(LeaseHolder::Free);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(first.lease_ms);
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(poll).await;
            match Self::read(store).await? {
                Some(now) if now.instance != first.instance || now.renewals != first.renewals => {
                    return Ok(if now.released {
                        LeaseHolder::Free
                    } else {
                        LeaseHolder::Alive(now)
                    });
                }
                Some(_) => {}
                None => return Ok(LeaseHolder::Free),
            }
        }
        Ok(LeaseHolder::Expired(first))
    }

    /// Writes (takes or renews) the lease.
    pub async fn write(&self, store: &RemoteStore) -> TieringResult<()> {
        let json = serde_json::to_vec_pretty(self).expect("a lease serializes");
        store.put_bytes(LEASE_KEY, json).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_renewed_lease_is_alive_and_a_silent_one_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = RemoteStore::local(dir.path()).unwrap();
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        let poll = Duration::from_millis(20);
        assert_eq!(
            Lease::holder(&store, me, poll).await.unwrap(),
            LeaseHolder::Free
        );
        let mut lease = Lease {
            format_version: 1,
            instance: other,
            advertised: "h:1".into(),
            renewals: 0,
            lease_ms: 300,
            released: false,
            node_id: 0,
            read_replica: None,
        };
        lease.write(&store).await.unwrap();
        assert!(matches!(
            Lease::holder(&store, me, poll).await.unwrap(),
            LeaseHolder::Expired(_)
        ));
        assert_eq!(
            Lease::holder(&store, other, poll).await.unwrap(),
            LeaseHolder::Free
        );
        let renewer = {
            let (store, mut lease) = (store.clone(), lease.clone());
            tokio::spawn(async move {
                for _ in 0..10 {
                    lease.renewals += 1;
                    lease.write(&store).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        assert!(matches!(
            Lease::holder(&store, me, poll).await.unwrap(),
            LeaseHolder::Alive(_)
        ));
        renewer.await.unwrap();
        lease.released = true;
        lease.write(&store).await.unwrap();
        assert_eq!(
            Lease::holder(&store, me, poll).await.unwrap(),
            LeaseHolder::Free
        );
    }
}
