//! The client side of every broker mode, on librdkafka: the same load for
//! Strata and for any other Kafka-compatible broker.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::report::{payload, Latencies, Prefix, Progress, Report};

/// Connection and client settings shared by every mode.
#[derive(clap::Args, Clone, Debug)]
pub struct Client {
    /// The broker to drive, host:port.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Extra librdkafka settings for every client of the run, key=value.
    #[arg(short = 'X', value_parser = parse_kv)]
    pub extra: Vec<(String, String)>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not key=value"))
}

impl Client {
    /// The bootstrap address, then the mode's `defaults`, then `-X`
    /// settings, which override both.
    fn config(&self, defaults: &[(&str, String)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        for (k, v) in defaults {
            c.set(*k, v);
        }
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }

    fn consumer(&self) -> Result<BaseConsumer> {
        // A group id is required by librdkafka even for assigned partitions;
        // nothing is committed.
        self.config(&[
            ("group.id", "strata-bench".into()),
            ("enable.auto.commit", "false".into()),
        ])
        .create()
        .context("creating the consumer")
    }
}

/// Producer settings shared by `produce` and `e2e`.
#[derive(clap::Args, Clone, Debug)]
pub struct ProducerSettings {
    /// Record value size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// acks: 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// Compression codec: none, gzip, snappy, lz4.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// linger.ms of the producer (librdkafka's default is 5).
    #[arg(long)]
    pub linger_ms: Option<u64>,
    /// Turn on enable.idempotence.
    #[arg(long)]
    pub idempotence: bool,
}

/// The topic a run writes to, created with these settings unless it exists.
#[derive(clap::Args, Clone, Debug)]
pub struct TopicSettings {
    /// Partitions of the topic; records go round-robin.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Topic configs for its creation, key=value (for example
    /// segment.bytes=16777216 or local.retention.bytes=1).
    #[arg(long = "topic-config", value_parser = parse_kv)]
    pub configs: Vec<(String, String)>,
}

/// An admin client of `client`'s broker, and a runtime to wait for its
/// answers on.
fn admin(client: &Client) -> Result<(AdminClient<DefaultClientContext>, tokio::runtime::Runtime)> {
    let admin = client
        .config(&[])
        .create()
        .context("creating the admin client")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok((admin, rt))
}

/// Creates `topic` unless it exists.
pub fn create_topic(client: &Client, topic: &str, settings: &TopicSettings) -> Result<()> {
    let (admin, rt) = admin(client)?;
    let mut new = NewTopic::new(topic, settings.partitions, TopicReplication::Fixed(1));
    for (k, v) in &settings.configs {
        new = new.set(k, v);
    }
    let results = rt.block_on(admin.create_topics(
        &[new],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => bail!("creating topic {t}: {e}"),
        }
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub client: Client,
    /// Topics to delete.
    #[arg(long = "topic", required = true)]
    pub topics: Vec<String>,
}

/// Deletes topics (a missing one is not an error), so that a long script
/// keeps the disk it uses bounded.
pub fn delete_topics(a: &DeleteArgs) -> Result<Report> {
    let (admin, rt) = admin(&a.client)?;
    let names: Vec<&str> = a.topics.iter().map(String::as_str).collect();
    let results = rt.block_on(admin.delete_topics(
        &names,
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((t, e)) => bail!("deleting topic {t}: {e}"),
        }
    }
    let mut r = Report::new("delete topics");
    r.add("topics", names.len() as f64, "");
    Ok(r)
}

/// Delivery bookkeeping: the send instant travels with each record as its
/// opaque. librdkafka calls `delivery` from its own polling thread only.
pub(crate) struct Timing {
    pub(crate) latencies: Mutex<Latencies>,
    pub(crate) acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Timing {}

impl ProducerContext for Timing {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Instant>) {
        match result {
            Ok(_) => {
                self.latencies.lock().unwrap().record(sent.elapsed());
                self.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_error
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| e.to_string());
            }
        }
    }
}

pub(crate) fn producer(client: &Client, s: &ProducerSettings) -> Result<ThreadedProducer<Timing>> {
    let mut defaults = vec![
        ("acks", s.acks.clone()),
        ("compression.type", s.compression.clone()),
        ("enable.idempotence", s.idempotence.to_string()),
        ("queue.buffering.max.messages", "1000000".to_string()),
        ("queue.buffering.max.kbytes", "1048576".to_string()),
    ];
    if let Some(l) = s.linger_ms {
        defaults.push(("linger.ms", l.to_string()));
    }
    let c = client.config(&defaults);
    let timing = Timing {
        latencies: Mutex::new(Latencies::default()),
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
    };
    c.create_with_context(timing)
        .context("creating the producer")
}

/// Sends one record, waiting while librdkafka's queue is full.
pub(crate) fn send(
    p: &ThreadedProducer<Timing>,
    topic: &str,
    partition: i32,
    value: &[u8],
) -> Result<()> {
    send_keyed(p, topic, partition, None, value, None)
}

pub(crate) fn send_keyed(
    p: &ThreadedProducer<Timing>,
    topic: &str,
    partition: i32,
    key: Option<&[u8]>,
    value: &[u8],
    timestamp: Option<i64>,
) -> Result<()> {
    let mut record =
        BaseRecord::<[u8], [u8], Box<Instant>>::with_opaque_to(topic, Box::new(Instant::now()))
            .partition(partition)
            .payload(value);
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(ts) = timestamp {
        record = record.timestamp(ts);
    }
    loop {
        match p.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => bail!("producing: {e}"),
        }
    }
}

