//! A commit's rows written as Parquet data files: one file (or more, at
//! the target size) per event-time partition, rows sorted by event time,
//! under Hive-style directories such as `data/event_time_hour=2026-12-01-10/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use iceberg::arrow::schema_to_arrow_schema;
use iceberg::spec::{DataFile, DataFileFormat, Literal, PartitionKey, Struct};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, LocationGenerator,
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
    let iceberg_err = |source: iceberg::Error| LakeError::Iceberg {
        table: name.clone(),
        source: Box::new(source),
    };
    let metadata = table.table().metadata();
    let schema = metadata.current_schema().clone();
    let spec = metadata.default_partition_spec().as_ref().clone();
    let arrow = Arc::new(schema_to_arrow_schema(&schema).map_err(iceberg_err)?);
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let data_dir = format!("{}/data", metadata.location().trim_end_matches('/'));
    let names = DefaultFileNameGenerator::new(commit_id.to_string(), None, DataFileFormat::Parquet);
    let mut files = Vec::new();
    for (bucket, rows) in by_partition(rows, config.granularity) {
        let key = PartitionKey::new(
            spec.clone(),
            schema.clone(),
            Struct::from_iter([Some(Literal::int(bucket))]),
        );
        let rolling = RollingFileWriterBuilder::new(
            ParquetWriterBuilder::new(props.clone(), schema.clone()),
            TARGET_FILE_BYTES,
            table.storage().file_io(),
            PartitionDir(format!(
                "{data_dir}/{}={}",
                config.granularity.field_name(),
                human(config.granularity, bucket)
            )),
            names.clone(),
        );
        let builder = DataFileWriterBuilder::new(rolling);
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

/// Files of one event-time partition go to its Hive-style directory, named
/// with Iceberg's human form of the partition value (`2026-12-01-10` for an
/// hour, `2026-12-01` for a day), as Java Iceberg and Spark name them.
#[derive(Clone, Debug)]
struct PartitionDir(String);

impl LocationGenerator for PartitionDir {
    fn generate_location(&self, _: Option<&PartitionKey>, file_name: &str) -> String {
        format!("{}/{file_name}", self.0)
    }
}

/// Iceberg's human string of an hour or day transform's value.
fn human(g: Granularity, bucket: i32) -> String {
    let start =
        chrono::DateTime::from_timestamp_millis(bucket as i64 * g.millis()).unwrap_or_default();
    match g {
        Granularity::Hour => start.format("%Y-%m-%d-%H").to_string(),
        Granularity::Day => start.format("%Y-%m-%d").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_directories_use_iceberg_human_values() {
        assert_eq!(human(Granularity::Hour, 0), "1970-01-01-00");
        assert_eq!(human(Granularity::Hour, 498_888), "2026-11-30-00");
        assert_eq!(human(Granularity::Day, 20_787), "2026-11-30");
        assert_eq!(human(Granularity::Hour, -1), "1969-12-31-23");
    }
}
