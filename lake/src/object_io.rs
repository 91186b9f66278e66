//! Iceberg's file I/O over the broker's own object store, so that the
//! table's data and metadata go to the cold tier's bucket through the same
//! `object_store` client, credentials and retries as segments do.
//!
//! Paths are absolute URLs under the store's URL (`s3://bucket/prefix/...`,
//! `file:///dir/...`), as Iceberg's metadata records them for readers.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use iceberg::io::{
    FileIO, FileIOBuilder, FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage,
    StorageConfig, StorageFactory,
};
use iceberg::{Error, ErrorKind};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use strata_tiering::RemoteStore;

/// The cold tier's store as Iceberg storage. Cheap to clone; any number of
/// tasks may use it at once.
#[derive(Clone, Debug)]
pub struct ObjectStorage {
    store: RemoteStore,
    /// The store's URL without its trailing slash.
    root: String,
}

impl ObjectStorage {
    pub fn new(store: RemoteStore) -> ObjectStorage {
        let root = store.url.trim_end_matches('/').to_string();
        ObjectStorage { store, root }
    }

    /// The absolute location of `relative` (a key under the store's prefix).
    pub fn location(&self, relative: &str) -> String {
        format!("{}/{}", self.root, relative.trim_start_matches('/'))
    }

    /// A FileIO that reads and writes through this store.
    pub fn file_io(&self) -> FileIO {
        FileIOBuilder::new(self.factory()).build()
    }

    /// A storage factory that always answers with this store.
    pub fn factory(&self) -> Arc<dyn StorageFactory> {
        Arc::new(ObjectStorageFactory(self.clone()))
    }

    /// The cold tier's store.
    pub fn store(&self) -> &RemoteStore {
        &self.store
    }

    /// The object key of an absolute location under the store's URL.
    fn key(&self, path: &str) -> iceberg::Result<ObjectPath> {
        let relative = path
            .strip_prefix(&self.root)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::DataInvalid,
                    format!("{path} is not under the cold tier's store {}", self.root),
                )
            })?;
        Ok(self.store.key(relative))
    }
}

fn store_error(op: &str, path: &str, e: object_store::Error) -> Error {
    let kind = match e {
        object_store::Error::NotFound { .. } => ErrorKind::DataInvalid,
        object_store::Error::AlreadyExists { .. } => ErrorKind::CatalogCommitConflicts,
        _ => ErrorKind::Unexpected,
    };
    Error::new(kind, format!("object store {op} {path}")).with_source(e)
}

/// Counts a PUT to the lake, for the PUTs-per-GB figure.
fn count_put(bytes: usize) {
    metrics::counter!("strata_lake_puts_total").increment(1);
    metrics::counter!("strata_lake_put_bytes_total").increment(bytes as u64);
}

impl Serialize for ObjectStorage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.root)
    }
}

impl<'de> Deserialize<'de> for ObjectStorage {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        // The store's client and credentials live in the broker's process;
        // Iceberg only serialises storage to ship it to other processes,
        // which Strata never does.
        Err(serde::de::Error::custom(
            "Strata's object storage cannot be deserialised",
        ))
    }
}

