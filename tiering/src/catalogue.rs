//! The bucket's catalogue: everything besides the partitions' manifests
//! that a broker needs to serve the history in a bucket (the cluster id, the
//! topics with their ids, partition counts and configs, the topics whose
//! objects are being deleted, the broker's dynamic configs and the next
//! producer id). Written as numbered generations under
//! `_strata/catalogue/`, each with a create-only PUT, so that two brokers
//! pointed at one bucket cannot overwrite each other's: the second writer of
//! a generation is refused by the store and learns that it is fenced. See
//! FORMAT.md.

use std::collections::BTreeMap;

use futures::StreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{TieringError, TieringResult};
use crate::store::RemoteStore;

pub const CATALOGUE_FORMAT_VERSION: u32 = 1;

/// Where the catalogue's generations live under the store's prefix.
pub const CATALOGUE_DIR: &str = "_strata/catalogue";

/// How many generations are kept: the newest, and two before it for a
/// reader that listed just before a publish.
const KEEP: usize = 3;

/// One topic in the catalogue.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CatalogueTopic {
    pub name: String,
    pub id: Uuid,
    pub partitions: u32,
    /// Topic-level config overrides, by Kafka name.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// The catalogue as one generation holds it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Catalogue {
    pub format_version: u32,
    pub generation: u64,
    pub cluster_id: String,
    /// The broker instance (see FORMAT.md) that wrote this generation.
    pub written_by: Uuid,
    pub written_ms: i64,
    /// The broker's next producer id when this generation was written.
    pub next_producer_id: i64,
    pub topics: Vec<CatalogueTopic>,
    /// Deleted topics whose objects are still being removed.
    #[serde(default)]
    pub deleting: Vec<CatalogueTopic>,
    /// Dynamic broker configs: the cluster default and this broker's.
    #[serde(default)]
    pub cluster_default_configs: BTreeMap<String, String>,
    #[serde(default)]
    pub broker_configs: BTreeMap<String, String>,
    /// The broker's ACLs, opaque to this crate (their form is the broker's;
    /// see FORMAT.md), so that a restore after disk loss keeps them.
    #[serde(default)]
    pub acls: Vec<serde_json::Value>,
}

/// A generation's key below the store's prefix.
fn generation_name(generation: u64) -> String {
    format!("{CATALOGUE_DIR}/{generation:020}.json")
}

fn generation_key(store: &RemoteStore, generation: u64) -> object_store::path::Path {
    store.key(&generation_name(generation))
}

/// The generation numbers in the store, oldest first. Listing is fine
/// here: it happens at start-up, at a replica's refresh and in the bucket
/// check, never on a read path.
async fn generations(store: &RemoteStore) -> TieringResult<Vec<u64>> {
    let prefix = store.key(CATALOGUE_DIR);
    let mut listing = store.store.list(Some(&prefix));
    let mut out = Vec::new();
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(TieringError::store("list", &prefix))?;
        if let Some(n) = meta
            .location
            .filename()
            .and_then(|f| f.strip_suffix(".json"))
            .and_then(|f| f.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

impl Catalogue {
    /// The newest generation in the store, if the bucket holds a catalogue.
    pub async fn newest(store: &RemoteStore) -> TieringResult<Option<Catalogue>> {
        // A generation deleted between the listing and the read (a newer
        // one was published meanwhile) is looked for again.
        for _ in 0..3 {
            let Some(&n) = generations(store).await?.last() else {
                return Ok(None);
            };
            let name = generation_name(n);
            match store.get_bytes(&name).await? {
                Some(bytes) => return Self::from_json(&bytes, store.key(&name).as_ref()).map(Some),
                None => continue,
            }
        }
        Err(TieringError::Corrupt {
            key: store.key(CATALOGUE_DIR).to_string(),
            reason: "its newest generation keeps disappearing while it is read".into(),
        })
    }

    pub fn from_json(bytes: &[u8], key: &str) -> TieringResult<Catalogue> {
        let c: Catalogue = serde_json::from_slice(bytes).map_err(|e| TieringError::Corrupt {
            key: key.into(),
            reason: e.to_string(),
        })?;
        if c.format_version != CATALOGUE_FORMAT_VERSION {
            return Err(TieringError::Corrupt {
                key: key.into(),
                reason: format!(
                    "unsupported format_version {} (this build reads {CATALOGUE_FORMAT_VERSION})",
                    c.format_version
                ),
            });
        }
        Ok(c)
    }

    /// Writes this catalogue as generation `self.generation`, which must
    /// not exist yet: if another broker wrote it first, the store refuses
    /// and the answer is [`TieringError::Fenced`]. Older generations beyond
    /// the last few are then removed.
    pub async fn publish(&self, store: &RemoteStore) -> TieringResult<()> {
        let key = generation_key(store, self.generation);
        let json = serde_json::to_vec_pretty(self).expect("a catalogue serializes");
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match store
            .store
            .put_opts(&key, PutPayload::from(json), opts)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                // The store's own retry of a PUT that succeeded but whose
                // answer was lost finds this broker's object: that is this
                // publish, not another broker's. The generation is read
                // back to tell them apart; if it cannot be read, the
                // publish fails and is retried, rather than fencing on a
                // guess.
                let existing = match store.get_bytes(&generation_name(self.generation)).await? {
                    Some(bytes) => Self::from_json(&bytes, key.as_ref())?,
                    None => {
                        return Err(TieringError::Download {
                            key: key.to_string(),
                            reason: "the store reported the generation as existing, then not found"
                                .into(),
                        })
                    }
                };
                if existing.written_by != self.written_by {
                    return Err(TieringError::Fenced {
                        key: key.to_string(),
                        holder: existing.written_by.to_string(),
                    });
                }
            }
            Err(e) => return Err(TieringError::store_failed("put", key.to_string(), e)),
        }
        let all = generations(store).await?;
        for &old in all.iter().rev().skip(KEEP) {
            let k = generation_key(store, old);
            match store.store.delete(&k).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(TieringError::store_failed("delete", k.to_string(), e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue(generation: u64, by: Uuid) -> Catalogue {
        Catalogue {
            format_version: CATALOGUE_FORMAT_VERSION,
            generation,
            cluster_id: "c".into(),
            written_by: by,
            written_ms: 0,
            next_producer_id: 7,
            topics: vec![CatalogueTopic {
                name: "t".into(),
                id: Uuid::nil(),
                partitions: 2,
                configs: BTreeMap::new(),
            }],
            deleting: Vec::new(),
            acls: Vec::new(),
            cluster_default_configs: BTreeMap::new(),
            broker_configs: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn generations_are_written_once_and_the_newest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = RemoteStore::local(dir.path()).unwrap();
        assert_eq!(Catalogue::newest(&store).await.unwrap(), None);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for g in 1..=5 {
            catalogue(g, a).publish(&store).await.unwrap();
        }
        assert_eq!(
            Catalogue::newest(&store).await.unwrap().unwrap().generation,
            5
        );
        assert_eq!(generations(&store).await.unwrap(), vec![3, 4, 5]);
        // The same broker writing the same generation again (a retried PUT
        // whose first answer was lost) is not fenced.
        catalogue(5, a).publish(&store).await.unwrap();
        // A second broker that writes the same generation is fenced.
        match catalogue(5, b).publish(&store).await {
            Err(TieringError::Fenced { holder, .. }) => assert_eq!(holder, a.to_string()),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Catalogue::newest(&store).await.unwrap().unwrap().written_by,
            a
        );
    }
}
