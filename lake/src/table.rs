//! One topic's Iceberg table: finding its newest version in the bucket,
//! creating it, reading what its newest snapshot covers, and committing
//! new data files with the stream offsets they end at.
//!
//! The bucket is the only catalog: the table's newest version is the
//! highest-numbered `metadata/NNNNN-<uuid>.metadata.json`, and a version is
//! committed by creating that file (a conditional PUT, so that two writers
//! cannot both commit version N). `metadata/version-hint.text` names the
//! newest version for readers that look for one.

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt;
use iceberg::memory::{MemoryCatalogBuilder, MEMORY_CATALOG_WAREHOUSE};
use iceberg::spec::{DataFile, NullOrder, SortDirection, SortField, SortOrder, Transform};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation, TableIdent};
use object_store::ObjectStoreExt;
use strata_tiering::RemoteStore;

use crate::columns;
use crate::config::{Column, ColumnType, Granularity, LakeConfig, BUILT_IN_COLUMNS};
use crate::error::{LakeError, LakeResult};
use crate::object_io::ObjectStorage;

/// The namespace Strata's tables are registered under in its catalog.
pub const NAMESPACE: &str = "strata";

/// Summary keys of every snapshot Strata commits.
pub const SUMMARY_TOPIC: &str = "strata.topic";

/// The summary key of a partition's end offset (exclusive): the snapshot
/// holds every committed record of the partition below it.
pub fn end_offset_key(partition: i32) -> String {
    format!("strata.partition.{partition}.end-offset")
}

/// The summary key of a partition's lake watermark: the greatest event time
/// (milliseconds) among the partition's rows in the snapshot.
pub fn watermark_key(partition: i32) -> String {
    format!("strata.partition.{partition}.watermark")
}

/// The bucket key of a topic's table directory, under the store's prefix.
pub fn table_dir(topic: &str) -> String {
    format!("lake/{topic}")
}

/// What a snapshot covers, per Kafka partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// The snapshot's id; `None` before the first commit.
    pub snapshot_id: Option<i64>,
    /// When it was committed (milliseconds since the epoch).
    pub committed_ms: Option<i64>,
    /// Per partition, the offset after the last one the table covers.
    pub end_offsets: BTreeMap<i32, i64>,
    /// Per partition, the greatest event time in the table.
    pub watermarks: BTreeMap<i32, i64>,
}

impl Coverage {
    /// Reads the coverage from a snapshot's summary properties.
    pub fn from_summary(
        snapshot_id: i64,
        committed_ms: i64,
        props: &HashMap<String, String>,
    ) -> Option<Coverage> {
        let mut c = Coverage {
            snapshot_id: Some(snapshot_id),
            committed_ms: Some(committed_ms),
            ..Coverage::default()
        };
        let mut strata = false;
        for (k, v) in props {
            let Some(rest) = k.strip_prefix("strata.partition.") else {
                strata |= k == SUMMARY_TOPIC;
                continue;
            };
            let Some((p, what)) = rest.split_once('.') else {
                continue;
            };
            let (Ok(p), Ok(v)) = (p.parse::<i32>(), v.parse::<i64>()) else {
                continue;
            };
            match what {
                "end-offset" => c.end_offsets.insert(p, v),
                "watermark" => c.watermarks.insert(p, v),
                _ => None,
            };
        }
        strata.then_some(c)
    }

    /// The summary properties that record this coverage.
    pub fn to_summary(&self, topic: &str) -> HashMap<String, String> {
        let mut out = HashMap::from([(SUMMARY_TOPIC.to_string(), topic.to_string())]);
        for (p, o) in &self.end_offsets {
            out.insert(end_offset_key(*p), o.to_string());
        }
        for (p, w) in &self.watermarks {
            out.insert(watermark_key(*p), w.to_string());
        }
        out
    }
}

/// A topic's table, open for commits. Used by one task at a time (the
/// topic's translator); `&mut self` on commits says so.
pub struct LakeTable {
    topic: String,
    storage: ObjectStorage,
    catalog: iceberg::memory::MemoryCatalog,
    table: Table,
}

impl std::fmt::Debug for LakeTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeTable")
            .field("topic", &self.topic)
            .finish()
    }
}

