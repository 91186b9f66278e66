//! A commit's rows written as Parquet data files: one file (or more, at
//! the target size) per event-time partition, rows sorted by event time,
//! under Hive-style directories such as `data/event_time_hour=2026-12-01-10/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use iceberg::arrow::schema_to_arrow_schema;
use iceberg::spec::{DataFile, DataFileFormat, Literal, PartitionKey, Struct};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::columns::record_batch;
use crate::config::{Granularity, LakeConfig};
use crate::error::{LakeError, LakeResult};
use crate::rows::Row;
use crate::table::LakeTable;

/// A data file is rolled over at this size.
const TARGET_FILE_BYTES: usize = 256 << 20;

/// Rows handed to the Parquet writer at a time.
const ROWS_PER_BATCH: usize = 32 * 1024;

/// Groups rows by event-time partition and sorts each group by event
/// time, then partition and offset (so that equal times keep stream order).
pub fn by_partition(rows: Vec<Row>, g: Granularity) -> BTreeMap<i32, Vec<Row>> {
    let mut out: BTreeMap<i32, Vec<Row>> = BTreeMap::new();
    for r in rows {
        out.entry(g.bucket(r.event_time)).or_default().push(r);
    }
    for rows in out.values_mut() {
        rows.sort_by_key(|r| (r.event_time, r.partition, r.offset));
    }
    out
}

/// Writes `rows` as data files of `table`, named after `commit_id`;
/// returns them for the commit. Nothing references them until it lands.
/// `config` is the table's own (see [`LakeTable::fixed`]): its columns and
/// partitions are those the table was created with.
pub async fn write(
    table: &LakeTable,
    config: &LakeConfig,
    rows: Vec<Row>,
    commit_id: uuid::Uuid,
) -> LakeResult<Vec<DataFile>> {
    let name = table.table().identifier().name().to_string();
    let iceberg_err = |source| LakeError::Iceberg {
        table: name.clone(),
        source,
    };
    let metadata = table.table().metadata();
    let schema = metadata.current_schema().clone();
    let spec = metadata.default_partition_spec().as_ref().clone();
    let arrow = Arc::new(schema_to_arrow_schema(&schema).map_err(iceberg_err)?);
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let rolling = RollingFileWriterBuilder::new(
        ParquetWriterBuilder::new(props, schema.clone()),
        TARGET_FILE_BYTES,
        table.storage().file_io(),
        DefaultLocationGenerator::new(metadata).map_err(iceberg_err)?,
        DefaultFileNameGenerator::new(commit_id.to_string(), None, DataFileFormat::Parquet),
    );
    let builder = DataFileWriterBuilder::new(rolling);
    let mut files = Vec::new();
    for (bucket, rows) in by_partition(rows, config.granularity) {
        let key = PartitionKey::new(
            spec.clone(),
            schema.clone(),
            Struct::from_iter([Some(Literal::int(bucket))]),
        );
        let mut writer = builder.build(Some(key)).await.map_err(iceberg_err)?;
        for chunk in rows.chunks(ROWS_PER_BATCH) {
            let batch = record_batch(&arrow, &config.columns, chunk).map_err(|source| {
                LakeError::Arrow {
                    table: name.clone(),
                    source,
                }
            })?;
            writer.write(batch).await.map_err(iceberg_err)?;
        }
        files.extend(writer.close().await.map_err(iceberg_err)?);
    }
    Ok(files)
}
