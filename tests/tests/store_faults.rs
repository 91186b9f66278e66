//! The object store misbehaves: a proxy in front of the S3 test server
//! (s3s-fs) delays requests, answers 500 and 503, drops connections before
//! and after the server did the work, cuts bodies short, and finally stops
//! answering at all. Uploads must retry and complete, reads of history must
//! return the right bytes or a retriable error within the fetch wait, and
//! producers and consumers of the hot tier must not notice.
//!
//! `STRATA_FAULT_SEED` replays one schedule of faults; the seed of each run
//! is printed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::records::RecordBatchDecoder;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use strata_tests::fault_proxy::{FaultProxy, Mode};
use strata_tests::raw::{topic_name, Conn};
use strata_tests::{Broker, S3Server, SMALL_TIERED};

const HISTORY: &str = "history";
const HOT: &str = "hot";
const HISTORY_RECORDS: i64 = 12_000;
/// A topic whose 9 MiB segments are uploaded in multipart uploads (parts of
/// 8 MiB), so that faults hit their create, part and complete requests.
const BIG: &str = "big";
const BIG_RECORDS: i64 = 10_000;

/// Kafka's KAFKA_STORAGE_ERROR: retriable, clients refresh metadata and
/// fetch again.
const KAFKA_STORAGE_ERROR: i16 = 56;

fn value(topic: &str, i: i64) -> Vec<u8> {
    let pad = if topic == BIG { 1000 } else { i % 300 };
    format!("{topic}-{i}-{}", "x".repeat(pad as usize)).into_bytes()
}

fn producer(broker: &Broker) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("batch.size", "16384")
        .create()
        .unwrap()
}

fn local_segments(broker: &Broker, topic: &str) -> usize {
    std::fs::read_dir(broker.data_dir().join(format!("{topic}-0")))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .count()
        })
        .unwrap_or(0)
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Records of the hot topic left out of its latency figures.
const WARM_UP: i64 = 10;

/// What the producer of the hot topic saw while the store misbehaved.
#[derive(Default)]
struct HotLoad {
    acked: AtomicUsize,
    errors: Mutex<Vec<String>>,
    /// The slowest acknowledgements: latency and record index.
    slowest: Mutex<Vec<(Duration, i64)>>,
}

/// Produces to the hot topic one record at a time until `stop`, each
/// awaited, so that every record's latency is seen.
async fn hot_producer(broker_addr: String, load: Arc<HotLoad>, stop: Arc<AtomicBool>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker_addr)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let mut i = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let v = value(HOT, i);
        let started = Instant::now();
        match producer
            .send(
                FutureRecord::<(), [u8]>::to(HOT).partition(0).payload(&v),
                Duration::from_secs(30),
            )
            .await
        {
            Ok(d) => {
                assert_eq!(d.offset, i, "hot offsets follow the records");
                load.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                load.errors.lock().unwrap().push(e.to_string());
                break;
            }
        }
        // The first records wait for the producer id and the topic's
        // creation; the rest show what the store's faults do to the hot tier.
        if i > WARM_UP {
            let mut slowest = load.slowest.lock().unwrap();
            slowest.push((started.elapsed(), i));
            slowest.sort_by(|a, b| b.cmp(a));
            slowest.truncate(5);
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// Replays `n` records of `topic` from offset 0 with librdkafka (CRCs
/// checked), comparing each with what was produced.
fn replay(broker: &Broker, topic: &str, n: i64) {
    let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("group.id", "store-faults")
        .set("enable.auto.commit", "false")
        .set("check.crcs", "true")
        .set("fetch.wait.max.ms", "200")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut next = 0i64;
    while next < n {
        assert!(
            Instant::now() < deadline,
            "{topic}: replay stalled at offset {next}"
        );
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap_or_else(|e| panic!("{topic}: consumer error at {next}: {e}"));
        assert_eq!(m.offset(), next, "{topic}: offsets are contiguous");
        assert_eq!(
            m.payload(),
            Some(&value(topic, next)[..]),
            "{topic}: record {next}"
        );
        next += 1;
    }
}

fn fetch_request(topic: &str, offset: i64) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(256 << 10)])])
}