impl LakeTable {
    /// Opens the topic's table, creating it (with `config`'s columns and
    /// event-time partitions) when the bucket has none.
    pub async fn open(
        store: &RemoteStore,
        topic: &str,
        config: &LakeConfig,
    ) -> LakeResult<LakeTable> {
        let storage = ObjectStorage::new(store.clone());
        let iceberg_err = |source: iceberg::Error| LakeError::Iceberg {
            table: topic.to_string(),
            source: Box::new(source),
        };
        let catalog = MemoryCatalogBuilder::default()
            .with_storage_factory(storage.factory())
            .load(
                "strata",
                HashMap::from([(
                    MEMORY_CATALOG_WAREHOUSE.to_string(),
                    storage.location("lake"),
                )]),
            )
            .await
            .map_err(iceberg_err)?;
        let ns = NamespaceIdent::new(NAMESPACE.to_string());
        catalog
            .create_namespace(&ns, HashMap::new())
            .await
            .map_err(iceberg_err)?;
        let ident = TableIdent::new(ns.clone(), topic.to_string());
        let table = match latest_metadata(store, topic).await? {
            Some(location) => catalog
                .register_table(&ident, location)
                .await
                .map_err(iceberg_err)?,
            None => {
                let schema = columns::schema(&config.columns).map_err(iceberg_err)?;
                let spec = columns::partition_spec(config.granularity).map_err(iceberg_err)?;
                let sort = SortOrder::builder()
                    .with_order_id(1)
                    .with_sort_field(
                        SortField::builder()
                            .source_id(columns::EVENT_TIME_ID)
                            .transform(Transform::Identity)
                            .direction(SortDirection::Ascending)
                            .null_order(NullOrder::First)
                            .build(),
                    )
                    .build(&schema)
                    .map_err(iceberg_err)?;
                let creation = TableCreation::builder()
                    .name(topic.to_string())
                    .location(storage.location(&table_dir(topic)))
                    .schema(schema)
                    .partition_spec(spec)
                    .sort_order(sort)
                    .properties([
                        (
                            "write.parquet.compression-codec".to_string(),
                            "zstd".to_string(),
                        ),
                        ("strata.topic".to_string(), topic.to_string()),
                    ])
                    .build();
                let table = catalog
                    .create_table(&ns, creation)
                    .await
                    .map_err(iceberg_err)?;
                write_version_hint(store, topic, &table).await?;
                table
            }
        };
        Ok(LakeTable {
            topic: topic.to_string(),
            storage,
            catalog,
            table,
        })
    }

