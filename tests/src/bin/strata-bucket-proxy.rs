//! `strata-bucket-proxy`: an emulated real bucket in front of the S3 test
//! server, for benchmarks run from a shell (`scripts/bench-replay.sh`). It
//! forwards to the server on `--upstream` with the first-byte latency,
//! per-connection bandwidth and request-rate limit of a real object store,
//! prints `listening on 127.0.0.1:PORT` and runs until killed.

use std::time::Duration;

use clap::Parser;
use strata_tests::fault_proxy::{BucketProfile, FaultProxy, Mode};

#[derive(Parser, Debug)]
#[command(name = "strata-bucket-proxy")]
struct Args {
    /// The S3 server's port on 127.0.0.1.
    #[arg(long)]
    upstream: u16,
    /// Milliseconds from a request to its answer's first byte.
    #[arg(long, default_value_t = 30)]
    first_byte_ms: u64,
    /// Up to this many more milliseconds, uniformly at random.
    #[arg(long, default_value_t = 10)]
    jitter_ms: u64,
    /// Megabytes (10^6 bytes) per second per connection; 0 for no limit.
    #[arg(long, default_value_t = 100)]
    mb_per_sec: u64,
    /// Requests per second before answers become 503 SlowDown; 0 for no
    /// limit.
    #[arg(long, default_value_t = 0)]
    requests_per_sec: u32,
    /// Seed of the jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() {
    let a = Args::parse();
    let proxy = FaultProxy::start(a.upstream, a.seed);
    proxy.set_mode(Mode::Bucket(BucketProfile {
        first_byte: Duration::from_millis(a.first_byte_ms),
        jitter: Duration::from_millis(a.jitter_ms),
        bytes_per_sec: a.mb_per_sec * 1_000_000,
        requests_per_sec: a.requests_per_sec,
    }));
    println!("listening on 127.0.0.1:{}", proxy.port());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
