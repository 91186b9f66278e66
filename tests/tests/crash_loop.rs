//! The crash loop: an idempotent acks=all producer and a committing consumer
//! group run while the broker is killed with SIGKILL at random moments and
//! restarted, with small segments and tiering every 100 ms so that uploads
//! and local deletions happen during the chaos. At the end every partition
//! is read from offset 0 through both tiers and checked: every acknowledged
//! record present exactly once at its acknowledged offset, offsets
//! contiguous, nothing that was never sent, committed offsets not behind
//! what was committed.
//!
//! The suite runs a short loop; a long one runs on demand:
//!
//! ```sh
//! cargo build --bin strata && STRATA_CRASH_CYCLES=100 \
//!   cargo test -p strata-tests --test crash_loop -- --nocapture
//! ```
//!
//! `STRATA_CRASH_SEED` replays a run's kill schedule.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use strata_tests::raw::Conn;
use strata_tests::Broker;

const TOPIC: &str = "chaos";
const PARTITIONS: i32 = 2;
const GROUP: &str = "chaos-group";

/// What the producer learned: acknowledged records by (partition, offset),
/// and how many deliveries failed.
#[derive(Default)]
struct Deliveries {
    acked: Mutex<BTreeMap<(i32, i64), String>>,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

struct Recorder(Arc<Deliveries>);

impl ClientContext for Recorder {}

impl ProducerContext for Recorder {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                let value = String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap();
                let previous = self
                    .0
                    .acked
                    .lock()
                    .unwrap()
                    .insert((m.partition(), m.offset()), value.clone());
                assert!(
                    previous.is_none(),
                    "offset {}/{} acknowledged twice: {previous:?} and {value}",
                    m.partition(),
                    m.offset()
                );
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                *self.0.last_error.lock().unwrap() = Some(e.to_string());
            }
        }
    }
}

/// Produces "p{partition}-{seq:08}" records round the partitions until
/// `stop`, as fast as the producer's queue takes them; returns how many
/// were handed to the producer per partition.
fn produce(producer: &ThreadedProducer<Recorder>, stop: &AtomicBool) -> Vec<u64> {
    let mut sent = vec![0u64; PARTITIONS as usize];
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let p = (i % PARTITIONS as u64) as i32;
        let value = format!("p{p}-{:08}", sent[p as usize]);
        match producer.send(
            BaseRecord::<str, str>::to(TOPIC)
                .partition(p)
                .payload(&value),
        ) {
            Ok(()) => {
                sent[p as usize] += 1;
                i += 1;
            }
            Err((_, _)) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    sent
}

/// Consumes with a group and commits its position every 100 ms; returns
/// the last offsets a commit was acknowledged for.
fn commit_loop(addr: String, stop: Arc<AtomicBool>) -> HashMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &addr)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "200")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut committed = HashMap::new();
    let mut next_commit = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let _ = consumer.poll(Duration::from_millis(50));
        if Instant::now() >= next_commit {
            next_commit = Instant::now() + Duration::from_millis(100);
            let Ok(position) = consumer.position() else {
                continue;
            };
            let mut valid = TopicPartitionList::new();
            for e in position.elements() {
                if let Offset::Offset(o) = e.offset() {
                    valid
                        .add_partition_offset(TOPIC, e.partition(), Offset::Offset(o))
                        .unwrap();
                }
            }
            if valid.count() > 0 && consumer.commit(&valid, CommitMode::Sync).is_ok() {
                for e in valid.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        committed.insert(e.partition(), o);
                    }
                }
            }
        }
    }
    committed
}

