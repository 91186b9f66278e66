//! A log directory's checkpoint files (see FORMAT.md): the recovery point,
//! from which an unclean start checks segments batch by batch, and the log
//! start offset that DeleteRecords moved into a segment. Each is a decimal
//! offset replaced atomically (written aside, then renamed).

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{StorageError, StorageResult};
use crate::segments::Segments;
use crate::Offset;

/// The file in a log directory naming its recovery point.
const RECOVERY_POINT_FILE: &str = "recovery-point";

/// The file naming a log start offset that DeleteRecords moved into a
/// segment.
const LOG_START_FILE: &str = "log-start-offset";

/// The base of the first segment that may hold data not yet fsynced: the
/// first sealed segment not durable, or the active one.
pub(crate) fn recovery_point(segments: &Segments) -> Offset {
    segments
        .sealed()
        .find(|s| !s.durable)
        .map_or(segments.active().base, |s| s.base)
}

/// The file naming a compacted log's first dirty offset: below it, the
/// cleaner has already kept only the latest record of every key.
const FIRST_DIRTY_FILE: &str = "cleaner-offset-checkpoint";

pub(crate) fn read_first_dirty(dir: &Path) -> Option<Offset> {
    read_offset_file(&dir.join(FIRST_DIRTY_FILE))
}

/// Records the first dirty offset after a cleaning pass. Replaced
/// atomically but not fsynced: a stale value only makes the next pass
/// clean again what is already clean.
pub(crate) fn write_first_dirty(dir: &Path, offset: Offset) -> StorageResult<()> {
    let path = dir.join(FIRST_DIRTY_FILE);
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, offset.0.to_string())
        .and_then(|()| fs::rename(&tmp, &path))
        .map_err(StorageError::io("write cleaner checkpoint", &path))
}

pub(crate) fn read_recovery_point(dir: &Path) -> Option<Offset> {
    read_offset_file(&dir.join(RECOVERY_POINT_FILE))
}

pub(crate) fn read_log_start(dir: &Path) -> Option<Offset> {
    read_offset_file(&dir.join(LOG_START_FILE))
}

fn read_offset_file(path: &Path) -> Option<Offset> {
    fs::read_to_string(path)
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Offset)
}

/// Records the base of the first segment that may hold data not yet
/// fsynced (the active one when every sealed segment is durable): an
/// unclean start recovers from there. Replaced atomically but not fsynced:
/// a stale value only makes recovery check more.
pub(crate) fn write_recovery_point(dir: &Path, point: Offset) -> StorageResult<()> {
    let path = dir.join(RECOVERY_POINT_FILE);
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, point.0.to_string())
        .and_then(|()| fs::rename(&tmp, &path))
        .map_err(StorageError::io("write recovery point", &path))
}

/// Records a log start moved by DeleteRecords durably: written, fsynced,
/// renamed into place, and the directory fsynced, before the move is
/// acknowledged.
pub(crate) fn write_log_start(dir: &Path, offset: Offset) -> StorageResult<()> {
    let path = dir.join(LOG_START_FILE);
    let tmp = path.with_extension("tmp");
    fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(offset.0.to_string().as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, &path))
        .and_then(|()| fs::File::open(dir)?.sync_all())
        .map_err(StorageError::io("write log start offset", &path))
}
