//! A read replica (`strata --read-replica`): a broker with its own data
//! directory and chunk cache that serves a primary's bucket. Its partitions
//! are the primary's remote manifests with an empty local log at the end
//! of the cold tier; every `remote.log.replica.refresh.ms` it reads the
//! newest catalogue (topics created, deleted, grown or reconfigured) and
//! each partition's manifest, and moves its empty logs to the new end. It
//! never writes to the bucket; Produce and admin writes are refused.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use strata_tiering::{Catalogue, RemoteStore};
use tracing::{debug, info, warn};

use crate::broker::Broker;
use crate::bucket::catalogue::from_catalogue;
use crate::bucket::restore::prepare_partitions;
use crate::clock::now_ms;
use crate::config::BrokerConfig;
use crate::error::AdminError;
use crate::meta::MetaStore;

/// Prepares a replica's data directory from the catalogue before the
/// broker opens it. Everything in its partition directories is derived
/// from the bucket, so they are prepared afresh at every start; the
/// replica's own state (its groups' offsets) is kept.
pub async fn prepare_replica(
    store: &RemoteStore,
    data_dir: &Path,
    catalogue: &Catalogue,
    config: &BrokerConfig,
) -> Result<(), AdminError> {
    prepare_partitions(store, data_dir, &catalogue.topics, config, |_| 0).await?;
    let (dir, c) = (data_dir.to_owned(), catalogue.clone());
    tokio::task::spawn_blocking(move || -> Result<(), AdminError> {
        let meta = MetaStore::new(&dir);
        meta.save_topics(c.topics.iter().map(from_catalogue).collect())?;
        if meta.is_new() {
            meta.save_cluster_id(&c.cluster_id)?;
        }
        Ok(())
    })
    .await
    .expect("metadata writes do not panic")?;
    info!(
        topics = catalogue.topics.len(),
        generation = catalogue.generation,
        "read replica prepared from the bucket"
    );
    Ok(())
}

impl Broker {
    /// One refresh of a read replica from the bucket.
    pub async fn refresh_replica(self: Arc<Self>) {
        self.follow_lease().await;
        if let Err(e) = self.refresh_replica_once().await {
            warn!(error = %e, "refreshing the read replica from the bucket failed; retrying next time");
        }
    }

    async fn refresh_replica_once(self: &Arc<Self>) -> Result<(), AdminError> {
        let Some(catalogue) = Catalogue::newest(&self.remote_store).await? else {
            return Ok(());
        };
        if catalogue.generation != self.bucket.generation() {
            // Topics gone (or deleted and created again under a new id)
            // leave first, so that their directories are free.
            let me = Arc::clone(self);
            let c = catalogue.clone();
            tokio::task::spawn_blocking(move || me.drop_topics_not_in(&c))
                .await
                .expect("does not panic")?;
            let known: Vec<(String, u32)> = self
                .topics()
                .iter()
                .map(|t| (t.name.clone(), t.partitions.len() as u32))
                .collect();
            let config = self.config();
            prepare_partitions(
                &self.remote_store,
                self.data_dir(),
                &catalogue.topics,
                &config,
                |name| {
                    known
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or(0, |(_, count)| *count)
                },
            )
            .await?;
            let me = Arc::clone(self);
            let c = catalogue.clone();
            tokio::task::spawn_blocking(move || me.install_replica_topics(&c))
                .await
                .expect("does not panic")?;
            self.bucket.set_generation(catalogue.generation);
            info!(
                generation = catalogue.generation,
                topics = catalogue.topics.len(),
                "read replica took a new catalogue"
            );
        }
        let now = now_ms();
        for topic in self.topics() {
            for (index, p) in topic.partitions.iter().enumerate() {
                match p.follow_primary(now).await {
                    Ok(true) => {
                        debug!(topic = %topic.name, partition = index, end = ?p.offsets().high_watermark, "read replica partition moved on")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        warn!(topic = %topic.name, partition = index, error = %e, "cannot read the primary's manifest")
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes the topics the catalogue no longer has, or has under
    /// another id, with their local directories. Blocking.
    fn drop_topics_not_in(&self, catalogue: &Catalogue) -> Result<(), AdminError> {
        let keep: BTreeSet<(String, uuid::Uuid)> = catalogue
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.id))
            .collect();
        let gone = self.retain_topics(|t| keep.contains(&(t.name.clone(), t.id)))?;
        for topic in gone {
            self.remove_local_partitions(&topic);
            for p in &topic.partitions {
                p.wake_waiters();
            }
            info!(topic = %topic.name, "read replica dropped a topic the primary deleted");
        }
        Ok(())
    }
}
