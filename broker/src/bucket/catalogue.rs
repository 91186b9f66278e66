//! What the primary writes into its bucket beside the segments: the
//! catalogue (published when it changed, before any upload of the pass, so
//! that the bucket never holds a topic's segments without the topic), the
//! owner lease (renewed every quarter of `remote.log.owner.lease.ms`, and
//! released at a clean shutdown), and the deleted topics whose objects are
//! still being removed (in `meta/deleting.json` and the catalogue, so that
//! their removal survives a restart).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use strata_tiering::{Catalogue, CatalogueTopic, Lease, TieringError, CATALOGUE_FORMAT_VERSION};
use tracing::{error, info, warn};

use crate::broker::Broker;
use crate::clock::now_ms;
use crate::config::Layer;
use crate::error::AdminError;
use crate::meta::TopicRecord;

pub fn to_catalogue(t: TopicRecord) -> CatalogueTopic {
    CatalogueTopic {
        name: t.name,
        id: t.id,
        partitions: t.partitions,
        configs: t.configs,
    }
}

pub fn from_catalogue(t: &CatalogueTopic) -> TopicRecord {
    TopicRecord {
        name: t.name.clone(),
        id: t.id,
        partitions: t.partitions,
        configs: t.configs.clone(),
    }
}

impl Broker {
    /// The catalogue as this broker's state has it now, numbered
    /// `generation`. Blocking (reads two small metadata files).
    pub(crate) fn catalogue(&self, generation: u64) -> Result<Catalogue, AdminError> {
        let config = self.config();
        Ok(Catalogue {
            format_version: CATALOGUE_FORMAT_VERSION,
            generation,
            cluster_id: self.cluster_id.clone(),
            written_by: self.bucket.instance,
            written_ms: now_ms(),
            next_producer_id: self.meta().peek_producer_id()?,
            topics: self
                .topics()
                .iter()
                .map(|t| to_catalogue(t.record()))
                .collect(),
            deleting: self
                .meta()
                .load_deleting()?
                .into_iter()
                .map(to_catalogue)
                .collect(),
            cluster_default_configs: config.dynamic(Layer::ClusterDefault).clone(),
            broker_configs: config.dynamic(Layer::ThisBroker).clone(),
            acls: self
                .security
                .authorizer
                .acls()
                .iter()
                .map(|a| serde_json::to_value(a).expect("ACLs serialize"))
                .collect(),
        })
    }

