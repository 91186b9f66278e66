//! KIP-392 between a primary and its read replica. A primary configured
//! with `remote.log.read.replica` lists the replica among the brokers of
//! its Metadata and names it as the preferred read replica of a fetch that
//! reaches into the cold tier, when the consumer set `client.rack` (the
//! opt-in of KIP-392, as Kafka's rack-aware selector needs the client's
//! rack). The replica learns from the primary's lease that it is named so,
//! and then answers Metadata as the primary's follower (the primary leads
//! every partition) and a fetch at its end with OFFSET_NOT_AVAILABLE, which
//! sends the consumer back to the primary for the hot tail.

use std::sync::Arc;

use strata_tiering::Lease;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::bucket::Role;

/// A broker as Metadata lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

impl Endpoint {
    /// Parses `NODE_ID@HOST:PORT`.
    pub fn parse(value: &str) -> Result<Endpoint, String> {
        let bad = || format!("{value:?} is not NODE_ID@HOST:PORT");
        let (id, addr) = value.split_once('@').ok_or_else(bad)?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let node_id = id.parse().map_err(|_| bad())?;
        let port = port.parse::<u16>().map_err(|_| bad())? as i32;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Endpoint {
            node_id,
            host: host.trim_matches(|c| c == '[' || c == ']').to_string(),
            port,
        })
    }
}

/// Who Metadata names: every broker, the leader of every partition, its
/// replicas and its in-sync replicas.
pub struct ClusterView {
    pub brokers: Vec<Endpoint>,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl Broker {
    fn me(&self) -> Endpoint {
        Endpoint {
            node_id: self.node_id,
            host: self.advertised_host.clone(),
            port: self.advertised_port,
        }
    }

    /// The read replica this primary sends consumers of its history to.
    pub fn read_replica_endpoint(&self) -> Option<Endpoint> {
        if self.bucket.role != Role::Primary {
            return None;
        }
        let value = self.config().value("remote.log.read.replica");
        if value.is_empty() {
            return None;
        }
        Endpoint::parse(&value).ok()
    }

    /// The node id to name as a fetch's preferred read replica, for a
    /// consumer in `rack` (empty: it did not opt in) reading the cold tier.
    pub fn preferred_read_replica(&self, rack: &str) -> Option<i32> {
        if rack.is_empty() {
            return None;
        }
        self.read_replica_endpoint().map(|e| e.node_id)
    }

    /// Whether this read replica answers as a primary's follower.
    pub fn is_follower(&self) -> bool {
        self.bucket.leader().is_some()
    }

    /// The brokers and replicas Metadata names.
    pub fn cluster_view(&self) -> ClusterView {
        let me = self.me();
        if let Some(replica) = self.read_replica_endpoint() {
            return ClusterView {
                leader: me.node_id,
                replicas: vec![me.node_id, replica.node_id],
                isr: vec![me.node_id],
                brokers: vec![me, replica],
            };
        }
        if let Some(leader) = self.bucket.leader() {
            return ClusterView {
                leader: leader.node_id,
                replicas: vec![leader.node_id, me.node_id],
                isr: vec![leader.node_id],
                brokers: vec![leader, me],
            };
        }
        ClusterView {
            leader: me.node_id,
            replicas: vec![me.node_id],
            isr: vec![me.node_id],
            brokers: vec![me],
        }
    }

    /// A read replica reads the primary's lease: named there as its read
    /// replica, it answers as the primary's follower.
    pub async fn follow_lease(self: &Arc<Self>) {
        let leader = match Lease::read(&self.remote_store).await {
            Ok(Some(l))
                if !l.released && l.read_replica == Some(self.node_id) && l.node_id >= 0 =>
            {
                match Endpoint::parse(&format!("{}@{}", l.node_id, l.advertised)) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        warn!(error = %e, "the primary's lease names an unusable address");
                        None
                    }
                }
            }
            Ok(_) => None,
            Err(e) => {
                warn!(error = %e, "cannot read the primary's lease");
                return;
            }
        };
        if self.bucket.set_leader(leader.clone()) {
            match leader {
                Some(l) => {
                    info!(leader = l.node_id, host = %l.host, port = l.port, "answering as the read replica (follower) of the primary")
                }
                None => info!("answering as a standalone read replica"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_bad_ones_are_named() {
        assert_eq!(
            Endpoint::parse("2@replica.local:9093").unwrap(),
            Endpoint {
                node_id: 2,
                host: "replica.local".into(),
                port: 9093
            }
        );
        assert_eq!(Endpoint::parse("7@[::1]:9").unwrap().host, "::1");
        for bad in ["", "2", "x@h:1", "2@h", "2@:1", "2@h:99999"] {
            assert!(Endpoint::parse(bad)
                .unwrap_err()
                .contains("NODE_ID@HOST:PORT"));
        }
    }
}
