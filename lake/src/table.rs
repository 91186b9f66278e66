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

    /// Where a reader that read the table at this coverage goes on in the
    /// stream's partition `p`, whose log starts at `log_start`: the end
    /// offset, or the log start for a partition the table holds nothing of
    /// (or whose start retention has passed).
    pub fn resume_at(&self, p: i32, log_start: i64) -> i64 {
        self.end_offsets
            .get(&p)
            .copied()
            .unwrap_or(log_start)
            .max(log_start)
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
        let granularity = self.fixed_granularity();
        LakeConfig {
            columns,
            granularity,
            ..config.clone()
        }
    }

    /// The event-time partitions' width this table was created with.
    fn fixed_granularity(&self) -> Granularity {
        match self
            .table
            .metadata()
            .default_partition_spec()
            .fields()
            .first()
            .map(|f| f.transform)
        {
            Some(Transform::Day) => Granularity::Day,
            _ => Granularity::Hour,
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
    match table.metadata_location() {
        Some(location) => write_version_hint_at(store, topic, location).await,
        None => Ok(()),
    }
}

/// As [`write_version_hint`], for the metadata file at `location`.
async fn write_version_hint_at(store: &RemoteStore, topic: &str, location: &str) -> LakeResult<()> {
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

impl LakeTable {
    /// Drops the rows of event-time partitions that ended before
    /// `cutoff_ms` (`lake.retention.ms`): commits a `delete` snapshot whose
    /// manifests mark those files deleted, keeping the newest coverage in
    /// its summary, then expires the older snapshots and deletes the files
    /// no remaining snapshot references. Returns how many files went.
    ///
    /// The `iceberg` crate has no delete action yet, so the snapshot is
    /// assembled here from its manifest and manifest-list writers and
    /// committed as the next metadata file (a conditional PUT, as every
    /// commit). After it the table must be opened again.
    pub async fn expire_before(&mut self, cutoff_ms: i64, now_ms: i64) -> LakeResult<usize> {
        use iceberg::spec::{
            FormatVersion, ManifestList, ManifestListWriter, ManifestWriterBuilder, Operation,
            Snapshot, Summary, TableMetadataBuilder, MAIN_BRANCH,
        };
        use std::str::FromStr;
        let table_name = self.topic.clone();
        let err = |source: iceberg::Error| LakeError::Iceberg {
            table: table_name.clone(),
            source: Box::new(source),
        };
        let metadata = self.table.metadata_ref();
        let Some(current) = metadata.current_snapshot().cloned() else {
            return Ok(0);
        };
        let coverage = self.coverage()?;
        let granularity = self.fixed_granularity();
        // A partition expires once its whole width is older than the cutoff.
        let expired_bucket = |b: i32| (b as i64 + 1) * granularity.millis() <= cutoff_ms;
        let file_io = self.storage.file_io();
        let list_bytes = file_io
            .new_input(current.manifest_list())
            .map_err(err)?
            .read()
            .await
            .map_err(err)?;
        let list = ManifestList::parse_with_version(&list_bytes, FormatVersion::V2).map_err(err)?;
        let schema = metadata.current_schema().clone();
        let spec = metadata.default_partition_spec().as_ref().clone();
        let snapshot_id = (uuid::Uuid::new_v4().as_u64_pair().0 >> 1) as i64;
        let sequence = metadata.next_sequence_number();
        let dir = format!("{}/metadata", metadata.location().trim_end_matches('/'));
        let mut manifests = Vec::new();
        let mut gone: Vec<String> = Vec::new();
        let mut gone_records = 0u64;
        for (n, mf) in list.entries().iter().enumerate() {
            let manifest = mf.load_manifest(&file_io).await.map_err(err)?;
            let alive: Vec<_> = manifest
                .entries()
                .iter()
                .filter(|e| e.is_alive())
                .cloned()
                .collect();
            let is_expired = |e: &iceberg::spec::ManifestEntryRef| match e
                .data_file()
                .partition()
                .fields()
                .first()
            {
                Some(Some(iceberg::spec::Literal::Primitive(
                    iceberg::spec::PrimitiveLiteral::Int(b),
                ))) => expired_bucket(*b),
                _ => false,
            };
            if !alive.iter().any(is_expired) {
                manifests.push(mf.clone());
                continue;
            }
            let out = file_io
                .new_output(format!("{dir}/{}-m{n}.avro", uuid::Uuid::new_v4()))
                .map_err(err)?;
            let mut w =
                ManifestWriterBuilder::new(out, Some(snapshot_id), schema.clone(), spec.clone())
                    .build_v2_data();
            for e in alive {
                let seq = e.sequence_number().unwrap_or(0);
                if is_expired(&e) {
                    gone.push(e.data_file().file_path().to_string());
                    gone_records += e.data_file().record_count();
                    w.add_delete_file(e.data_file().clone(), seq, e.file_sequence_number)
                        .map_err(err)?;
                } else {
                    w.add_existing_file(
                        e.data_file().clone(),
                        e.snapshot_id().unwrap_or(current.snapshot_id()),
                        seq,
                        e.file_sequence_number,
                    )
                    .map_err(err)?;
                }
            }
            manifests.push(w.write_manifest_file().await.map_err(err)?);
        }
        if gone.is_empty() {
            return Ok(0);
        }
        let list_location = format!("{dir}/snap-{snapshot_id}-0-{}.avro", uuid::Uuid::new_v4());
        let writer = file_io
            .new_output(&list_location)
            .map_err(err)?
            .writer()
            .await
            .map_err(err)?;
        let mut lw =
            ManifestListWriter::v2(writer, snapshot_id, Some(current.snapshot_id()), sequence);
        lw.add_manifests(manifests.into_iter()).map_err(err)?;
        lw.close().await.map_err(err)?;
        let mut props = coverage.to_summary(&self.topic);
        props.insert("deleted-data-files".into(), gone.len().to_string());
        props.insert("deleted-records".into(), gone_records.to_string());
        let snapshot = Snapshot::builder()
            .with_snapshot_id(snapshot_id)
            .with_parent_snapshot_id(Some(current.snapshot_id()))
            .with_sequence_number(sequence)
            .with_timestamp_ms(now_ms)
            .with_manifest_list(list_location)
            .with_summary(Summary {
                operation: Operation::Delete,
                additional_properties: props,
            })
            .with_schema_id(metadata.current_schema_id())
            .build();
        let location = self
            .table
            .metadata_location()
            .ok_or_else(|| {
                err(iceberg::Error::new(
                    iceberg::ErrorKind::Unexpected,
                    "no metadata location",
                ))
            })?
            .to_string();
        // The older snapshots go with this commit: they reference the
        // expired files, which are deleted below.
        let older: Vec<i64> = metadata.snapshots().map(|s| s.snapshot_id()).collect();
        let next = TableMetadataBuilder::new_from_metadata(
            metadata.as_ref().clone(),
            Some(location.clone()),
        )
        .set_branch_snapshot(snapshot, MAIN_BRANCH)
        .map_err(err)?
        .remove_snapshots(&older)
        .build()
        .map_err(err)?
        .metadata;
        let next_location = iceberg::MetadataLocation::from_str(&location)
            .map_err(err)?
            .with_next_version();
        next.write_to(&file_io, &next_location).await.map_err(err)?;
        write_version_hint_at(
            self.storage.store(),
            &self.topic,
            &next_location.to_string(),
        )
        .await?;
        for path in &gone {
            file_io.delete(path).await.map_err(err)?;
        }
        metrics::counter!("strata_lake_expired_files_total", "topic" => self.topic.clone())
            .increment(gone.len() as u64);
        tracing::info!(topic = %self.topic, files = gone.len(), records = gone_records,
            "lake partitions past lake.retention.ms dropped");
        Ok(gone.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_round_trips_through_a_summary() {
        let c = Coverage {
            snapshot_id: Some(7),
            committed_ms: Some(1000),
            end_offsets: BTreeMap::from([(0, 10), (3, 42)]),
            watermarks: BTreeMap::from([(0, 5_000), (3, 6_000)]),
        };
        let summary = c.to_summary("clicks");
        assert_eq!(
            summary
                .get("strata.partition.3.end-offset")
                .map(String::as_str),
            Some("42")
        );
        assert_eq!(Coverage::from_summary(7, 1000, &summary), Some(c));
        // A snapshot another writer committed is not Strata's.
        assert_eq!(Coverage::from_summary(8, 1, &HashMap::new()), None);
    }
}
