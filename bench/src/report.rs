//! Results: a human table or one JSON object, and latency percentiles.

use std::io::Write;
use std::time::{Duration, Instant};

/// The figures of one run, in the order they were added.
pub struct Report {
    mode: &'static str,
    rows: Vec<(&'static str, f64, &'static str)>,
}

impl Report {
    pub fn new(mode: &'static str) -> Report {
        Report {
            mode,
            rows: Vec::new(),
        }
    }

    pub fn add(&mut self, name: &'static str, value: f64, unit: &'static str) {
        self.rows.push((name, value, unit));
    }

    /// Adds `records/s` and `MB/s` (10^6 bytes, as Kafka's own perf tools
    /// report) for `records` records holding `bytes` bytes in `elapsed`.
    pub fn add_rates(&mut self, records: u64, bytes: u64, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(1e-9);
        self.add("records", records as f64, "");
        self.add("elapsed", secs, "s");
        self.add("records_per_sec", records as f64 / secs, "rec/s");
        self.add("mb_per_sec", bytes as f64 / 1e6 / secs, "MB/s");
    }

    /// Adds a duration in milliseconds.
    pub fn add_ms(&mut self, name: &'static str, d: Duration) {
        self.add(name, d.as_secs_f64() * 1000.0, "ms");
    }

    pub fn add_latencies(&mut self, prefix: Prefix, latencies: &mut Latencies) {
        let l = latencies.summary();
        let names = prefix.names();
        self.add(names[0], l.p50, "ms");
        self.add(names[1], l.p99, "ms");
        self.add(names[2], l.p999, "ms");
        self.add(names[3], l.max, "ms");
    }

    pub fn print(&self, json: bool) {
        if json {
            let mut map = serde_json::Map::new();
            map.insert("mode".into(), self.mode.into());
            for (name, value, _) in &self.rows {
                map.insert((*name).into(), (*value).into());
            }
            println!("{}", serde_json::Value::Object(map));
            return;
        }
        println!("{}", self.mode);
        for (name, value, unit) in &self.rows {
            let shown = if value.fract() == 0.0 && value.abs() < 1e15 {
                format!("{value:.0}")
            } else if value.abs() >= 100.0 {
                format!("{value:.1}")
            } else {
                format!("{value:.3}")
            };
            println!("  {name:<24} {shown:>14} {unit}");
        }
    }
}

/// Which latency figures a set of percentiles is reported as.
#[derive(Clone, Copy)]
pub enum Prefix {
    Produce,
    EndToEnd,
}

impl Prefix {
    fn names(self) -> [&'static str; 4] {
        match self {
            Prefix::Produce => [
                "produce_p50_ms",
                "produce_p99_ms",
                "produce_p999_ms",
                "produce_max_ms",
            ],
            Prefix::EndToEnd => ["e2e_p50_ms", "e2e_p99_ms", "e2e_p999_ms", "e2e_max_ms"],
        }
    }
}

/// Latency samples in microseconds. Every sample is kept (8 bytes each), so
/// the percentiles are exact rather than bucketed.
#[derive(Default)]
pub struct Latencies(Vec<u64>);

pub struct Summary {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.0.push(d.as_micros() as u64);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn summary(&mut self) -> Summary {
        self.0.sort_unstable();
        let at = |q: f64| {
            if self.0.is_empty() {
                return f64::NAN;
            }
            let i = ((self.0.len() as f64 * q).ceil() as usize).clamp(1, self.0.len()) - 1;
            self.0[i] as f64 / 1000.0
        };
        Summary {
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        }
    }
}

/// A progress line on stderr, at most once a second, for long runs.
pub struct Progress {
    label: &'static str,
    start: Instant,
    last: Instant,
}

impl Progress {
    pub fn new(label: &'static str) -> Progress {
        let now = Instant::now();
        Progress {
            label,
            start: now,
            last: now,
        }
    }

    pub fn tick(&mut self, done: u64, total: u64, bytes: u64) {
        if self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = Instant::now();
        let secs = self.start.elapsed().as_secs_f64();
        eprint!(
            "\r{}: {done}/{total} records, {:.1} MB/s   ",
            self.label,
            bytes as f64 / 1e6 / secs
        );
        let _ = std::io::stderr().flush();
    }

    pub fn done(&self) {
        if self.start.elapsed() >= Duration::from_secs(1) {
            eprintln!();
        }
    }
}

/// A record value of `size` bytes that compresses like real data would not:
/// a xorshift stream, different for every record.
pub fn payload(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size);
    out
}
