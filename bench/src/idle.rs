//! `idle-fetch`: many consumers long-polling idle partitions while one
//! producer writes to another partition. It measures what the idle
//! consumers cost the broker: its CPU seconds per produced GiB (read from
//! `/proc/<pid>/stat` when `--broker-pid` is given) and the producer's
//! latency. A broker that wakes every parked fetch on every append pays for
//! each idle consumer on each produce.
//!
//! The idle consumers are raw Kafka Fetch loops (one connection each, the
//! `max_wait_ms` librdkafka uses by default), not librdkafka consumers: a
//! thousand librdkafka instances would need thousands of threads on the
//! load generator's side, which would measure the load generator.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::Producer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::kafka::{create_topic, finish, producer, send, Client, ProducerSettings, TopicSettings};
use crate::report::{payload, Prefix, Progress, Report};

#[derive(clap::Args, Debug)]
pub struct IdleFetchArgs {
    #[command(flatten)]
    pub client: Client,
    #[command(flatten)]
    pub producer: ProducerSettings,
    /// The topic whose partitions the idle consumers wait on.
    #[arg(long, default_value = "bench-idle")]
    pub idle_topic: String,
    /// How many idle partitions, one consumer parked on each.
    #[arg(long, default_value_t = 1000)]
    pub idle_partitions: i32,
    /// The one-partition topic the producer writes to.
    #[arg(long, default_value = "bench-busy")]
    pub topic: String,
    #[arg(long, default_value_t = 200_000)]
    pub records: u64,
    /// The broker's process id, to read its CPU time from /proc.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// The consumers' long-poll wait.
    #[arg(long, default_value_t = 500)]
    pub max_wait_ms: i32,
    /// Records per second the producer sends (0: as fast as it can). A
    /// paced producer's latency is the broker's, not its own queue's.
    #[arg(long, default_value_t = 20_000)]
    pub rate: u64,
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: utime and stime are the 12th and 13th of them.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // The kernel reports these in USER_HZ ticks, which is 100 on every
    // Linux architecture this runs on.
    Ok(ticks / 100.0)
}

fn fetch_frame(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    id: i32,
) -> Result<Bytes> {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(52_428_800)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1_048_576)])]);
    strata_protocol::encode_request(12, id, "strata-bench-idle", &req)
        .map_err(|e| anyhow::anyhow!("encoding a fetch: {e}"))
}

/// One idle consumer: Fetch at the partition's end, again and again, until
/// `stop`. Counts the answers.
async fn idle_consumer(
    addr: String,
    topic: String,
    partition: i32,
    max_wait_ms: i32,
    stop: Arc<AtomicBool>,
    answers: Arc<AtomicU64>,
) -> Result<()> {
    let mut s = TcpStream::connect(&addr).await?;
    s.set_nodelay(true)?;
    let mut id = 0;
    while !stop.load(Ordering::Relaxed) {
        id += 1;
        s.write_all(&fetch_frame(&topic, partition, 0, max_wait_ms, id)?)
            .await?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).await?;
        answers.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

pub fn idle_fetch(a: &IdleFetchArgs) -> Result<Report> {
    // With no idle partitions the run is the baseline: the same producer
    // alone.
    if a.idle_partitions > 0 {
        create_topic(
            &a.client,
            &a.idle_topic,
            &TopicSettings {
                partitions: a.idle_partitions,
                configs: Vec::new(),
            },
        )?;
    }
    create_topic(
        &a.client,
        &a.topic,
        &TopicSettings {
            partitions: 1,
            configs: Vec::new(),
        },
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(AtomicU64::new(0));
    let consumers: Vec<_> = (0..a.idle_partitions)
        .map(|p| {
            runtime.spawn(idle_consumer(
                a.client.bootstrap.clone(),
                a.idle_topic.clone(),
                p,
                a.max_wait_ms,
                Arc::clone(&stop),
                Arc::clone(&answers),
            ))
        })
        .collect();
    // Let every consumer connect and park.
    if a.idle_partitions > 0 {
        std::thread::sleep(Duration::from_millis(2 * a.max_wait_ms as u64 + 500));
    }
    let parked_answers = answers.load(Ordering::Relaxed);

    let p = producer(&a.client, &a.producer)?;
    let pool: Vec<Vec<u8>> = (0..1024).map(|i| payload(a.producer.size, i)).collect();
    let cpu_before = a.broker_pid.map(cpu_seconds).transpose()?;
    let mut progress = Progress::new("idle-fetch");
    let start = Instant::now();
    for i in 0..a.records {
        if a.rate > 0 && i % 64 == 0 {
            // Paced in steps of 64 records against the clock, so that the
            // rate holds however long each send takes.
            let due = start + Duration::from_secs_f64(i as f64 / a.rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        send(&p, &a.topic, 0, &pool[i as usize % pool.len()])?;
        if i % 4096 == 0 {
            let acked = p.context().acked.load(std::sync::atomic::Ordering::Relaxed);
            progress.tick(acked, a.records, acked * a.producer.size as u64);
        }
    }
    finish(&p)?;
    let elapsed = start.elapsed();
    let cpu_after = a.broker_pid.map(cpu_seconds).transpose()?;
    progress.done();
    let answered = answers.load(Ordering::Relaxed) - parked_answers;
    stop.store(true, Ordering::Relaxed);
    runtime.block_on(async {
        for c in consumers {
            if let Ok(Err(e)) = c.await {
                bail!("an idle consumer failed: {e}");
            }
        }
        Ok(())
    })?;

    let bytes = a.records * a.producer.size as u64;
    let mut r = Report::new("idle-fetch");
    r.add("idle_partitions", a.idle_partitions as f64, "");
    r.add("record_bytes", a.producer.size as f64, "B");
    r.add_rates(a.records, bytes, elapsed);
    r.add_latencies(Prefix::Produce, &mut p.context().latencies.lock().unwrap());
    r.add(
        "idle_answers_per_sec",
        answered as f64 / elapsed.as_secs_f64(),
        "/s",
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let cpu = after - before;
        r.add("broker_cpu_seconds", cpu, "s");
        r.add(
            "broker_cpu_seconds_per_gib",
            cpu / (bytes as f64 / (1u64 << 30) as f64),
            "s/GiB",
        );
    }
    Ok(r)
}
