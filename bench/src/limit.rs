//! The machine's own ceiling for the work a broker does, measured the same
//! way: the same bytes over loopback TCP into a sink that appends them to
//! files (or reads them back), and raw ranged GETs against an object store.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::report::{payload, Latencies, Prefix, Progress, Report};

/// Requests a Kafka producer pipelines on one connection (librdkafka's
/// `max.in.flight` is 1000000 but each partition sends one batch at a time
/// when idempotent; five is the Java client's default).
const IN_FLIGHT: usize = 5;

#[derive(clap::Args, Debug)]
pub struct SinkArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Files the sink appends to, one per partition, round-robin.
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
    /// Bytes per request, as a producer's batch (librdkafka's batch.size is
    /// 1000000).
    #[arg(long, default_value_t = 1_000_000)]
    pub batch_bytes: usize,
    /// fdatasync after every append (as log.flush.interval.messages=1);
    /// otherwise data stays in the page cache, the broker's default policy.
    #[arg(long)]
    pub fsync: bool,
    /// Where the sink's files go; a temporary directory by default.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

fn read_u32(s: &mut TcpStream) -> std::io::Result<u32> {
    let mut b = [0; 4];
    s.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

/// Produce over loopback: frames of [len u32][partition u32][bytes] are
/// appended to the partition's file, and each is answered with a 4-byte ack
/// once written.
pub fn produce(a: &SinkArgs) -> Result<Report> {
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    let mut files = (0..a.partitions)
        .map(|p| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("sink-{p}.log")))
        })
        .collect::<std::io::Result<Vec<File>>>()
        .context("opening the sink's files")?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let fsync = a.fsync;
    let sink = thread::spawn(move || -> Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = Vec::new();
        loop {
            let len = match read_u32(&mut s) {
                Ok(l) => l as usize,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let partition = read_u32(&mut s)? as usize;
            buf.resize(len, 0);
            s.read_exact(&mut buf)?;
            files[partition].write_all(&buf)?;
            if fsync {
                files[partition].sync_data()?;
            }
            s.write_all(&1u32.to_be_bytes())?;
        }
    });

    let per_batch = (a.batch_bytes / a.size).max(1) as u64;
    let record = payload(a.size, 1);
    let mut frame = Vec::with_capacity(per_batch as usize * a.size + 8);
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut acks = s.try_clone()?;
    // The channel holds the send time of each unanswered frame and bounds
    // them to IN_FLIGHT.
    let (tx, rx) = mpsc::sync_channel::<(Instant, u64)>(IN_FLIGHT);
    let reader = thread::spawn(move || -> Result<Latencies> {
        let mut lat = Latencies::default();
        for (sent, records) in rx {
            read_u32(&mut acks)?;
            let d = sent.elapsed();
            for _ in 0..records {
                lat.record(d);
            }
        }
        Ok(lat)
    });
    let mut progress = Progress::new("limit produce");
    let start = Instant::now();
    let (mut sent, mut batch_no) = (0u64, 0u64);
    while sent < a.records {
        let n = per_batch.min(a.records - sent);
        frame.clear();
        frame.extend_from_slice(&((n as usize * a.size) as u32).to_be_bytes());
        frame.extend_from_slice(&((batch_no % a.partitions as u64) as u32).to_be_bytes());
        for _ in 0..n {
            frame.extend_from_slice(&record);
        }
        tx.send((Instant::now(), n))?;
        s.write_all(&frame)?;
        sent += n;
        batch_no += 1;
        progress.tick(sent, a.records, sent * a.size as u64);
    }
    drop(tx);
    let mut lat = reader.join().expect("the ack reader panicked")?;
    let elapsed = start.elapsed();
    drop(s);
    sink.join().expect("the sink panicked")?;
    progress.done();
    let mut r = Report::new("limit produce");
    r.add("partitions", a.partitions as f64, "");
    r.add("record_bytes", a.size as f64, "B");
    r.add_rates(a.records, a.records * a.size as u64, elapsed);
    r.add_latencies(Prefix::Produce, &mut lat);
    Ok(r)
}

#[derive(clap::Args, Debug)]
pub struct SourceArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Bytes per answer, as a fetch's max.partition.fetch.bytes (librdkafka's
    /// default is 1 MiB).
    #[arg(long, default_value_t = 1_048_576)]
    pub fetch_bytes: u32,
}