pub(crate) fn finish(p: &ThreadedProducer<Timing>) -> Result<()> {
    p.flush(Duration::from_secs(600))
        .context("waiting for the last acknowledgements")?;
    let ctx = p.context();
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!(
            "{failed} records were not acknowledged; the first error: {}",
            ctx.first_error.lock().unwrap().as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub client: Client,
    #[command(flatten)]
    pub producer: ProducerSettings,
    #[arg(long, default_value = "bench")]
    pub topic: String,
    #[command(flatten)]
    pub topic_settings: TopicSettings,
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Give records keys out of this many (record i gets key i mod N), as
    /// updates of a compacted topic; 0 sends them without keys.
    #[arg(long, default_value_t = 0)]
    pub keys: u64,
    /// Produce in transactions, committing one every this many
    /// milliseconds (a transactional producer, so idempotent too).
    #[arg(long)]
    pub transaction_ms: Option<u64>,
    /// Give the records CreateTime timestamps spread evenly from this many
    /// days ago up to now, as history produced over that time would have
    /// (for timestamp seeks into the past).
    #[arg(long)]
    pub backdate_days: Option<f64>,
    /// Values are JSON events of the record size, with an `event_ts`
    /// (milliseconds) spread out of order over the last day, a `user` and
    /// an `amount`, as the lake view's benchmark translates.
    #[arg(long)]
    pub json_events: bool,
}

/// The `i`-th JSON event of about `size` bytes: its event time steps back
/// over the day before `now_ms` in a scattered order, its user and amount
/// vary, and its padding is one of 1,024 random strings, so that every
/// value is distinct but compresses as text does.
fn json_event(size: usize, i: u64, now_ms: i64, pads: &[String]) -> Vec<u8> {
    let step = 86_400_000 / 1024;
    let back = (i * 389 % 1024) as i64 * step;
    let head = format!(
        r#"{{"event_ts":{},"user":"u{}","amount":{}.5,"seq":{i},"pad":""#,
        now_ms - back - (i % 1000) as i64,
        i % 9973,
        i % 100_000
    );
    let pad = &pads[(i as usize) % pads.len()];
    let n = size.saturating_sub(head.len() + 2).min(pad.len());
    format!("{head}{}\"}}", &pad[..n]).into_bytes()
}

pub fn produce(a: &ProduceArgs) -> Result<Report> {
    create_topic(&a.client, &a.topic, &a.topic_settings)?;
    let mut client = a.client.clone();
    if a.transaction_ms.is_some() {
        client.extra.insert(
            0,
            (
                "transactional.id".into(),
                format!("strata-bench-{}", std::process::id()),
            ),
        );
    }
    let mut settings = a.producer.clone();
    // librdkafka refuses a transactional producer without idempotence.
    settings.idempotence |= a.transaction_ms.is_some();
    let p = producer(&client, &settings)?;
    let txn_timeout = Duration::from_secs(60);
    let mut transactions = 0u64;
    let mut last_commit = Instant::now();
    if a.transaction_ms.is_some() {
        p.init_transactions(txn_timeout)
            .context("initialising transactions")?;
        p.begin_transaction().context("beginning a transaction")?;
    }
    // A pool of distinct values, so that compression sees realistic data
    // without generating every record.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let pool: Vec<Vec<u8>> = (0..1024).map(|i| payload(a.producer.size, i)).collect();
    let pads: Vec<String> = (0..1024)
        .map(|i| {
            payload(a.producer.size.div_ceil(2), i + 7)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .collect();
    let mut progress = Progress::new("produce");
    let span_ms = a.backdate_days.map(|d| (d * 86_400_000.0) as i64);
    let start = Instant::now();
    for i in 0..a.records {
        let key = (a.keys > 0).then(|| format!("key-{:010}", i % a.keys));
        let timestamp =
            span_ms.map(|span| now_ms - span + (span as f64 * i as f64 / a.records as f64) as i64);
        let event;
        let value: &[u8] = if a.json_events {
            event = json_event(a.producer.size, i, now_ms, &pads);
            &event
        } else {
            &pool[i as usize % pool.len()]
        };
        send_keyed(
            &p,
            &a.topic,
            (i % a.topic_settings.partitions as u64) as i32,
            key.as_deref().map(str::as_bytes),
            value,
            timestamp,
        )?;
        if let Some(ms) = a.transaction_ms {
            if last_commit.elapsed() >= Duration::from_millis(ms) {
                p.commit_transaction(txn_timeout)
                    .context("committing a transaction")?;
                p.begin_transaction().context("beginning a transaction")?;
                transactions += 1;
                last_commit = Instant::now();
            }
        }
        if i % 4096 == 0 {
            let acked = p.context().acked.load(Ordering::Relaxed);
            progress.tick(acked, a.records, acked * a.producer.size as u64);
        }
    }
    if a.transaction_ms.is_some() {
        p.commit_transaction(txn_timeout)
            .context("committing a transaction")?;
        transactions += 1;
    }
    finish(&p)?;
    let elapsed = start.elapsed();
    progress.done();
    let mut r = Report::new("produce");
    if a.transaction_ms.is_some() {
        r.add("transactions", transactions as f64, "");
    }
    r.add("partitions", a.topic_settings.partitions as f64, "");
    r.add("record_bytes", a.producer.size as f64, "B");
    r.add_rates(a.records, a.records * a.producer.size as u64, elapsed);
    r.add_latencies(Prefix::Produce, &mut p.context().latencies.lock().unwrap());
    Ok(r)
}

/// Where a consumer starts in each partition.
#[derive(Clone, Debug)]
pub enum From {
    Beginning,
    End,
    Offset(i64),
    /// The first record at or after this timestamp (milliseconds since the
    /// epoch), found with ListOffsets.
    Timestamp(i64),
}

fn parse_from(s: &str) -> Result<From, String> {
    if let Some(days) = s.strip_prefix("days-ago:") {
        let days: f64 = days
            .parse()
            .map_err(|_| format!("`{s}`: days-ago:N takes a number of days"))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_millis() as i64;
        return Ok(From::Timestamp(now - (days * 86_400_000.0) as i64));
    }
    if let Some(ts) = s.strip_prefix("timestamp:") {
        return ts
            .parse()
            .map(From::Timestamp)
            .map_err(|_| format!("`{s}`: timestamp:MS takes milliseconds since the epoch"));
    }
    match s {
        "beginning" | "earliest" => Ok(From::Beginning),
        "end" | "latest" => Ok(From::End),
        n => n
            .parse()
            .map(From::Offset)
            .map_err(|_| format!("`{s}` is not beginning, end or an offset")),
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub client: Client,
    #[arg(long, default_value = "bench")]
    pub topic: String,
    /// Records to read in all; by default everything from the start point to
    /// the high watermarks at start.
    #[arg(long)]
    pub records: Option<u64>,
    /// beginning, end, an offset applied to every partition, or
    /// `timestamp:MS` / `days-ago:N` (each partition's first record at or
    /// after that time).
    #[arg(long, default_value = "beginning", value_parser = parse_from)]
    pub from: From,
    /// Give up when no record arrives for this long.
    #[arg(long, default_value_t = 30)]
    pub idle_timeout_secs: u64,
}

/// Assigns every partition of `topic` at `from`; returns how many records lie
/// between the start points and the high watermarks.
fn assign(c: &BaseConsumer, topic: &str, from: &From) -> Result<u64> {
    let meta = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .context("fetching metadata")?;
    let Some(t) = meta.topics().iter().find(|t| t.name() == topic) else {
        bail!("topic {topic} not found");
    };
    if t.partitions().is_empty() {
        bail!("topic {topic} has no partitions (does it exist?)");
    }
    let by_time = match from {
        From::Timestamp(ts) => {
            let mut ask = TopicPartitionList::new();
            for p in t.partitions() {
                ask.add_partition_offset(topic, p.id(), Offset::Offset(*ts))?;
            }
            c.offsets_for_times(ask, Duration::from_secs(60))
                .context("looking up offsets by timestamp")?
        }
        _ => TopicPartitionList::new(),
    };
    let mut tpl = TopicPartitionList::new();
    let mut available = 0u64;
    for p in t.partitions() {
        let (low, high) = c
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .context("fetching watermarks")?;
        let start = match from {
            From::Beginning => low,
            From::End => high,
            From::Offset(o) => (*o).clamp(low, high),
            From::Timestamp(_) => match by_time.find_partition(topic, p.id()).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                // No record at or after the time: the end.
                _ => high,
            },
        };
        available += (high - start).max(0) as u64;
        tpl.add_partition_offset(topic, p.id(), Offset::Offset(start))?;
    }
    c.assign(&tpl)?;
    Ok(available)
}

pub fn consume(a: &ConsumeArgs, mode: &'static str) -> Result<Report> {
    let c = a.client.consumer()?;
    let seek_start = Instant::now();
    let available = assign(&c, &a.topic, &a.from)?;
    let seek = seek_start.elapsed();
    let want = a.records.unwrap_or(available);
    if want == 0 {
        bail!("nothing to read in {} from {:?}", a.topic, a.from);
    }
    let mut progress = Progress::new(mode);
    let start = Instant::now();
    let mut first = None;
    let (mut seen, mut bytes) = (0u64, 0u64);
    let mut last_record = Instant::now();
    while seen < want {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(|| start.elapsed());
                bytes += (m.payload_len() + m.key().map_or(0, <[u8]>::len)) as u64;
                seen += 1;
                last_record = Instant::now();
                progress.tick(seen, want, bytes);
            }
            Some(Err(e)) => bail!("consuming: {e}"),
            None if last_record.elapsed() > Duration::from_secs(a.idle_timeout_secs) => {
                bail!(
                    "no record for {}s after {seen} of {want}",
                    a.idle_timeout_secs
                )
            }
            None => {}
        }
    }
    let elapsed = start.elapsed();
    progress.done();
    let mut r = Report::new(mode);
    r.add_rates(seen, bytes, elapsed);
    r.add_ms("first_record_ms", first.unwrap_or_default());
    // The start point's lookup (metadata, watermarks and, for a time, the
    // offsets for it) before the first fetch.
    r.add_ms("seek_ms", seek);
    Ok(r)
}

#[derive(clap::Args, Debug)]
pub struct E2eArgs {
    #[command(flatten)]
    pub client: Client,
    #[command(flatten)]
    pub producer: ProducerSettings,
    #[arg(long, default_value = "bench-e2e")]
    pub topic: String,
    #[command(flatten)]
    pub topic_settings: TopicSettings,
    /// Records per second, spread evenly.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Samples from the first seconds are left out (connection set-up).
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// Meanwhile, replay this topic from its beginning in another consumer
    /// (its history in the cold tier), and report both.
    #[arg(long)]
    pub replay_topic: Option<String>,
}

/// A replay running beside the measured load; counts what it reads until
/// told to stop.
struct Beside {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Result<(u64, Duration)>>,
}

fn replay_beside(client: &Client, topic: &str) -> Result<Beside> {
    let c = client.consumer()?;
    assign(&c, topic, &From::Beginning)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = thread::spawn(move || {
        let start = Instant::now();
        let mut bytes = 0u64;
        while !flag.load(Ordering::Relaxed) {
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                let m = m?;
                bytes += m.payload_len() as u64;
            }
        }
        Ok((bytes, start.elapsed()))
    });
    Ok(Beside { stop, handle })
}

