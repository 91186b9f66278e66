//! Uploads of a partition's sealed segments to the cold tier, in the
//! crash-safe order the manifest records: copy started, objects written,
//! copy finished. A copy a crash interrupted is cleaned up and done again.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use strata_storage::{Log, Offset, SealedSegment, SegmentFile};
use tracing::{debug, info};
use uuid::Uuid;

use crate::error::{TieringError, TieringResult};
use crate::manifest::{SegmentEntry, SegmentState};
use crate::remote_partition::RemotePartition;

/// Segments larger than this are uploaded in parts of this size.
const MULTIPART_PART: usize = 8 * 1024 * 1024;

impl RemotePartition {
    /// Deletes the objects of copies or deletions a crash interrupted and
    /// drops their entries, so that the segments are uploaded afresh.
    async fn clean_up_unfinished(&self) -> TieringResult<()> {
        let unfinished: Vec<SegmentEntry> = self
            .snapshot()
            .segments
            .into_iter()
            .filter(|s| s.state != SegmentState::CopyFinished)
            .collect();
        for entry in unfinished {
            self.delete_objects(&entry).await?;
            let id = entry.id;
            self.record(|m| m.segments.retain(|s| s.id != id)).await?;
            info!(partition = %self.key.dir(), base_offset = entry.base_offset.0, state = ?entry.state, "cleaned up an interrupted remote copy or deletion");
        }
        Ok(())
    }

    /// Uploads every sealed local segment not yet in the store, oldest
    /// first; returns how many. After a failure it backs off (exponentially,
    /// up to 30 s) and returns the error; the next call resumes.
    pub async fn upload_pending(&self, log: &Arc<Log>) -> TieringResult<usize> {
        if self.backing_off() {
            return Ok(0);
        }
        let result = self.upload_pending_now(log).await;
        self.note_outcome("upload", &result);
        self.mirror().await;
        result
    }

    async fn upload_pending_now(&self, log: &Arc<Log>) -> TieringResult<usize> {
        let _writer = self.writer.lock().await;
        self.clean_up_unfinished().await?;
        let l = Arc::clone(log);
        let sealed = tokio::task::spawn_blocking(move || l.sealed_segments())
            .await
            .expect("no panic")?;
        let mut uploaded = 0;
        for segment in sealed {
            let done = self.uploaded_end().unwrap_or(Offset(i64::MIN));
            if segment.size == 0 || segment.next_offset <= done {
                continue;
            }
            self.upload(segment).await?;
            uploaded += 1;
        }
        Ok(uploaded)
    }

    /// The crash-safe copy of one segment: record it as started, upload the
    /// log and its indexes, record it as finished.
    async fn upload(&self, segment: SealedSegment) -> TieringResult<()> {
        let started_at = Instant::now();
        let entry = SegmentEntry {
            id: Uuid::new_v4(),
            base_offset: segment.base_offset,
            next_offset: segment.next_offset,
            size: segment.size,
            max_timestamp: segment.max_timestamp,
            state: SegmentState::CopyStarted,
            txn_index: !segment.aborted.is_empty(),
        };
        let started = entry.clone();
        self.record(|m| m.segments.push(started)).await?;

        let log_key = self.object(&entry, SegmentFile::Log);
        // Every byte sent goes through the copy quota first
        // (remote.log.manager.copy.max.bytes.per.second).
        let quota = &self.store.quotas.copy;
        // A local-directory store on the same file system gets the sealed
        // file, which never changes again, under a second name: no byte is
        // copied (a copy would leave a segment's worth of dirty pages for the
        // disk to write beside the appends).
        let linked = match self.store.local_file(&log_key) {
            Some(dest) => link(segment.log_path.clone(), dest).await,
            None => false,
        };
        if linked {
            metrics::counter!("strata_remote_upload_linked_segments_total").increment(1);
        } else if segment.size as usize <= MULTIPART_PART {
            quota.take(segment.size).await;
            let bytes = read_file_range(&segment.file, 0, segment.size as usize).await?;
            self.store
                .store
                .put(&log_key, PutPayload::from(bytes))
                .await
                .map_err(TieringError::store("upload", &log_key))?;
        } else {
            let upload = self
                .store
                .store
                .put_multipart(&log_key)
                .await
                .map_err(TieringError::store("upload", &log_key))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART);
            let mut pos = 0u64;
            while pos < segment.size {
                let len = (segment.size - pos).min(MULTIPART_PART as u64) as usize;
                quota.take(len as u64).await;
                let part = read_file_range(&segment.file, pos, len).await?;
                writer
                    .wait_for_capacity(2)
                    .await
                    .map_err(TieringError::store("upload", &log_key))?;
                writer.put(part);
                pos += len as u64;
            }
            writer
                .finish()
                .await
                .map_err(TieringError::store("upload", &log_key))?;
        }
        for (kind, path) in [
            (SegmentFile::OffsetIndex, &segment.index_path),
            (SegmentFile::TimeIndex, &segment.time_index_path),
        ] {
            let key = self.object(&entry, kind);
            let p = path.clone();
            let bytes = tokio::task::spawn_blocking(move || std::fs::read(&p))
                .await
                .expect("no panic")
                .map_err(|e| {
                    TieringError::Storage(strata_storage::StorageError::Io {
                        op: "read index",
                        path: path.clone(),
                        source: e,
                    })
                })?;
            quota.take(bytes.len() as u64).await;
            self.store
                .store
                .put(&key, PutPayload::from(bytes))
                .await
                .map_err(TieringError::store("upload", &key))?;
        }
        if entry.txn_index {
            let key = self.object(&entry, SegmentFile::TxnIndex);
            let bytes: Vec<u8> = segment.aborted.iter().flat_map(|a| a.to_bytes()).collect();
            self.store
                .store
                .put(&key, PutPayload::from(bytes))
                .await
                .map_err(TieringError::store("upload", &key))?;
        }

        let id = entry.id;
        self.record(|m| {
            if let Some(s) = m.segments.iter_mut().find(|s| s.id == id) {
                s.state = SegmentState::CopyFinished;
            }
        })
        .await?;
        metrics::counter!("strata_remote_upload_segments_total").increment(1);
        metrics::counter!("strata_remote_upload_bytes_total").increment(entry.size);
        metrics::histogram!("strata_remote_upload_duration_seconds")
            .record(started_at.elapsed().as_secs_f64());
        info!(partition = %self.key.dir(), base_offset = entry.base_offset.0, next_offset = entry.next_offset.0, bytes = entry.size, "uploaded segment");
        Ok(())
    }
}

/// Links the sealed segment file `src` as `dest`; false when that is not
/// possible (another file system, the segment already deleted by
/// retention), and the caller copies instead.
async fn link(src: PathBuf, dest: PathBuf) -> bool {
    tokio::task::spawn_blocking(move || {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::hard_link(&src, &dest)
    })
    .await
    .expect("no panic")
    .map_err(|e| debug!(error = %e, "could not link a segment into the local store; copying it"))
    .is_ok()
}

async fn read_file_range(file: &Arc<std::fs::File>, at: u64, len: usize) -> TieringResult<Bytes> {
    let file = Arc::clone(file);
    tokio::task::spawn_blocking(move || {
        let mut buf = BytesMut::zeroed(len);
        file.read_exact_at(&mut buf, at).map(|()| buf.freeze())
    })
    .await
    .expect("no panic")
    .map_err(|e| {
        TieringError::Storage(strata_storage::StorageError::Io {
            op: "read segment for upload",
            path: PathBuf::new(),
            source: e,
        })
    })
}
