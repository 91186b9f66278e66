use std::path::PathBuf;

pub type TieringResult<T> = Result<T, TieringError>;

/// What the cold tier can fail with. [`TieringError::is_retriable`] says
/// whether trying the same operation again later can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TieringError {
    #[error("invalid remote storage URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "remote storage scheme {scheme:?} is not supported (use file://, s3://, gs:// or az://)"
    )]
    UnsupportedScheme { scheme: String },
    #[error("cannot use the local directory {path}: {source}")]
    LocalDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("object store {op} {key}: {source}")]
    Store {
        op: &'static str,
        key: String,
        source: object_store::Error,
    },
    #[error("remote manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("local storage: {0}")]
    Storage(#[from] strata_storage::StorageError),
    #[error("remote segment {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("download of {key} failed: {reason}")]
    Download { key: String, reason: String },
    /// Another broker wrote the catalogue generation this broker meant to
    /// write: two brokers are using one bucket.
    #[error("{key} was already written by broker instance {holder}: another broker is using this bucket, so this one no longer writes its catalogue")]
    Fenced { key: String, holder: String },
}

impl TieringError {
    pub(crate) fn store(
        op: &'static str,
        key: &object_store::path::Path,
    ) -> impl FnOnce(object_store::Error) -> Self {
        let key = key.to_string();
        move |source| TieringError::store_failed(op, key, source)
    }

    /// A failed object-store request, counted in
    /// `strata_object_store_errors_total` by operation.
    pub(crate) fn store_failed(op: &'static str, key: String, source: object_store::Error) -> Self {
        metrics::counter!("strata_object_store_errors_total", "op" => op).increment(1);
        TieringError::Store { op, key, source }
    }

    /// Whether the same operation may succeed if retried later: store
    /// outages and timeouts may pass; a bad URL or a corrupt object will not.
    /// Whether the store refused the request for its rate (S3's
    /// `503 SlowDown`, HTTP 429 elsewhere) after the client's own retries:
    /// waiting longer and sending fewer requests helps.
    pub fn is_throttled(&self) -> bool {
        let source: &(dyn std::error::Error + 'static) = match self {
            TieringError::Store { source, .. } => source,
            _ => return false,
        };
        // object_store does not export its HTTP error type, so the status
        // and S3's error code are looked for in the error chain's messages.
        let mut next = Some(source);
        while let Some(e) = next {
            let text = e.to_string();
            if text.contains("SlowDown")
                || text.contains("503 Service Unavailable")
                || text.contains("429 Too Many Requests")
            {
                return true;
            }
            next = e.source();
        }
        false
    }

    pub fn is_retriable(&self) -> bool {
        match self {
            TieringError::Store { source, .. } => !matches!(
                source,
                object_store::Error::NotFound { .. }
                    | object_store::Error::InvalidPath { .. }
                    | object_store::Error::NotSupported { .. }
                    | object_store::Error::NotImplemented { .. }
                    | object_store::Error::UnknownConfigurationKey { .. }
            ),
            TieringError::Download { .. } => true,
            TieringError::Storage(e) => e.is_retriable(),
            TieringError::LocalDir { .. } | TieringError::Manifest { .. } => true,
            _ => false,
        }
    }
}
