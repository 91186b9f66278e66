pub type LakeResult<T> = Result<T, LakeError>;

/// What translating a topic into its lake table can fail with.
/// [`LakeError::is_retriable`] says whether the next pass may succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LakeError {
    /// A `lake.*` topic config that cannot be used.
    #[error("{key}: {reason}")]
    Config { key: String, reason: String },
    /// Reading the topic's history from the cold tier failed.
    #[error("reading {topic}-{partition} from the cold tier: {source}")]
    Tiering {
        topic: String,
        partition: i32,
        source: Box<strata_tiering::TieringError>,
    },
    /// A request to the object store failed.
    #[error("object store {op} {key}: {source}")]
    Store {
        op: &'static str,
        key: String,
        source: object_store::Error,
    },
    /// A stored segment holds bytes that are not record batches.
    #[error("{topic}-{partition} segment at offset {base_offset}: {reason}")]
    Corrupt {
        topic: String,
        partition: i32,
        base_offset: i64,
        reason: String,
    },
    /// The Iceberg library refused an operation on the table.
    #[error("Iceberg table {table}: {source}")]
    Iceberg {
        table: String,
        source: Box<iceberg::Error>,
    },
    /// Building the rows of a Parquet file failed.
    #[error("Arrow batch for {table}: {source}")]
    Arrow {
        table: String,
        source: arrow_schema::ArrowError,
    },
    /// The table's newest snapshot does not carry Strata's summary (another
    /// writer committed to it), so its end offsets are unknown.
    #[error("Iceberg table {table}: snapshot {snapshot} has no strata.* summary; it was not written by Strata")]
    ForeignSnapshot { table: String, snapshot: i64 },
}

impl LakeError {
    /// Whether the same pass may succeed later: store outages pass; a bad
    /// config, a corrupt segment or a foreign table does not until someone
    /// changes something.
    pub fn is_retriable(&self) -> bool {
        match self {
            LakeError::Config { .. }
            | LakeError::Corrupt { .. }
            | LakeError::ForeignSnapshot { .. } => false,
            LakeError::Tiering { source, .. } => source.is_retriable(),
            LakeError::Store { .. } | LakeError::Iceberg { .. } | LakeError::Arrow { .. } => true,
        }
    }
}