/// Consume over loopback: a file of the same bytes, written first (so it is
/// in the page cache, as a tail read is), served in answers of `fetch_bytes`
/// to requests sent one at a time.
pub fn consume(a: &SourceArgs) -> Result<Report> {
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("source.log");
    let total = a.records * a.size as u64;
    {
        let mut f = File::create(&path)?;
        let record = payload(a.size, 2);
        for _ in 0..a.records {
            f.write_all(&record)?;
        }
    }
    let file = File::open(&path)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let source = thread::spawn(move || -> Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = Vec::new();
        let mut at = 0u64;
        loop {
            let want = match read_u32(&mut s) {
                Ok(w) => w as u64,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let n = want.min(total - at) as usize;
            buf.resize(n, 0);
            file.read_exact_at(&mut buf, at)?;
            at += n as u64;
            s.write_all(&(n as u32).to_be_bytes())?;
            s.write_all(&buf)?;
        }
    });
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut buf = Vec::new();
    let mut got = 0u64;
    let mut progress = Progress::new("limit consume");
    let start = Instant::now();
    let mut first = None;
    while got < total {
        s.write_all(&a.fetch_bytes.to_be_bytes())?;
        let n = read_u32(&mut s)? as usize;
        buf.resize(n, 0);
        s.read_exact(&mut buf)?;
        first.get_or_insert_with(|| start.elapsed());
        got += n as u64;
        progress.tick(got / a.size as u64, a.records, got);
    }
    let elapsed = start.elapsed();
    drop(s);
    source.join().expect("the source panicked")?;
    progress.done();
    let mut r = Report::new("limit consume");
    r.add_rates(a.records, total, elapsed);
    r.add_ms("first_record_ms", first.unwrap_or_default());
    Ok(r)
}

#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// The object store, as the broker's --remote: file:///dir, s3://bucket/prefix
    /// (with the AWS_* environment), gs://, az://.
    #[arg(long)]
    pub remote: String,
    /// Only objects whose key (below the URL's prefix) starts with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Only objects whose key ends with this (segment files by default).
    #[arg(long, default_value = ".log")]
    pub suffix: String,
    /// Bytes per ranged GET, as the broker's remote.log.reader.chunk.bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub chunk_bytes: u64,
    /// Stop after this many bytes.
    #[arg(long)]
    pub max_bytes: Option<u64>,
    /// Ranged GETs in flight at once, in object and offset order, as a
    /// reader that uses the bucket's parallelism keeps them (1: one stream
    /// of GETs, one after another).
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
}

/// Raw ranged GETs of segment objects, `concurrency` at a time in the order
/// a replay reads them: the ceiling for a replay from the cold tier.
pub fn get(a: &GetArgs) -> Result<Report> {
    let remote = strata_tiering::RemoteStore::open(&a.remote)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if a.concurrency > 1 { 2 } else { 1 })
        .enable_all()
        .build()?;
    rt.block_on(async {
        // object_store lists by whole path segments, so a prefix that ends
        // inside a name (a topic's directory without its id) is matched here.
        let prefix = remote.key(&a.prefix);
        let root = remote.key("");
        let mut objects = Vec::new();
        let mut listing = remote.store.list(Some(&root));
        use futures::StreamExt as _;
        while let Some(m) = listing.next().await {
            let m = m?;
            if m.location.as_ref().starts_with(prefix.as_ref())
                && m.location.as_ref().ends_with(&a.suffix)
            {
                objects.push((m.location, m.size));
            }
        }
        if objects.is_empty() {
            bail!("no object ending in {:?} under {}", a.suffix, a.remote);
        }
        objects.sort();
        let budget = a.max_bytes.unwrap_or(u64::MAX);
        // Every ranged GET of the same bytes a replay reads, in its order.
        let mut ranges = Vec::new();
        let mut planned = 0u64;
        'plan: for (key, size) in &objects {
            let mut at = 0;
            while at < *size {
                let end = (at + a.chunk_bytes).min(*size);
                ranges.push((key.clone(), at..end));
                planned += end - at;
                at = end;
                if planned >= budget {
                    break 'plan;
                }
            }
        }
        let gets = ranges.len() as u64;
        let store = remote.store.clone();
        let start = Instant::now();
        let mut results = futures::stream::iter(ranges)
            .map(|(key, range)| {
                let store = store.clone();
                async move { get_range(store.as_ref(), &key, range).await }
            })
            .buffered(a.concurrency.max(1));
        let (mut bytes, mut first) = (0u64, None);
        while let Some(got) = results.next().await {
            bytes += got?;
            first.get_or_insert_with(|| start.elapsed());
        }
        let elapsed = start.elapsed();
        let mut r = Report::new("limit get");
        r.add("concurrency", a.concurrency.max(1) as f64, "");
        r.add("objects", objects.len() as f64, "");
        r.add("gets", gets as f64, "");
        r.add("bytes", bytes as f64, "B");
        r.add("elapsed", elapsed.as_secs_f64(), "s");
        r.add(
            "mb_per_sec",
            bytes as f64 / 1e6 / elapsed.as_secs_f64(),
            "MB/s",
        );
        r.add_ms("first_byte_ms", first.unwrap_or(Duration::ZERO));
        Ok(r)
    })
}

async fn get_range(
    store: &dyn ObjectStore,
    key: &ObjectPath,
    range: std::ops::Range<u64>,
) -> Result<u64> {
    let want = range.end - range.start;
    let got = store
        .get_range(key, range)
        .await
        .with_context(|| format!("GET {key}"))?;
    if got.len() as u64 != want {
        bail!("GET {key}: {} bytes instead of {want}", got.len());
    }
    Ok(want)
}
