//! Opening a log directory (Kafka's `LogLoader`): its segments are found,
//! opened and, after an unclean shutdown, recovered from the recovery point
//! on; the log start and the producer state are restored.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Mutex;

use tracing::{debug, warn};

use crate::checkpoint;
use crate::error::{StorageError, StorageResult};
use crate::log::{Inner, Log};
use crate::producer::ProducerState;
use crate::segment::{ActiveSegment, OpenMode, Segment};
use crate::segments::Segments;
use crate::{LogConfig, Offset};

impl Log {
    /// Opens the log in `dir`, creating it if needed. `clean_shutdown` says
    /// whether the broker stopped cleanly last time; if not, the segments from
    /// the recovery point on are recovered batch by batch and the older
    /// segments' indexes checked.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        clean_shutdown: bool,
        now_ms: i64,
    ) -> StorageResult<Log> {
        fs::create_dir_all(dir).map_err(StorageError::io("create log directory", dir))?;
        // A cleaner swap a crash interrupted is finished or rolled back
        // before the segments are listed.
        crate::swap::recover(dir)?;
        let mut bases = Vec::new();
        for entry in fs::read_dir(dir).map_err(StorageError::io("list log directory", dir))? {
            let entry = entry.map_err(StorageError::io("list log directory", dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".log") {
                if let Ok(base) = stem.parse::<i64>() {
                    bases.push(Offset(base));
                }
            }
        }
        bases.sort();
        let mut segments = BTreeMap::new();
        let last = bases.last().copied();
        // Segments from the recovery point on may not have been fsynced; with
        // no recovery point, every segment is checked batch by batch.
        let recover_from = checkpoint::read_recovery_point(dir).unwrap_or(Offset::ZERO);
        for (i, &base) in bases.iter().enumerate() {
            let mode = if clean_shutdown {
                OpenMode::Clean
            } else if Some(base) == last || base >= recover_from {
                OpenMode::Recover
            } else {
                OpenMode::CheckIndexes
            };
            let (segment, repair) = Segment::open(dir, base, &config, mode, now_ms)?;
            let later = &bases[i + 1..];
            if mode == OpenMode::Recover && repair.truncated_bytes > 0 && !later.is_empty() {
                // A torn segment followed by others: their offsets no longer
                // follow on, and nothing in them was acknowledged as durable
                // that this segment was not, so they go as Kafka's recovery does.
                for &b in later {
                    warn!(dir = %dir.display(), base_offset = b.0, "deleting a segment after a torn one");
                    Segment::delete_files(dir, b)?;
                }
                segments.insert(base, segment);
                break;
            }
            if repair.truncated_bytes > 0 || (repair.rebuilt_indexes && mode != OpenMode::Recover) {
                warn!(
                    dir = %dir.display(),
                    base_offset = base.0,
                    truncated_bytes = repair.truncated_bytes,
                    rebuilt_indexes = repair.rebuilt_indexes,
                    "repaired segment"
                );
            }
            segments.insert(base, segment);
        }
        // The last segment is the active one again, or a new log starts.
        let active = match segments.pop_last() {
            Some((_, last)) => last.activate(&config)?,
            None => ActiveSegment::create(dir, Offset::ZERO, &config, now_ms)?,
        };
        let segments = Segments::new(segments, active);
        let first_base = segments.first_base();
        let log_end = segments.log_end();
        // DeleteRecords may have moved the start into a segment.
        let log_start =
            checkpoint::read_log_start(dir).map_or(first_base, |o| o.min(log_end).max(first_base));
        let log = Log {
            dir: dir.to_owned(),
            inner: Mutex::new(Inner {
                segments,
                config,
                log_start,
                unflushed_records: 0,
                oldest_unflushed_ms: now_ms,
                deleted: false,
                producers: ProducerState::default(),
                pending_snapshot: None,
                first_dirty: checkpoint::read_first_dirty(dir).unwrap_or(Offset::ZERO),
            }),
            files: Mutex::new(()),
        };
        {
            let mut inner = log.inner.lock().unwrap_or_else(|p| p.into_inner());
            log.rebuild_producers(&mut inner, now_ms)?;
        }
        debug!(dir = %dir.display(), log_start = log_start.0, log_end = log.log_end_offset().0, "opened log");
        Ok(log)
    }
}