pub fn e2e(a: &E2eArgs) -> Result<Report> {
    if a.producer.size < 8 {
        bail!("--size must be at least 8: each value carries its send time");
    }
    create_topic(&a.client, &a.topic, &a.topic_settings)?;
    let c = a.client.consumer()?;
    assign(&c, &a.topic, &From::End)?;
    let p = producer(&a.client, &a.producer)?;
    let beside = a
        .replay_topic
        .as_deref()
        .map(|t| replay_beside(&a.client, t))
        .transpose()?;

    let total = a.rate * a.seconds;
    let warmup_until = Duration::from_secs(a.warmup_secs);
    let start = Instant::now();
    let consumer = thread::spawn(move || -> Result<(Latencies, u64)> {
        let mut lat = Latencies::default();
        let mut seen = 0u64;
        let mut idle = Instant::now();
        while seen < total && idle.elapsed() < Duration::from_secs(30) {
            let Some(m) = c.poll(Duration::from_millis(100)) else {
                continue;
            };
            let m = m?;
            idle = Instant::now();
            seen += 1;
            let v = m.payload().unwrap_or_default();
            let sent = u64::from_le_bytes(v[..8].try_into()?);
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
            if start.elapsed() >= warmup_until {
                lat.record(Duration::from_nanos(now.saturating_sub(sent)));
            }
        }
        Ok((lat, seen))
    });

    let mut value = payload(a.producer.size, 7);
    let mut progress = Progress::new("e2e");
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / a.rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
        value[..8].copy_from_slice(&now.to_le_bytes());
        send(
            &p,
            &a.topic,
            (i % a.topic_settings.partitions as u64) as i32,
            &value,
        )?;
        progress.tick(i, total, i * a.producer.size as u64);
    }
    finish(&p)?;
    let produced_in = start.elapsed();
    let (mut lat, seen) = consumer.join().expect("the consumer thread panicked")?;
    progress.done();
    let mut r = Report::new("e2e");
    r.add("target_rate", a.rate as f64, "rec/s");
    r.add(
        "achieved_rate",
        total as f64 / produced_in.as_secs_f64(),
        "rec/s",
    );
    r.add("consumed", seen as f64, "");
    r.add("samples", lat.len() as f64, "");
    r.add_latencies(Prefix::EndToEnd, &mut lat);
    r.add_latencies(Prefix::Produce, &mut p.context().latencies.lock().unwrap());
    if let Some(b) = beside {
        b.stop.store(true, Ordering::Relaxed);
        let (bytes, elapsed) = b.handle.join().expect("the replay thread panicked")?;
        r.add(
            "replay_mb_per_sec",
            bytes as f64 / 1e6 / elapsed.as_secs_f64(),
            "MB/s",
        );
    }
    if seen < total {
        eprintln!("warning: only {seen} of {total} records came back within 30 s of the last one");
    }
    Ok(r)
}
