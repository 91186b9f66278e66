use std::io;
use std::path::PathBuf;

use crate::batch::BatchError;
use crate::Offset;

pub type StorageResult<T> = Result<T, StorageError>;

/// Everything the local log can fail with. The broker turns these into Kafka
/// error codes; this crate never sees those.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt record batch at byte {position} of the request: {reason}")]
    CorruptBatch { position: usize, reason: BatchError },
    #[error("record batch of {size} bytes exceeds max.message.bytes={max}")]
    BatchTooLarge { size: usize, max: usize },
    #[error("timestamp {timestamp} is out of range: the timestamp should be within [{earliest}, {latest}] (message.timestamp.before.max.ms, message.timestamp.after.max.ms)")]
    InvalidTimestamp {
        timestamp: i64,
        earliest: i64,
        latest: i64,
    },
    #[error("Compacted topic cannot accept message without key in topic partition {partition}.")]
    KeylessRecord { partition: String },
    #[error("Clients are not allowed to write control records (batch at byte {position} of the request)")]
    ControlBatchFromClient { position: usize },
    #[error("record batch at byte {position} of the request could not be opened: {reason}")]
    UnreadableRecords { position: usize, reason: String },
    #[error("offset {requested} is outside the log [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        requested: Offset,
        log_start: Offset,
        log_end: Offset,
    },
    /// The log was closed by a shutdown or deleted with its topic.
    #[error("{0}")]
    Producer(#[from] crate::producer::ProducerError),
    #[error("the log in {path} is closed (broker shutting down or topic deleted)")]
    Closed { path: PathBuf },
    #[error("{dir} already holds segments: a log can only be created at an offset in an empty directory")]
    NotEmpty { dir: PathBuf },
}

impl StorageError {
    /// Whether the same operation may succeed if tried again later: I/O
    /// failures (a full disk, say) may pass; a bad batch, an offset outside
    /// the log or a refused producer will not until the request changes.
    pub fn is_retriable(&self) -> bool {
        matches!(self, StorageError::Io { .. })
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| StorageError::Io { op, path, source }
    }
}
