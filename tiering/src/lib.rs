//! Strata's cold tier. For now this crate opens the object store that sealed
//! segments will be uploaded to; uploads, remote manifests, remote reads and
//! the read cache come with the tiered-storage work (see ARCHITECTURE.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use url::Url;

/// What opening or using a remote store can fail with. `retriable` says
/// whether trying again later can help.
#[derive(Debug, thiserror::Error)]
pub enum TieringError {
    #[error("invalid remote storage URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("remote storage scheme {scheme:?} is not supported yet (use file://)")]
    UnsupportedScheme { scheme: String },
    #[error("cannot open the local remote-storage directory {path}: {source}")]
    LocalDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("object store: {source}")]
    Store {
        source: object_store::Error,
        retriable: bool,
    },
}

impl TieringError {
    /// Whether the same operation may succeed if retried later.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            TieringError::Store {
                retriable: true,
                ..
            }
        )
    }
}

/// An object store and the URL it was opened from. Cheap to clone and safe
/// to use from any number of tasks at once.
#[derive(Clone, Debug)]
pub struct RemoteStore {
    pub url: String,
    pub store: Arc<dyn ObjectStore>,
}

impl RemoteStore {
    /// Opens the store named by `url`. Only `file://` directories for now.
    pub fn open(url: &str) -> Result<RemoteStore, TieringError> {
        let parsed = Url::parse(url).map_err(|e| TieringError::BadUrl {
            url: url.into(),
            reason: e.to_string(),
        })?;
        match parsed.scheme() {
            "file" => {
                let path = parsed.to_file_path().map_err(|_| TieringError::BadUrl {
                    url: url.into(),
                    reason: "not an absolute local path".into(),
                })?;
                Self::local(&path)
            }
            scheme => Err(TieringError::UnsupportedScheme {
                scheme: scheme.into(),
            }),
        }
    }

    /// A local directory as the object store: the embedded default.
    pub fn local(dir: &Path) -> Result<RemoteStore, TieringError> {
        std::fs::create_dir_all(dir).map_err(|source| TieringError::LocalDir {
            path: dir.to_owned(),
            source,
        })?;
        let store =
            LocalFileSystem::new_with_prefix(dir).map_err(|source| TieringError::Store {
                source,
                retriable: false,
            })?;
        let url = Url::from_directory_path(dir.canonicalize().unwrap_or_else(|_| dir.to_owned()))
            .map(|u| u.to_string())
            .unwrap_or_else(|_| dir.display().to_string());
        Ok(RemoteStore {
            url,
            store: Arc::new(store),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_file_urls_and_refuses_others() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/remote", dir.path().display());
        let store = RemoteStore::open(&url).unwrap();
        assert!(store.url.starts_with("file://"));
        assert!(dir.path().join("remote").is_dir());
        assert!(matches!(
            RemoteStore::open("s3://bucket/x"),
            Err(TieringError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            RemoteStore::open("not a url"),
            Err(TieringError::BadUrl { .. })
        ));
    }
}
