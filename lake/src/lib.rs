//! Strata's lake view: each topic with `lake.enable=true` is translated,
//! off the produce path, from its uploaded segments into an Apache Iceberg
//! table (format v2) of Parquet files in the cold tier's bucket, under
//! `lake/<topic>/`, partitioned by event time. Every snapshot's summary
//! records the stream offsets it ends at, so that a reader can switch from
//! the table to the stream without losing or repeating a record.
//!
//! The layout is documented in FORMAT.md.

mod columns;
pub mod config;
mod error;
mod files;
mod object_io;
pub mod rows;
mod table;
mod translator;

pub use config::{LakeConfig, KEYS};
pub use error::{LakeError, LakeResult};
pub use object_io::ObjectStorage;
pub use table::{
    describe, end_offset_key, latest_metadata, table_dir, watermark_key, Coverage, LakeTable,
    TableView,
};
pub use translator::{Pass, Source, Translator};