    /// Publishes the catalogue if it changed since the last publish. An
    /// error means that the pass must not upload: the store failed (the
    /// next pass tries again) or another broker wrote the generation this
    /// one meant to write, after which this broker writes nothing to the
    /// bucket any more.
    pub async fn publish_catalogue(self: &Arc<Self>) -> Result<(), TieringError> {
        if !self.bucket.writes() {
            return Err(TieringError::Fenced {
                key: "_strata/catalogue".into(),
                holder: "another broker".into(),
            });
        }
        if !self.bucket.take_dirty() {
            return Ok(());
        }
        let me = Arc::clone(self);
        let next = self.bucket.generation() + 1;
        let catalogue = match tokio::task::spawn_blocking(move || me.catalogue(next)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                self.bucket.mark_dirty();
                warn!(error = %e, "cannot read the metadata for the catalogue; retrying next pass");
                return Ok(());
            }
            Err(_) => {
                self.bucket.mark_dirty();
                return Ok(());
            }
        };
        match catalogue.publish(&self.remote_store).await {
            Ok(()) => {
                self.bucket.set_generation(next);
                info!(
                    generation = next,
                    topics = catalogue.topics.len(),
                    "published the bucket catalogue"
                );
                Ok(())
            }
            Err(e @ TieringError::Fenced { .. }) => {
                self.bucket.fence();
                error!(error = %e, "fenced: another broker writes this bucket; uploads, remote deletions and catalogue writes stop (restart this broker on its own bucket)");
                Err(e)
            }
            Err(e) => {
                self.bucket.mark_dirty();
                warn!(error = %e, retriable = e.is_retriable(), "publishing the bucket catalogue failed; uploads wait for the next pass");
                Err(e)
            }
        }
    }

    fn lease(&self, released: bool) -> Lease {
        Lease {
            format_version: 1,
            instance: self.bucket.instance,
            advertised: format!("{}:{}", self.advertised_host, self.advertised_port),
            renewals: self.bucket.renewals.fetch_add(1, Ordering::AcqRel) + 1,
            lease_ms: self.config().i64("remote.log.owner.lease.ms") as u64,
            released,
            node_id: self.node_id,
            read_replica: self.read_replica_endpoint().map(|e| e.node_id),
        }
    }

    /// Takes the owner lease at start, then renews it (see
    /// `strata_tiering::Lease`). Before each renewal the newest catalogue
    /// is read: one written by another broker past this one's generation
    /// means that broker took the bucket over while this one was not
    /// looking (paused, or cut off from the store), and this one is fenced.
    /// The catalogue decides rather than the lease, because its generations
    /// are written create-only and the lease is not.
    pub async fn renew_lease(self: Arc<Self>) {
        if !self.bucket.writes() {
            return;
        }
        match Catalogue::newest(&self.remote_store).await {
            Ok(Some(c))
                if c.written_by != self.bucket.instance
                    && c.generation > self.bucket.generation() =>
            {
                self.bucket.fence();
                error!(holder = %c.written_by, generation = c.generation, "fenced: another broker wrote the bucket's catalogue; uploads, remote deletions and catalogue writes stop (restart this broker on its own bucket)");
                return;
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "reading the bucket's catalogue failed");
                return;
            }
        }
        if let Err(e) = self.lease(false).write(&self.remote_store).await {
            warn!(error = %e, "renewing the bucket's owner lease failed");
        }
    }

    /// Releases the owner lease at a clean shutdown, so that a broker
    /// started on the bucket next need not wait for it to expire.
    pub async fn release_lease(&self) {
        if !self.bucket.writes() {
            return;
        }
        let lease = self.lease(true);
        match tokio::time::timeout(Duration::from_secs(5), lease.write(&self.remote_store)).await {
            Ok(Ok(())) => info!("released the bucket's owner lease"),
            Ok(Err(e)) => warn!(error = %e, "releasing the bucket's owner lease failed"),
            Err(_) => warn!("releasing the bucket's owner lease timed out"),
        }
    }

    /// Removes a deleted topic's objects from the store, retrying until the
    /// store lets them go, then forgets the deletion (`meta/deleting.json`
    /// and the catalogue). Runs on the current runtime.
    pub fn spawn_remote_deletion(self: &Arc<Self>, topic: TopicRecord) {
        if !self.bucket.writes() {
            return;
        }
        let me = Arc::clone(self);
        tokio::runtime::Handle::current().spawn(async move {
            let dir = format!("{}-{}", topic.name, topic.id.simple());
            let mut delay = Duration::from_millis(200);
            // The topic's lake table goes with it: a topic created again
            // under the name starts its offsets, and its table, afresh.
            loop {
                match me.remote_store.delete_all_under(&strata_lake::table_dir(&topic.name)).await {
                    Ok(_) => break,
                    Err(e) => {
                        warn!(topic = %topic.name, error = %e, "deleting the topic's lake table failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(60));
                    }
                }
            }
            loop {
                match me.remote_store.delete_all_under(&dir).await {
                    Ok(n) => {
                        info!(topic = %topic.name, objects = n, "deleted the topic's remote objects");
                        break;
                    }
                    Err(e) => {
                        warn!(topic = %topic.name, error = %e, retriable = e.is_retriable(), "deleting remote objects failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(60));
                    }
                }
            }
            let b = Arc::clone(&me);
            let id = topic.id;
            let done = tokio::task::spawn_blocking(move || b.forget_deletion(id)).await;
            if let Ok(Err(e)) = done {
                warn!(topic = %topic.name, error = %e, "could not record the end of a deletion; it is redone at the next start");
            }
        });
    }

    /// Resumes the removal of topics deleted before the last shutdown.
    /// Blocking reads, then spawns.
    pub fn resume_remote_deletions(self: &Arc<Self>) -> Result<(), AdminError> {
        for topic in self.meta().load_deleting()? {
            info!(topic = %topic.name, "resuming the deletion of a deleted topic's remote objects");
            self.spawn_remote_deletion(topic);
        }
        Ok(())
    }
}
