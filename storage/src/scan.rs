//! Sequential reading of batch headers from a `.log` file with large
//! positional reads, so that walking a segment costs one system call per
//! chunk rather than one per batch.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::{Bytes, BytesMut};

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::error::{StorageError, StorageResult};

/// What the scanner found at its position.
pub(crate) enum Step {
    Batch {
        position: u64,
        header: BatchHeader,
    },
    End,
    /// The bytes at `position` are not a whole valid batch header. With
    /// `check_crc` the batch's checksum is verified too.
    Corrupt {
        position: u64,
        reason: String,
    },
}

/// Walks the batches of one file between two byte positions. Used by one
/// thread at a time; it owns only a borrowed file handle.
pub(crate) struct Scanner<'a> {
    file: &'a File,
    path: &'a Path,
    end: u64,
    pos: u64,
    buf: Bytes,
    buf_pos: u64,
    chunk: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(file: &'a File, path: &'a Path, start: u64, end: u64, chunk: usize) -> Self {
        Scanner {
            file,
            path,
            end,
            pos: start,
            buf: Bytes::new(),
            buf_pos: start,
            chunk: chunk.max(HEADER_LEN),
        }
    }

    /// Returns the bytes `[start, start + len)`, from the buffer when it
    /// holds them and with one positional read otherwise.
    pub fn range(&mut self, start: u64, len: usize) -> StorageResult<Bytes> {
        if start >= self.buf_pos && start + len as u64 <= self.buf_pos + self.buf.len() as u64 {
            let from = (start - self.buf_pos) as usize;
            return Ok(self.buf.slice(from..from + len));
        }
        read_exact_at(self.file, self.path, start, len)
    }

    /// Makes the buffer cover `[pos, pos + need)`, reading at least a chunk.
    fn fill(&mut self, need: usize) -> StorageResult<()> {
        let have_end = self.buf_pos + self.buf.len() as u64;
        if self.pos >= self.buf_pos && self.pos + need as u64 <= have_end {
            return Ok(());
        }
        let len = (self.end - self.pos).min(need.max(self.chunk) as u64) as usize;
        self.buf = read_exact_at(self.file, self.path, self.pos, len)?;
        self.buf_pos = self.pos;
        Ok(())
    }

    /// Looks at the batch at the current position without moving past it.
    pub fn peek(&mut self, check_crc: bool) -> StorageResult<Step> {
        if self.pos >= self.end {
            return Ok(Step::End);
        }
        let position = self.pos;
        let remaining = self.end - self.pos;
        if remaining < HEADER_LEN as u64 {
            return Ok(Step::Corrupt {
                position,
                reason: format!("{remaining} trailing bytes, shorter than a batch header"),
            });
        }
        self.fill(HEADER_LEN)?;
        let at = (self.pos - self.buf_pos) as usize;
        let header = match BatchHeader::parse(&self.buf[at..]) {
            Ok(h) => h,
            Err(e) => {
                return Ok(Step::Corrupt {
                    position,
                    reason: e.to_string(),
                })
            }
        };
        if header.total_len() as u64 > remaining {
            return Ok(Step::Corrupt {
                position,
                reason: format!(
                    "batch of {} bytes but only {remaining} remain",
                    header.total_len()
                ),
            });
        }
        if check_crc {
            self.fill(header.total_len())?;
            let at = (self.pos - self.buf_pos) as usize;
            if let Err(e) = batch::validate(&self.buf[at..at + header.total_len()]) {
                return Ok(Step::Corrupt {
                    position,
                    reason: e.to_string(),
                });
            }
        }
        Ok(Step::Batch { position, header })
    }

    /// Moves past the batch `peek` just returned.
    pub fn advance(&mut self, header: &BatchHeader) {
        self.pos += header.total_len() as u64;
    }
}

pub(crate) fn read_exact_at(file: &File, path: &Path, at: u64, len: usize) -> StorageResult<Bytes> {
    let mut buf = BytesMut::zeroed(len);
    file.read_exact_at(&mut buf, at)
        .map_err(StorageError::io("read segment", path))?;
    Ok(buf.freeze())
}