/// What one raw fetch of history returned.
struct Answer {
    took: Duration,
    error: i16,
    /// The next offset to fetch after checking every returned record.
    next: i64,
}

/// One Fetch at `offset`: decodes the returned batches (kafka-protocol
/// checks each batch's CRC-32C) and checks every record from `offset` on
/// against what was produced, so wrong or short bytes cannot pass.
fn fetch_and_check(c: &mut Conn, topic: &str, offset: i64) -> Answer {
    let started = Instant::now();
    let r = c.request(12, &fetch_request(topic, offset));
    let took = started.elapsed();
    let p = &r.responses[0].partitions[0];
    let mut next = offset;
    if let Some(mut records) = p.records.clone() {
        let sets = RecordBatchDecoder::decode_all(&mut records)
            .unwrap_or_else(|e| panic!("{topic}: fetch at {offset} returned bad batches: {e}"));
        for rec in sets.iter().flat_map(|s| s.records.iter()) {
            if rec.offset < next {
                continue;
            }
            assert_eq!(rec.offset, next, "{topic}: offsets are contiguous");
            assert_eq!(
                rec.value.as_deref(),
                Some(&value(topic, next)[..]),
                "{topic}: record {next}"
            );
            next += 1;
        }
    }
    Answer {
        took,
        error: p.error_code,
        next,
    }
}