    /// `config` with the columns and event-time partitions this table was
    /// created with: a table keeps them when the topic's `lake.columns` or
    /// `lake.partition` change later (the change applies to a new table).
    pub fn fixed(&self, config: &LakeConfig) -> LakeConfig {
        use iceberg::spec::{PrimitiveType, Type};
        let metadata = self.table.metadata();
        let columns = metadata
            .current_schema()
            .as_struct()
            .fields()
            .iter()
            // Iceberg numbers a new table's fields afresh, so declared
            // columns are known by not being the table's own.
            .filter(|f| !BUILT_IN_COLUMNS.contains(&f.name.as_str()))
            .filter_map(|f| {
                let ty = match f.field_type.as_ref() {
                    Type::Primitive(PrimitiveType::String) => ColumnType::String,
                    Type::Primitive(PrimitiveType::Long) => ColumnType::Long,
                    Type::Primitive(PrimitiveType::Double) => ColumnType::Double,
                    Type::Primitive(PrimitiveType::Boolean) => ColumnType::Boolean,
                    Type::Primitive(PrimitiveType::Timestamptz) => ColumnType::Timestamp,
                    _ => return None,
                };
                Some(Column {
                    name: f.name.clone(),
                    ty,
                })
            })
            .collect();
        let granularity = match metadata
            .default_partition_spec()
            .fields()
            .first()
            .map(|f| f.transform)
        {
            Some(Transform::Day) => Granularity::Day,
            _ => Granularity::Hour,
        };
        LakeConfig {
            columns,
            granularity,
            ..config.clone()
        }
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    pub fn storage(&self) -> &ObjectStorage {
        &self.storage
    }

    /// What the newest snapshot covers (nothing before the first commit).
    pub fn coverage(&self) -> LakeResult<Coverage> {
        let Some(s) = self.table.metadata().current_snapshot() else {
            return Ok(Coverage::default());
        };
        Coverage::from_summary(
            s.snapshot_id(),
            s.timestamp_ms(),
            &s.summary().additional_properties,
        )
        .ok_or_else(|| LakeError::ForeignSnapshot {
            table: self.topic.clone(),
            snapshot: s.snapshot_id(),
        })
    }

    /// Commits `files` as one snapshot whose summary records `coverage`.
    /// Until this returns, readers see the previous snapshot; if it fails,
    /// the files are orphans that no snapshot references.
    pub async fn commit(&mut self, files: Vec<DataFile>, coverage: &Coverage) -> LakeResult<()> {
        let iceberg_err = |source: iceberg::Error| LakeError::Iceberg {
            table: self.topic.clone(),
            source: Box::new(source),
        };
        let tx = Transaction::new(&self.table);
        let action = tx
            .fast_append()
            .set_snapshot_properties(coverage.to_summary(&self.topic))
            .add_data_files(files);
        let tx = action.apply(tx).map_err(iceberg_err)?;
        self.table = tx.commit(&self.catalog).await.map_err(iceberg_err)?;
        let store = self.storage.store();
        write_version_hint(store, &self.topic, &self.table).await
    }
}

/// The location of the newest `*.metadata.json` of the topic's table,
/// found by listing its metadata directory.
pub async fn latest_metadata(store: &RemoteStore, topic: &str) -> LakeResult<Option<String>> {
    let dir = store.key(&format!("{}/metadata", table_dir(topic)));
    let mut listing = store.store.list(Some(&dir));
    let mut best: Option<(i64, String)> = None;
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|source| LakeError::Store {
            op: "list",
            key: dir.to_string(),
            source,
        })?;
        let Some(name) = meta.location.filename() else {
            continue;
        };
        let Some(version) = name
            .strip_suffix(".metadata.json")
            .and_then(|n| n.split_once('-'))
            .and_then(|(v, _)| v.parse::<i64>().ok())
        else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _)| version > *b) {
            best = Some((version, meta.location.to_string()));
        }
    }
    let storage = ObjectStorage::new(store.clone());
    Ok(best.map(|(_, key)| {
        let relative = key
            .strip_prefix(store.prefix.as_ref())
            .map(|k| k.trim_start_matches('/'))
            .unwrap_or(&key);
        storage.location(relative)
    }))
}

/// Writes `metadata/version-hint.text`, the newest version's number, for
/// readers that find a table by its directory.
async fn write_version_hint(store: &RemoteStore, topic: &str, table: &Table) -> LakeResult<()> {
    let Some(location) = table.metadata_location() else {
        return Ok(());
    };
    let name = location.rsplit('/').next().unwrap_or_default();
    let version = name
        .split_once('-')
        .and_then(|(v, _)| v.parse::<i64>().ok())
        .unwrap_or(0);
    let key = store.key(&format!("{}/metadata/version-hint.text", table_dir(topic)));
    store
        .store
        .put(&key, version.to_string().into_bytes().into())
        .await
        .map_err(|source| LakeError::Store {
            op: "put",
            key: key.to_string(),
            source,
        })?;
    Ok(())
}

/// A table as readers see it: its newest metadata file and its snapshots,
/// oldest first, with what each covers.
#[derive(Clone, Debug)]
pub struct TableView {
    pub metadata_location: String,
    pub current_snapshot: Option<i64>,
    pub snapshots: Vec<Coverage>,
}

/// Reads the topic's table from the bucket; `None` when it has none.
pub async fn describe(store: &RemoteStore, topic: &str) -> LakeResult<Option<TableView>> {
    let Some(location) = latest_metadata(store, topic).await? else {
        return Ok(None);
    };
    let storage = ObjectStorage::new(store.clone());
    let metadata = iceberg::spec::TableMetadata::read_from(&storage.file_io(), &location)
        .await
        .map_err(|source| LakeError::Iceberg {
            table: topic.to_string(),
            source: Box::new(source),
        })?;
    let mut snapshots: Vec<Coverage> = metadata
        .snapshots()
        .filter_map(|s| {
            Coverage::from_summary(
                s.snapshot_id(),
                s.timestamp_ms(),
                &s.summary().additional_properties,
            )
        })
        .collect();
    snapshots.sort_by_key(|c| (c.committed_ms, c.snapshot_id));
    Ok(Some(TableView {
        metadata_location: location,
        current_snapshot: metadata.current_snapshot_id(),
        snapshots,
    }))
}
