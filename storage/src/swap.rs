//! Replacing a group of sealed segments with their cleaned copy, crash-safe
//! (Kafka's `.cleaned` and `.swap` files). The order, written down in
//! ARCHITECTURE.md:
//!
//! 1. The cleaner writes the copy and its indexes into a staging directory
//!    `cleaned-<base>-<end>` inside the log directory, and fsyncs them.
//! 2. Renaming it to `swap-<base>-<end>` (then fsyncing the log directory)
//!    commits the swap: from here on the copy replaces the segments whose
//!    base offsets are in `[base, end)`.
//! 3. Those segments' files are deleted.
//! 4. The copy's files move into the log directory, the log file first,
//!    and the emptied `swap-` directory goes.
//!
//! Opening a log finishes what a crash interrupted: a `cleaned-` directory
//! is deleted (the old segments are intact), a `swap-` directory still
//! holding its log file redoes steps 3 and 4, one without it (the log file
//! already moved, so step 3 was done) redoes step 4.

use std::fs;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use crate::error::{StorageError, StorageResult};
use crate::log::Log;
use crate::segment::{OpenMode, Segment};
use crate::{Offset, SegmentFile};

/// Where the cleaner writes the copy of the segments `[base, end)`.
pub(crate) fn staging_dir(dir: &Path, base: Offset, end: Offset) -> PathBuf {
    dir.join(format!("cleaned-{:020}-{:020}", base.0, end.0))
}

fn swap_dir(dir: &Path, base: Offset, end: Offset) -> PathBuf {
    dir.join(format!("swap-{:020}-{:020}", base.0, end.0))
}

/// `(base, end)` from a `cleaned-` or `swap-` directory name.
fn parse(name: &str, prefix: &str) -> Option<(Offset, Offset)> {
    let rest = name.strip_prefix(prefix)?;
    let (b, e) = rest.split_once('-')?;
    Some((Offset(b.parse().ok()?), Offset(e.parse().ok()?)))
}

fn sync_dir(dir: &Path) -> StorageResult<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StorageError::io("fsync log directory", dir))
}

/// Steps 3 and 4 for the swap directory `swap` of `[base, end)`, with the
/// log directory fsynced after each.
fn finish(dir: &Path, swap: &Path, base: Offset, end: Offset) -> StorageResult<()> {
    finish_unsynced(dir, swap, base, end, true)
}

/// Steps 3 and 4; `sync` fsyncs the log directory between them. A swap
/// done under the log's mutex leaves the fsyncs to after it, so that the
/// mutex is not held across them: the steps are renames and deletions in
/// one directory, which a journaling file system makes durable in order.
fn finish_unsynced(
    dir: &Path,
    swap: &Path,
    base: Offset,
    end: Offset,
    sync: bool,
) -> StorageResult<()> {
    let log = SegmentFile::Log.path(swap, base);
    if log.exists() {
        // Step 3: the old segments in [base, end) go.
        for entry in fs::read_dir(dir).map_err(StorageError::io("list log directory", dir))? {
            let entry = entry.map_err(StorageError::io("list log directory", dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(b) = name
                .strip_suffix(".log")
                .and_then(|s| s.parse::<i64>().ok())
            {
                if (base.0..end.0).contains(&b) {
                    Segment::delete_files(dir, Offset(b))?;
                }
            }
        }
        if sync {
            sync_dir(dir)?;
        }
    }
    // Step 4: the log file first, so that its absence from `swap` says
    // step 3 is done.
    for kind in SegmentFile::SEGMENT
        .into_iter()
        .chain([SegmentFile::TxnIndex])
    {
        let from = kind.path(swap, base);
        if from.exists() {
            let to = kind.path(dir, base);
            fs::rename(&from, &to).map_err(StorageError::io("move cleaned segment file", &from))?;
        }
    }
    if sync {
        sync_dir(dir)?;
    }
    fs::remove_dir_all(swap).map_err(StorageError::io("remove swap directory", swap))?;
    Ok(())
}

/// Finishes or rolls back the swaps a crash interrupted, before the log's
/// segments are listed.
pub(crate) fn recover(dir: &Path) -> StorageResult<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    let mut swaps = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StorageError::io("list log directory", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if parse(&name, "cleaned-").is_some() {
            warn!(dir = %dir.display(), staging = %name, "discarding an interrupted cleaning");
            fs::remove_dir_all(entry.path())
                .map_err(StorageError::io("remove cleaner directory", entry.path()))?;
        } else if let Some((base, end)) = parse(&name, "swap-") {
            swaps.push((base, end, entry.path()));
        }
    }
    swaps.sort();
    for (base, end, swap) in swaps {
        warn!(dir = %dir.display(), base = base.0, end = end.0, "finishing an interrupted segment swap");
        finish(dir, &swap, base, end)?;
    }
    Ok(())
}

impl Log {
    /// Swaps the cleaned copy in `staging` (the log file of `[base, end)`)
    /// for the sealed segments `olds`. Returns false, changing nothing, if
    /// those segments are no longer all there.
    pub(crate) fn swap_in(
        &self,
        staging: &Path,
        base: Offset,
        end: Offset,
        olds: &[Offset],
        now_ms: i64,
    ) -> StorageResult<bool> {
        let config = self.config();
        // Step 1's indexes, built from the copy outside the mutex.
        let (copy, _) = Segment::open(staging, base, &config, OpenMode::Recover, now_ms)?;
        drop(copy);
        sync_dir(staging)?;
        {
            // Under the mutex: renames and deletions only (the copy's
            // indexes are already built), so that appends and reads of this
            // partition wait as little as possible.
            let mut inner = self.lock()?;
            if !olds.iter().all(|b| inner.segments.sealed_mut(b).is_some()) {
                return Ok(false);
            }
            // Step 2: the commit point.
            let swap = swap_dir(&self.dir, base, end);
            fs::rename(staging, &swap).map_err(StorageError::io("commit segment swap", staging))?;
            for b in olds {
                inner.segments.remove_sealed(b);
            }
            finish_unsynced(&self.dir, &swap, base, end, false)?;
            let (segment, _) = Segment::open(&self.dir, base, &config, OpenMode::Clean, now_ms)?;
            inner.segments.insert_sealed(segment);
        }
        sync_dir(&self.dir)?;
        info!(dir = %self.dir.display(), base = base.0, end = end.0, replaced = olds.len(), "swapped in a cleaned segment");
        Ok(true)
    }
}