#[test]
fn acknowledged_records_survive_a_crash_loop_through_both_tiers() {
    let cycles = strata_tests::crash_cycles(4);
    let seed = strata_tests::crash_seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    println!("crash loop: {cycles} cycles, seed {seed}");
    let mut broker = Broker::start(&[
        "--set",
        "log.segment.bytes=65536",
        "--set",
        "remote.log.manager.task.interval.ms=100",
        "--set",
        "log.retention.check.interval.ms=100",
        "--set",
        "group.initial.rebalance.delay.ms=0",
    ]);
    {
        let mut c = Conn::connect(&broker.addr());
        let created = c.create_topic(TOPIC, PARTITIONS, &[("local.retention.bytes", "1")]);
        assert_eq!(created.error_code, 0);
    }

    let deliveries = Arc::new(Deliveries::default());
    let producer: ThreadedProducer<Recorder> = strata_tests::crash_producer_config(&broker.addr())
        .set("batch.size", "16384")
        .create_with_context(Recorder(Arc::clone(&deliveries)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let committer = {
        let (addr, stop) = (broker.addr(), Arc::clone(&stop));
        std::thread::spawn(move || commit_loop(addr, stop))
    };

    let started = Instant::now();
    let mut restart_times = Vec::with_capacity(cycles);
    let sent = std::thread::scope(|s| {
        let producing = s.spawn(|| produce(&producer, &stop));
        for cycle in 0..cycles {
            std::thread::sleep(Duration::from_millis(rng.u64(50..600)));
            broker.kill();
            let t = Instant::now();
            broker.restart();
            restart_times.push(t.elapsed());
            if cycle % 10 == 9 {
                println!(
                    "  cycle {}: {} acknowledged so far",
                    cycle + 1,
                    deliveries.acked.lock().unwrap().len()
                );
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        producing.join().unwrap()
    });
    let chaos = started.elapsed();
    assert_eq!(
        producer
            .flush(Duration::from_secs(120))
            .map_err(|e| e.to_string()),
        Ok(()),
        "in-flight records were not resolved"
    );
    let committed = committer.join().unwrap();

    let acked = deliveries.acked.lock().unwrap().clone();
    let failed = deliveries.failed.load(Ordering::Relaxed);
    assert_eq!(
        failed,
        0,
        "deliveries failed (last: {:?})",
        deliveries.last_error.lock().unwrap()
    );

    // One more crash, so that the final read also follows a recovery, then
    // read everything from offset 0.
    broker.kill();
    broker.restart();
    let mut c = Conn::connect(&broker.addr());
    let mut ends = Vec::new();
    for p in 0..PARTITIONS {
        let start = c.list_offset(TOPIC, p, -2).offset;
        assert_eq!(start, 0, "partition {p} lost its beginning");
        ends.push(c.list_offset(TOPIC, p, -1).offset);
    }
    let consumer = strata_tests::consumer_from_start(&broker.addr(), TOPIC, PARTITIONS);
    let total: i64 = ends.iter().sum();
    let mut read: Vec<Vec<(i64, String)>> = vec![Vec::new(); PARTITIONS as usize];
    let deadline = Instant::now() + Duration::from_secs(120);
    while read.iter().map(|r| r.len() as i64).sum::<i64>() < total && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("consume");
            let value = String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap();
            read[m.partition() as usize].push((m.offset(), value));
        }
    }

    for p in 0..PARTITIONS {
        let records = &read[p as usize];
        assert_eq!(
            records.len() as i64,
            ends[p as usize],
            "partition {p}: read {} of {} records",
            records.len(),
            ends[p as usize]
        );
        let mut seen = HashMap::new();
        for (i, (offset, value)) in records.iter().enumerate() {
            assert_eq!(*offset, i as i64, "partition {p}: offsets not contiguous");
            let seq: u64 = value
                .strip_prefix(&format!("p{p}-"))
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    panic!("partition {p} offset {offset}: foreign record {value:?}")
                });
            assert!(
                seq < sent[p as usize],
                "partition {p}: record {value} was never sent"
            );
            if let Some(first) = seen.insert(value.clone(), *offset) {
                panic!("partition {p}: {value} stored twice, at {first} and {offset}");
            }
        }
        for ((_, offset), value) in acked.range((p, i64::MIN)..(p + 1, i64::MIN)) {
            assert_eq!(
                records.get(*offset as usize).map(|(_, v)| v),
                Some(value),
                "partition {p}: acknowledged {value} missing at offset {offset}"
            );
        }
    }

    // Committed offsets are not behind the last acknowledged commit.
    let check: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("group.id", GROUP)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    let stored = check
        .committed_offsets(tpl, Duration::from_secs(30))
        .unwrap();
    for (p, want) in &committed {
        let got = stored
            .find_partition(TOPIC, *p)
            .map(|e| e.offset())
            .unwrap_or(Offset::Invalid);
        assert!(
            matches!(got, Offset::Offset(o) if o >= *want),
            "partition {p}: committed {want}, the group has {got:?}"
        );
    }

    let tiered: i64 = (0..PARTITIONS)
        .map(|p| c.list_offset(TOPIC, p, -4).offset)
        .sum();
    restart_times.sort();
    println!(
        "crash loop: {cycles} kills in {:.1} s; {} records acknowledged, {} sent, {} stored, 0 lost, 0 duplicated; \
         {} records only in the cold tier at the end; restart p50 {} ms, max {} ms; commits checked on {} partitions",
        chaos.as_secs_f64(),
        acked.len(),
        sent.iter().sum::<u64>(),
        total,
        tiered,
        restart_times[restart_times.len() / 2].as_millis(),
        restart_times.last().unwrap().as_millis(),
        committed.len(),
    );
    assert!(
        tiered > 0,
        "no history reached the cold tier: the loop did not exercise tiering"
    );
}