#[async_trait]
#[typetag::serde]
impl Storage for ObjectStorage {
    async fn exists(&self, path: &str) -> iceberg::Result<bool> {
        let key = self.key(path)?;
        match self.store.store.head(&key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error("head", path, e)),
        }
    }

    async fn metadata(&self, path: &str) -> iceberg::Result<FileMetadata> {
        let key = self.key(path)?;
        let meta = self
            .store
            .store
            .head(&key)
            .await
            .map_err(|e| store_error("head", path, e))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> iceberg::Result<Bytes> {
        let key = self.key(path)?;
        let got = self
            .store
            .store
            .get(&key)
            .await
            .map_err(|e| store_error("get", path, e))?;
        got.bytes().await.map_err(|e| store_error("get", path, e))
    }

    async fn reader(&self, path: &str) -> iceberg::Result<Box<dyn FileRead>> {
        Ok(Box::new(ObjectRead {
            storage: self.clone(),
            path: path.to_string(),
        }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> iceberg::Result<()> {
        let key = self.key(path)?;
        // A table version is committed by creating its metadata file: the
        // store refuses a second writer of the same version.
        let mode = if path.ends_with(".metadata.json") {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        count_put(bs.len());
        self.store
            .store
            .put_opts(&key, PutPayload::from(bs), PutOptions::from(mode))
            .await
            .map_err(|e| store_error("put", path, e))?;
        Ok(())
    }

    async fn writer(&self, path: &str) -> iceberg::Result<Box<dyn FileWrite>> {
        Ok(Box::new(ObjectWrite {
            storage: self.clone(),
            path: path.to_string(),
            parts: Vec::new(),
            closed: false,
        }))
    }

    async fn delete(&self, path: &str) -> iceberg::Result<()> {
        let key = self.key(path)?;
        match self.store.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error("delete", path, e)),
        }
    }

    async fn delete_prefix(&self, path: &str) -> iceberg::Result<()> {
        let key = self.key(path)?;
        let mut listing = self.store.store.list(Some(&key));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| store_error("list", path, e))?;
            match self.store.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error("delete", path, e)),
            }
        }
        Ok(())
    }

    async fn delete_stream(&self, mut paths: BoxStream<'static, String>) -> iceberg::Result<()> {
        while let Some(p) = paths.next().await {
            self.delete(&p).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> iceberg::Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_string()))
    }

    fn new_output(&self, path: &str) -> iceberg::Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_string()))
    }
}

/// Ranged reads of one object.
#[derive(Debug)]
struct ObjectRead {
    storage: ObjectStorage,
    path: String,
}

#[async_trait]
impl FileRead for ObjectRead {
    async fn read(&self, range: Range<u64>) -> iceberg::Result<Bytes> {
        let key = self.storage.key(&self.path)?;
        self.storage
            .store
            .store
            .get_range(&key, range)
            .await
            .map_err(|e| store_error("get", &self.path, e))
    }
}

/// A file written in one PUT when it is closed. The lake's files are
/// bounded (a commit's rows of one event-time partition, rolled at the
/// target file size), so holding one in memory is bounded too.
#[derive(Debug)]
struct ObjectWrite {
    storage: ObjectStorage,
    path: String,
    parts: Vec<Bytes>,
    closed: bool,
}

#[async_trait]
impl FileWrite for ObjectWrite {
    async fn write(&mut self, bs: Bytes) -> iceberg::Result<()> {
        if self.closed {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!("{} is closed", self.path),
            ));
        }
        self.parts.push(bs);
        Ok(())
    }

    async fn close(&mut self) -> iceberg::Result<()> {
        if self.closed {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!("{} is closed", self.path),
            ));
        }
        self.closed = true;
        let key = self.storage.key(&self.path)?;
        let len: usize = self.parts.iter().map(Bytes::len).sum();
        count_put(len);
        let payload: PutPayload = std::mem::take(&mut self.parts).into_iter().collect();
        self.storage
            .store
            .store
            .put(&key, payload)
            .await
            .map_err(|e| store_error("put", &self.path, e))?;
        Ok(())
    }
}

/// Hands Iceberg the one storage this broker has, whatever its config says.
#[derive(Debug)]
struct ObjectStorageFactory(ObjectStorage);

impl Serialize for ObjectStorageFactory {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ObjectStorageFactory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ObjectStorage::deserialize(d).map(ObjectStorageFactory)
    }
}

#[typetag::serde]
impl StorageFactory for ObjectStorageFactory {
    fn build(&self, _: &StorageConfig) -> iceberg::Result<Arc<dyn Storage>> {
        Ok(Arc::new(self.0.clone()))
    }
}