/// Longest a history fetch may take: max(max_wait_ms, remote.fetch.max.wait.ms),
/// both 500 ms here, with room for a loaded two-core machine.
const FETCH_BOUND: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_faults_delay_tiering_but_lose_and_corrupt_nothing() {
    let seed = std::env::var("STRATA_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("fault schedule seed {seed} (STRATA_FAULT_SEED)");

    let s3 = S3Server::start();
    let proxy = FaultProxy::start(s3.port(), seed);
    let (url, env) = s3.broker_env_through(proxy.port());
    let mut args = SMALL_TIERED.to_vec();
    args.extend([
        "--remote",
        &url,
        // Small chunks and a cache of four of them, so that reading history
        // goes to the store again and again.
        "--set",
        "remote.log.reader.chunk.bytes=65536",
        "--set",
        "remote.log.reader.cache.bytes=262144",
    ]);
    let broker = Broker::start_with_env(&args, &env);
    proxy.set_mode(Mode::Faults {
        rate: 0.35,
        max_delay: Duration::from_millis(700),
    });

    // The hot tier's producer runs through every phase.
    let load = Arc::new(HotLoad::default());
    let stop = Arc::new(AtomicBool::new(false));
    let hot = tokio::spawn(hot_producer(
        broker.addr(),
        Arc::clone(&load),
        Arc::clone(&stop),
    ));

    // History, acknowledged while uploads fail around it.
    let mut c = Conn::connect(&broker.addr());
    let created = c.create_topic(BIG, 1, &[("segment.bytes", "9437184")]);
    assert_eq!(created.error_code, 0, "{:?}", created.error_message);
    let p = producer(&broker);
    for (topic, n) in [(HISTORY, HISTORY_RECORDS), (BIG, BIG_RECORDS)] {
        let pending: Vec<_> = (0..n)
            .map(|i| {
                let v = value(topic, i);
                p.send_result(FutureRecord::<(), [u8]>::to(topic).partition(0).payload(&v))
                    .map_err(|(e, _)| e)
                    .expect("enqueue")
            })
            .collect();
        for (i, d) in pending.into_iter().enumerate() {
            let d = d
                .await
                .unwrap()
                .unwrap_or_else(|(e, _)| panic!("{topic} record {i} not acknowledged: {e}"));
            assert_eq!(d.offset, i as i64);
        }
    }
    wait_until(
        "history was uploaded through the faults and left the hot tier",
        Duration::from_secs(240),
        || local_segments(&broker, HISTORY) <= 2 && local_segments(&broker, BIG) == 1,
    );
    let local_start = c.list_offset(HISTORY, 0, -4).offset;
    assert!(
        local_start > HISTORY_RECORDS / 2,
        "history is in the cold tier (local start {local_start})"
    );

    // A replay through the faults sees every record once, intact.
    let replay_started = Instant::now();
    replay(&broker, HISTORY, HISTORY_RECORDS);
    replay(&broker, BIG, BIG_RECORDS);
    let replay_took = replay_started.elapsed();

    // Raw fetches of the cold tier: the right bytes or a retriable error,
    // each answer within the fetch wait.
    let (mut offset, mut answers, mut storage_errors, mut slowest) = (0, 0, 0, Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(240);
    while offset < local_start {
        assert!(Instant::now() < deadline, "raw reads stalled at {offset}");
        let a = fetch_and_check(&mut c, HISTORY, offset);
        answers += 1;
        slowest = slowest.max(a.took);
        assert!(a.took < FETCH_BOUND, "fetch at {offset} took {:?}", a.took);
        match a.error {
            0 => {}
            KAFKA_STORAGE_ERROR => storage_errors += 1,
            e => panic!("fetch at {offset}: error {e}, not a retriable one"),
        }
        offset = a.next;
    }

    // The store stops answering: history reads come back empty within the
    // fetch wait, the hot tier carries on.
    proxy.set_mode(Mode::Stall);
    let acked_before_stall = load.acked.load(Ordering::Relaxed);
    let stall_started = Instant::now();
    while stall_started.elapsed() < Duration::from_secs(5) {
        let a = fetch_and_check(&mut c, HISTORY, 0);
        slowest = slowest.max(a.took);
        assert!(
            a.took < FETCH_BOUND,
            "fetch during the stall took {:?}",
            a.took
        );
        assert!(
            a.error == 0 || a.error == KAFKA_STORAGE_ERROR,
            "fetch during the stall: error {}",
            a.error
        );
    }
    let acked_during_stall = load.acked.load(Ordering::Relaxed) - acked_before_stall;
    proxy.set_mode(Mode::Pass);

    stop.store(true, Ordering::Relaxed);
    hot.await.unwrap();
    let hot_acked = load.acked.load(Ordering::Relaxed) as i64;
    assert!(
        load.errors.lock().unwrap().is_empty(),
        "the hot producer saw errors: {:?}",
        load.errors.lock().unwrap()
    );
    assert!(
        acked_during_stall > 0,
        "records were acknowledged while the store was stalled"
    );

    // Once the store behaves, the backlog drains and everything of both
    // topics reads back from offset 0 through both tiers.
    wait_until(
        "the backlog was uploaded after the stall",
        Duration::from_secs(120),
        || local_segments(&broker, HOT) <= 2 && local_segments(&broker, HISTORY) <= 2,
    );
    replay(&broker, HOT, hot_acked);
    replay(&broker, HISTORY, HISTORY_RECORDS);

    let counts = proxy.counts();
    println!(
        "store faults: {counts:?}; {answers} raw history fetches, {storage_errors} \
         KAFKA_STORAGE_ERROR, slowest answer {slowest:?}; hot producer {hot_acked} acked \
         ({acked_during_stall} during the stall), slowest acks (latency, record) {:?}; \
         replay of history through the faults {replay_took:?}",
        load.slowest.lock().unwrap()
    );
    for kind in [
        "delay",
        "status 500",
        "status 503",
        "drop request",
        "drop response",
        "truncate body",
        "stall",
    ] {
        assert!(
            counts.get(kind).copied().unwrap_or(0) > 0,
            "the schedule injected no {kind}: {counts:?}"
        );
    }
    for method in ["GET", "PUT"] {
        let faulted: usize = counts
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{method} ")) && !k.ends_with(" pass"))
            .map(|(_, n)| n)
            .sum();
        assert!(faulted > 0, "no {method} was faulted: {counts:?}");
    }
}
