//! Logs that start at an offset other than zero with nothing in them: the
//! local log of a partition restored from the cold tier, or of a read
//! replica, begins where the cold tier ends (Kafka's
//! `truncateFullyAndStartAt` on a log that holds nothing).

use std::fs;
use std::path::Path;

use tracing::debug;

use crate::error::{StorageError, StorageResult};
use crate::log::Log;
use crate::segment::ActiveSegment;
use crate::{LogConfig, Offset};

impl Log {
    /// Opens the log in `dir`, which must hold no segment yet, so that its
    /// first record gets offset `start`. Blocking.
    pub fn create_at(
        dir: &Path,
        config: LogConfig,
        start: Offset,
        now_ms: i64,
    ) -> StorageResult<Log> {
        fs::create_dir_all(dir).map_err(StorageError::io("create log directory", dir))?;
        let has_segments = fs::read_dir(dir)
            .map_err(StorageError::io("list log directory", dir))?
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".log"));
        if has_segments {
            return Err(StorageError::NotEmpty {
                dir: dir.to_owned(),
            });
        }
        // An empty active segment at `start` is the whole log; opening the
        // directory then finds it like any other.
        let mut first = ActiveSegment::create(dir, start, &config, now_ms)?;
        first.close()?;
        drop(first);
        Log::open(dir, config, true, now_ms)
    }

    /// Moves the start of a log that holds no record forward to `start`, so
    /// that its next record gets that offset. A log with records, or a
    /// `start` not past its end, is left as it is (false). Blocking.
    pub fn advance_empty_to(&self, start: Offset, now_ms: i64) -> StorageResult<bool> {
        let mut inner = self.lock()?;
        let end = inner.segments.log_end();
        if start <= end || inner.log_start != end || inner.segments.len() > 1 {
            return Ok(false);
        }
        let next = ActiveSegment::create(&self.dir, start, &inner.config, now_ms)?;
        let old = inner.segments.replace_active(next);
        let old_base = old.base;
        drop(old);
        crate::segment::Segment::delete_files(&self.dir, old_base)?;
        inner.log_start = start;
        debug!(dir = %self.dir.display(), start = start.0, "empty log moved forward");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::BatchBuilder;

    #[test]
    fn a_log_created_at_an_offset_continues_there_and_an_empty_one_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-0");
        let log = Log::create_at(&path, LogConfig::default(), Offset(500), 0).unwrap();
        assert_eq!(log.log_start_offset(), Offset(500));
        assert!(log.advance_empty_to(Offset(700), 0).unwrap());
        assert_eq!(log.log_start_offset(), Offset(700));
        assert_eq!(log.log_end_offset(), Offset(700));
        let info = log.append(&mut BatchBuilder::new(2).build(), 0).unwrap();
        assert_eq!(info.base_offset, Offset(700));
        // Once it holds records it stays where it is.
        assert!(!log.advance_empty_to(Offset(900), 0).unwrap());
        log.close().unwrap();
        drop(log);
        let log = Log::open(&path, LogConfig::default(), true, 0).unwrap();
        assert_eq!(log.log_start_offset(), Offset(700));
        assert_eq!(log.log_end_offset(), Offset(702));
        assert!(matches!(
            Log::create_at(&path, LogConfig::default(), Offset(1), 0),
            Err(StorageError::NotEmpty { .. })
        ));
    }
}
