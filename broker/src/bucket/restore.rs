//! Restoring an empty data directory from the bucket (`strata --restore`):
//! the metadata from the catalogue, and for every partition its manifest
//! from the store and an empty local log that starts where the cold tier
//! ends, so that every uploaded record reads from its original offset and
//! new records follow the last uploaded one. Nothing in the store is
//! written or deleted here. A read replica prepares its partitions the same
//! way (`replica.rs`).

use std::path::Path;
use std::time::Instant;

use futures::StreamExt;
use strata_storage::{Log, LogConfig, Offset};
use strata_tiering::{Catalogue, PartitionKey, RemotePartition, RemoteStore};
use tracing::info;

use crate::bucket::catalogue::from_catalogue;
use crate::clock::now_ms;
use crate::config::{BrokerConfig, Layer};
use crate::error::AdminError;
use crate::meta::MetaStore;

/// Producer ids handed out after the last catalogue was written are not in
/// it; a restored broker continues this far past the catalogue's counter
/// so that it never hands out an id the lost broker used.
pub const PRODUCER_ID_MARGIN: i64 = 1 << 20;

/// How many partitions are prepared at once: each costs one GET of its
/// manifest, so a bucket with many partitions is restored in parallel.
const CONCURRENCY: usize = 32;

/// What a restore did.
#[derive(Debug, Default)]
pub struct RestoreSummary {
    pub topics: usize,
    pub partitions: usize,
    pub segments: usize,
    pub millis: u128,
}

/// Prepares one partition's directory from the store, replacing what it
/// held: its manifest (only
/// finished copies) and an empty log at the offset after the last uploaded
/// record (zero when nothing was uploaded). Returns the number of remote
/// segments.
pub async fn prepare_partition(
    store: &RemoteStore,
    data_dir: &Path,
    key: PartitionKey,
    log_config: LogConfig,
) -> Result<usize, AdminError> {
    let dir = data_dir.join(format!("{}-{}", key.topic, key.partition));
    // What a directory being prepared holds is derived from the store: an
    // interrupted restore's leftovers, or a read replica's earlier copy.
    let old = dir.clone();
    tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&old) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    })
    .await
    .expect("removal does not panic")
    .map_err(|source| crate::meta::MetaError::Io {
        op: "remove",
        path: dir.clone(),
        source,
    })?;
    let manifest = RemotePartition::restore_manifest(&key, store, &dir).await?;
    let (start, segments) = manifest.map_or((Offset::ZERO, 0), |m| {
        (
            m.uploaded_end().unwrap_or(Offset::ZERO),
            m.finished().count(),
        )
    });
    tokio::task::spawn_blocking(move || Log::create_at(&dir, log_config, start, now_ms())?.close())
        .await
        .expect("log creation does not panic")?;
    Ok(segments)
}

/// Prepares every partition of `topics` in `data_dir`, several at a time.
pub async fn prepare_partitions(
    store: &RemoteStore,
    data_dir: &Path,
    topics: &[strata_tiering::CatalogueTopic],
    config: &BrokerConfig,
    skip_below: impl Fn(&str) -> u32,
) -> Result<(usize, usize), AdminError> {
    let mut work = Vec::new();
    for t in topics {
        for p in skip_below(&t.name)..t.partitions {
            let key = PartitionKey {
                topic: t.name.clone(),
                topic_id: t.id,
                partition: p as i32,
            };
            work.push((key, config.log_config(&t.configs)));
        }
    }
    let partitions = work.len();
    let mut results = futures::stream::iter(work)
        .map(|(key, log_config)| prepare_partition(store, data_dir, key, log_config))
        .buffer_unordered(CONCURRENCY);
    let mut segments = 0;
    while let Some(r) = results.next().await {
        segments += r?;
    }
    Ok((partitions, segments))
}

/// Writes the metadata of `catalogue` into the empty `data_dir` and
/// prepares every partition. Blocking file work runs on the blocking pool.
pub async fn restore(
    store: &RemoteStore,
    data_dir: &Path,
    catalogue: &Catalogue,
    config: &BrokerConfig,
) -> Result<RestoreSummary, AdminError> {
    let started = Instant::now();
    let meta_dir = data_dir.to_owned();
    let c = catalogue.clone();
    tokio::task::spawn_blocking(move || -> Result<(), AdminError> {
        let meta = MetaStore::new(&meta_dir);
        meta.save_broker_configs(&c.cluster_default_configs, &c.broker_configs)?;
        meta.set_next_producer_id(c.next_producer_id.saturating_add(PRODUCER_ID_MARGIN))?;
        meta.save_deleting(c.deleting.iter().map(from_catalogue).collect())?;
        let acls = c
            .acls
            .iter()
            .filter_map(|a| serde_json::from_value(a.clone()).ok())
            .collect::<Vec<crate::security::acl::AclBinding>>();
        if acls.len() != c.acls.len() {
            tracing::warn!(
                kept = acls.len(),
                stored = c.acls.len(),
                "some ACLs in the catalogue are not understood by this build and were left out"
            );
        }
        crate::security::save_acls(&meta_dir, acls)
            .map_err(|e| AdminError::InvalidRequest(e.to_string()))?;
        Ok(())
    })
    .await
    .expect("metadata writes do not panic")?;
    // The topic configs take effect over the restored dynamic broker
    // configs, as they will once the broker runs.
    let config = config
        .with_dynamic(
            Layer::ClusterDefault,
            catalogue.cluster_default_configs.clone(),
        )
        .and_then(|c| c.with_dynamic(Layer::ThisBroker, catalogue.broker_configs.clone()))
        .unwrap_or_else(|_| config.clone());
    let (partitions, segments) =
        prepare_partitions(store, data_dir, &catalogue.topics, &config, |_| 0).await?;
    // The topics and the cluster id are written last: a restore that
    // stops midway leaves a directory without a cluster id, which the next
    // `--restore` takes for empty and prepares again.
    let meta_dir = data_dir.to_owned();
    let c = catalogue.clone();
    tokio::task::spawn_blocking(move || -> Result<(), AdminError> {
        let meta = MetaStore::new(&meta_dir);
        meta.save_topics(c.topics.iter().map(from_catalogue).collect())?;
        meta.save_cluster_id(&c.cluster_id)?;
        Ok(())
    })
    .await
    .expect("metadata writes do not panic")?;
    let summary = RestoreSummary {
        topics: catalogue.topics.len(),
        partitions,
        segments,
        millis: started.elapsed().as_millis(),
    };
    info!(
        topics = summary.topics,
        partitions = summary.partitions,
        segments = summary.segments,
        millis = summary.millis as u64,
        generation = catalogue.generation,
        "restored the cluster from the bucket"
    );
    Ok(summary)
}
