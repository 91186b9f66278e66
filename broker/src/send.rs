//! Writing a Fetch answer whose hot records are regions of segment files:
//! the frame around them is written as bytes, and each region goes from
//! the page cache to the socket with `sendfile`, never through user space,
//! as Kafka sends fetch data. The bytes on the wire are those of the whole
//! response encoded in memory (`strata_protocol::fetch_parts`).
//!
//! `sendfile` reads the file, which may wait for the disk, so it runs on
//! the blocking pool, on a duplicate of the connection's socket: it sends
//! until the socket's buffer is full and then waits for room with `poll`,
//! giving up after `STALL` without progress. At most `MAX_SENDERS` blocking
//! threads do this at once; a response that finds none free is read into
//! memory and written as before, so slow consumers never take the whole
//! blocking pool from produce and the other handlers.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use strata_protocol::fetch_parts::{encode_fetch_response_parts, Hole, Part};
use strata_protocol::ProtocolError;
use strata_storage::FileRegion;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Semaphore;

use crate::handlers::fetch::FetchAnswer;

/// Blocking threads sending file regions at once, over all connections.
const MAX_SENDERS: usize = 32;
/// How long a send waits for a consumer that reads nothing.
const STALL: Duration = Duration::from_secs(30);

fn senders() -> &'static Arc<Semaphore> {
    static SENDERS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SENDERS.get_or_init(|| Arc::new(Semaphore::new(MAX_SENDERS)))
}

/// Encodes `answer` as frame parts with holes for its file regions.
pub fn fetch_parts(
    answer: &FetchAnswer,
    version: i16,
    correlation_id: i32,
) -> Result<Vec<Part>, ProtocolError> {
    let holes: Vec<Hole> = answer
        .files
        .iter()
        .map(|f| Hole {
            topic: f.topic,
            partition: f.partition,
            len: f.data.len(),
        })
        .collect();
    encode_fetch_response_parts(version, correlation_id, &answer.response, &holes)
}

/// Writes the frame `parts`, the holes filled from `answer`'s file regions.
pub async fn write_fetch(
    writer: &mut OwnedWriteHalf,
    parts: Vec<Part>,
    answer: FetchAnswer,
) -> io::Result<()> {
    let permit = Arc::clone(senders()).try_acquire_owned().ok();
    let socket = if permit.is_some() {
        Some(Arc::new(rustix::io::dup(writer.as_ref())?))
    } else {
        None
    };
    for part in parts {
        match part {
            Part::Bytes(b) => writer.write_all(&b).await?,
            Part::Hole(i) => {
                for region in &answer.files[i].data.regions {
                    match &socket {
                        Some(s) => send_region(Arc::clone(s), region.clone()).await?,
                        None => {
                            metrics::counter!("strata_fetch_copied_bytes_total")
                                .increment(region.len);
                            let bytes = read_region(region.clone()).await?;
                            writer.write_all(&bytes).await?;
                        }
                    }
                }
            }
        }
    }
    drop(permit);
    Ok(())
}

/// Sends one region with `sendfile` on the blocking pool.
async fn send_region(socket: Arc<OwnedFd>, region: FileRegion) -> io::Result<()> {
    metrics::counter!("strata_fetch_sendfile_bytes_total").increment(region.len);
    tokio::task::spawn_blocking(move || {
        let mut offset = region.position;
        let end = region.position + region.len;
        let mut last_progress = Instant::now();
        while offset < end {
            let want = (end - offset).min(1 << 30) as usize;
            match rustix::fs::sendfile(&*socket, &*region.file, Some(&mut offset), want) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} ends before byte {end} of the answer's region",
                            region.path.display()
                        ),
                    ))
                }
                Ok(_) => last_progress = Instant::now(),
                Err(Errno::AGAIN) => {
                    let left = STALL.saturating_sub(last_progress.elapsed());
                    if left.is_zero() {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the consumer read nothing of a fetch answer for 30 s",
                        ));
                    }
                    let mut fds = [PollFd::new(&*socket, PollFlags::OUT)];
                    let timeout = Timespec::try_from(left).unwrap_or(Timespec {
                        tv_sec: 30,
                        tv_nsec: 0,
                    });
                    match poll(&mut fds, Some(&timeout)) {
                        Ok(_) | Err(Errno::INTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    })
    .await
    .map_err(io::Error::other)?
}

/// A region's bytes, read on the blocking pool: the copy that a send
/// without a free sender makes.
async fn read_region(region: FileRegion) -> io::Result<Bytes> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let mut buf = BytesMut::zeroed(region.len as usize);
        region.file.read_exact_at(&mut buf, region.position)?;
        Ok(buf.freeze())
    })
    .await
    .map_err(io::Error::other)?
}
