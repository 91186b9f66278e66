use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, RetryConfig};
use url::Url;

use crate::error::{TieringError, TieringResult};
use crate::quota::ByteQuota;

/// Retries inside one store request stay short (a few seconds): the
/// uploader and the readers have their own backoff and deadlines, and a
/// store that is down must show up as an error rather than a request that
/// hangs for minutes.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: Default::default(),
        max_retries: 2,
        retry_timeout: Duration::from_secs(5),
    }
}

/// An object store, the key prefix Strata writes under, the URL it was
/// opened from, and the broker's byte quotas on it. Cheap to clone; safe to
/// use from any number of tasks.
#[derive(Clone, Debug)]
pub struct RemoteStore {
    pub url: String,
    pub store: Arc<dyn ObjectStore>,
    pub prefix: ObjectPath,
    /// The store is a directory on this machine: reads of it are not worth
    /// caching on the same disks.
    pub local: bool,
    /// That directory, for uploads that link a sealed segment's file into
    /// it instead of copying its bytes.
    pub local_root: Option<PathBuf>,
    pub quotas: Arc<StoreQuotas>,
}

/// Kafka's quotas on the cold tier, shared by every clone of a store:
/// `remote.log.manager.copy.max.bytes.per.second` for uploads and
/// `remote.log.manager.fetch.max.bytes.per.second` for reads (unlimited
/// until the broker sets them).
#[derive(Debug)]
pub struct StoreQuotas {
    pub copy: ByteQuota,
    pub fetch: ByteQuota,
}

impl Default for StoreQuotas {
    fn default() -> Self {
        StoreQuotas {
            copy: ByteQuota::unlimited(),
            fetch: ByteQuota::unlimited(),
        }
    }
}

impl RemoteStore {
    /// Opens the store named by `url`: `file:///dir`, `s3://bucket/prefix`
    /// (configured by the usual `AWS_*` environment variables, including
    /// `AWS_ENDPOINT` and `AWS_ALLOW_HTTP` for S3-compatible servers),
    /// `gs://bucket/prefix` (`GOOGLE_*`) or `az://container/prefix`
    /// (`AZURE_*`). Nothing is contacted here; see [`RemoteStore::check`].
    pub fn open(url: &str) -> TieringResult<RemoteStore> {
        let bad = |reason: String| TieringError::BadUrl {
            url: url.into(),
            reason,
        };
        let parsed = Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let prefix = ObjectPath::from(parsed.path().trim_matches('/'));
        let bucket = parsed.host_str().unwrap_or_default().to_string();
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "file" => {
                let path = parsed
                    .to_file_path()
                    .map_err(|_| bad("not an absolute local path".into()))?;
                return Self::local(&path);
            }
            "s3" | "s3a" => Arc::new(
                AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .with_retry(retry())
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "gs" => Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&bucket)
                    .with_retry(retry())
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "az" | "azure" | "abfs" | "abfss" => Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .with_retry(retry())
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            scheme => {
                return Err(TieringError::UnsupportedScheme {
                    scheme: scheme.into(),
                })
            }
        };
        if bucket.is_empty() {
            return Err(bad("no bucket or container".into()));
        }
        Ok(RemoteStore {
            url: url.into(),
            store,
            prefix,
            local: false,
            local_root: None,
            quotas: Arc::default(),
        })
    }

    /// A local directory as the object store: the embedded default.
    pub fn local(dir: &Path) -> TieringResult<RemoteStore> {
        std::fs::create_dir_all(dir).map_err(|source| TieringError::LocalDir {
            path: dir.to_owned(),
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(TieringError::store(
            "open",
            &ObjectPath::from(dir.display().to_string()),
        ))?;
        let url = Url::from_directory_path(dir.canonicalize().unwrap_or_else(|_| dir.to_owned()))
            .map(|u| u.to_string())
            .unwrap_or_else(|_| dir.display().to_string());
        Ok(RemoteStore {
            url,
            store: Arc::new(store),
            prefix: ObjectPath::default(),
            local: true,
            local_root: Some(dir.to_owned()),
            quotas: Arc::default(),
        })
    }

    /// Where the object `key` lives on this machine's file system, for a
    /// local-directory store.
    pub fn local_file(&self, key: &ObjectPath) -> Option<PathBuf> {
        let root = self.local_root.as_ref()?;
        Some(
            key.parts()
                .fold(root.clone(), |p, part| p.join(part.as_ref())),
        )
    }

    /// The full key of `relative` under the store's prefix.
    pub fn key(&self, relative: &str) -> ObjectPath {
        if self.prefix.as_ref().is_empty() {
            ObjectPath::from(relative)
        } else {
            ObjectPath::from(format!("{}/{relative}", self.prefix))
        }
    }

    /// The object at `relative`, `None` when there is none.
    pub async fn get_bytes(&self, relative: &str) -> TieringResult<Option<bytes::Bytes>> {
        let key = self.key(relative);
        match self.store.get(&key).await {
            Ok(got) => Ok(Some(
                got.bytes()
                    .await
                    .map_err(TieringError::store("read", &key))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(TieringError::store_failed("read", key.to_string(), e)),
        }
    }

    /// Writes (or replaces) the object at `relative`.
    pub async fn put_bytes(&self, relative: &str, bytes: Vec<u8>) -> TieringResult<()> {
        let key = self.key(relative);
        self.store
            .put(&key, object_store::PutPayload::from(bytes))
            .await
            .map_err(TieringError::store("put", &key))?;
        Ok(())
    }

    /// Deletes every object under `relative` (a deleted topic's directory);
    /// returns how many. Listing is fine here: it is not a read path.
    pub async fn delete_all_under(&self, relative: &str) -> TieringResult<usize> {
        use futures::StreamExt;
        let prefix = self.key(relative);
        let mut listing = self.store.list(Some(&prefix));
        let mut deleted = 0;
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(TieringError::store("list", &prefix))?;
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                Err(e) => {
                    return Err(TieringError::store_failed(
                        "delete",
                        meta.location.to_string(),
                        e,
                    ))
                }
            }
        }
        Ok(deleted)
    }

    /// Checks that the store answers: one GET of a key that need not exist.
    pub async fn check(&self) -> TieringResult<()> {
        let probe = self.key("strata-probe");
        match self.store.get(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(TieringError::Store {
                op: "reach",
                key: probe.to_string(),
                source: e,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_urls_and_refuses_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/remote", dir.path().display());
        let store = RemoteStore::open(&url).unwrap();
        assert!(store.url.starts_with("file://"));
        assert!(dir.path().join("remote").is_dir());
        assert!(matches!(
            RemoteStore::open("ftp://x/y"),
            Err(TieringError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            RemoteStore::open("not a url"),
            Err(TieringError::BadUrl { .. })
        ));
        let s3 = RemoteStore::open("s3://bucket/some/prefix").unwrap();
        assert_eq!(s3.key("a/b").as_ref(), "some/prefix/a/b");
    }
}
