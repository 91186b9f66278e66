//! What a broker checks of its bucket before it opens its data directory,
//! and the refusals that keep history from being forked:
//!
//! - an empty data directory on a bucket that holds a cluster starts only
//!   with `--restore`, which restores it from the bucket;
//! - `--restore` needs an empty data directory and a bucket with a
//!   catalogue;
//! - a data directory of one cluster does not start on another's bucket,
//!   nor on its own cluster's bucket once another broker wrote its newest
//!   catalogue;
//! - no broker starts as primary on a bucket whose owner lease another
//!   broker is renewing;
//! - a read replica needs a bucket with a catalogue.

use std::path::Path;
use std::time::Duration;

use strata_tiering::{Catalogue, Lease, LeaseHolder, RemoteStore};
use tracing::{info, warn};
use uuid::Uuid;

use crate::bucket::restore::RestoreSummary;
use crate::bucket::Role;
use crate::config::BrokerConfig;
use crate::error::AdminError;
use crate::meta::MetaStore;

/// How the broker was asked to start.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StartMode {
    Primary { restore: bool },
    ReadReplica,
}

/// What the checks found, for opening the broker.
#[derive(Debug)]
pub struct Prepared {
    pub role: Role,
    pub instance: Uuid,
    /// The newest catalogue generation in the bucket (0 without one).
    pub generation: u64,
    /// Set when the data directory was restored from the bucket.
    pub restored: Option<RestoreSummary>,
    /// The newest catalogue, for a read replica.
    pub catalogue: Option<Catalogue>,
}

fn refuse(message: String) -> AdminError {
    AdminError::BucketRefused(message)
}

/// Runs the checks, and the restore when asked for.
pub async fn prepare(
    mode: StartMode,
    data_dir: &Path,
    store: &RemoteStore,
    config: &BrokerConfig,
) -> Result<Prepared, AdminError> {
    let meta_dir = data_dir.to_owned();
    let (fresh, instance, local_cluster) = tokio::task::spawn_blocking(move || {
        let meta = MetaStore::new(&meta_dir);
        let fresh = meta.is_new();
        let instance = meta.instance_id()?;
        let cluster = if fresh {
            None
        } else {
            Some(meta.cluster_id()?)
        };
        Ok::<_, AdminError>((fresh, instance, cluster))
    })
    .await
    .expect("metadata reads do not panic")?;
    let newest = Catalogue::newest(store).await?;
    let url = &store.url;
    let dir = data_dir.display();
    if let (Some(local), Some(c)) = (&local_cluster, &newest) {
        if *local != c.cluster_id {
            return Err(refuse(format!(
                "the object store {url} holds Strata cluster {} but the data directory {dir} belongs to cluster {local}; point this broker at its own bucket or prefix",
                c.cluster_id
            )));
        }
    }
    // A data directory that is not the one the bucket's newest catalogue
    // came from (its disk came back after another broker restored the
    // bucket, say) would fork the history.
    if let (false, Some(c), StartMode::Primary { .. }) = (fresh, &newest, mode) {
        if c.written_by != instance {
            return Err(refuse(format!(
                "the object store {url} was last written by broker instance {} (catalogue generation {}), not by the one of {dir} ({instance}): another broker took the bucket over since this data directory served it; start on a fresh data directory with --restore",
                c.written_by, c.generation
            )));
        }
    }
    if mode == StartMode::ReadReplica {
        let Some(catalogue) = newest else {
            return Err(refuse(format!(
                "--read-replica: the object store {url} holds no Strata catalogue (_strata/catalogue/): a read replica serves the bucket of a running primary"
            )));
        };
        return Ok(Prepared {
            role: Role::ReadReplica,
            instance,
            generation: catalogue.generation,
            restored: None,
            catalogue: Some(catalogue),
        });
    }
    let restore = mode == (StartMode::Primary { restore: true });
    match (fresh, restore, &newest) {
        (false, true, _) => {
            return Err(refuse(format!(
                "--restore needs an empty data directory, and {dir} already holds cluster {}; move it aside to restore from {url}",
                local_cluster.unwrap_or_default()
            )))
        }
        (true, true, None) => {
            return Err(refuse(format!(
                "--restore: the object store {url} holds no Strata catalogue (_strata/catalogue/) to restore from"
            )))
        }
        (true, false, Some(c)) => {
            return Err(refuse(format!(
                "the data directory {dir} is empty but the object store {url} holds Strata cluster {} ({} topics, catalogue generation {}): start with --restore to restore it from the bucket, or give this broker another bucket or prefix so that the history is not forked",
                c.cluster_id,
                c.topics.len(),
                c.generation
            )))
        }
        _ => {}
    }
    // The lease says whether another broker is alive on the bucket: its
    // holder renews it every quarter of its period, and it is watched here
    // for up to one period.
    let lease_ms = config.i64("remote.log.owner.lease.ms") as u64;
    let poll = Duration::from_millis((lease_ms / 8).clamp(50, 1000));
    match Lease::holder(store, instance, poll).await? {
        LeaseHolder::Alive(l) => {
            return Err(refuse(format!(
                "the object store {url} is in use: broker instance {} (serving {}) renewed its owner lease (_strata/owner.json) while this broker watched it; stop that broker first, or start this one as --read-replica",
                l.instance, l.advertised
            )))
        }
        LeaseHolder::Expired(l) => {
            warn!(holder = %l.instance, advertised = %l.advertised, "the bucket's owner lease was not renewed for a whole lease period; taking it over")
        }
        LeaseHolder::Free => {}
    }
    let restored = match (restore, &newest) {
        (true, Some(c)) => {
            info!(url = %url, cluster_id = %c.cluster_id, generation = c.generation, "restoring the cluster from the bucket");
            Some(crate::bucket::restore::restore(store, data_dir, c, config).await?)
        }
        _ => None,
    };
    Ok(Prepared {
        role: Role::Primary,
        instance,
        generation: newest.as_ref().map_or(0, |c| c.generation),
        restored,
        catalogue: newest,
    })
}
