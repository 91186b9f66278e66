//! Compaction under SIGKILL: an idempotent producer keeps updating a small
//! key set of a compacted topic with small segments, and a consumer group
//! keeps committing, while the cleaner runs every 50 ms and the broker is
//! killed at random moments and restarted. At the end the log is read from
//! offset 0 and checked: offsets increasing and never twice, the latest
//! acknowledged value of every key present at its acknowledged offset, an
//! acknowledged record missing only when a later record of its key
//! superseded it, reads from any offset starting where they should
//! (indexes valid), committed offsets kept, and the committed-offsets log
//! bounded however many commits it took.
//!
//! The suite runs a short loop; a long one runs on demand:
//!
//! ```sh
//! cargo build --bin strata && STRATA_CRASH_CYCLES=100 \
//!   cargo test -p strata-tests --test compaction_crash -- --nocapture
//! ```

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

const TOPIC: &str = "compacted-chaos";
const GROUP: &str = "compacted-chaos-group";
const KEYS: u64 = 50;

#[derive(Default)]
struct Deliveries {
    /// Acknowledged records: offset → (key, value).
    acked: Mutex<BTreeMap<i64, (String, String)>>,
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
                let key = String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap();
                let value = String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap();
                let previous = self
                    .0
                    .acked
                    .lock()
                    .unwrap()
                    .insert(m.offset(), (key, value));
                assert!(
                    previous.is_none(),
                    "offset {} acknowledged twice",
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

/// Updates the keys round-robin until `stop`; values name key and update.
fn produce(producer: &ThreadedProducer<Recorder>, stop: &AtomicBool) -> u64 {
    let mut i = 0u64;
    let pad = "x".repeat(80);
    while !stop.load(Ordering::Relaxed) {
        let key = format!("k{:03}", i % KEYS);
        let value = format!("{key}-{i:08}-{pad}");
        match producer.send(BaseRecord::to(TOPIC).partition(0).key(&key).payload(&value)) {
            Ok(()) => i += 1,
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
        // About ten thousand updates a second: fast enough that segments
        // roll and the cleaner is busy at every kill, slow enough that its
        // passes finish between kills.
        if i.is_multiple_of(16) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    i
}

/// Commits a moving position every 5 ms; returns the last acknowledged
/// commit and how many there were.
fn commit_loop(addr: String, stop: Arc<AtomicBool>) -> (Option<i64>, u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &addr)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "200")
        .create()
        .unwrap();
    let mut last = None;
    let mut commits = 0;
    let mut n = 0i64;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
        n += 1;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(TOPIC, 0, Offset::Offset(n))
            .unwrap();
        if consumer.commit(&tpl, CommitMode::Sync).is_ok() {
            last = Some(n);
            commits += 1;
        }
    }
    (last, commits)
}

/// Bytes of the segment files (`.log`) under `dir`; indexes are
/// preallocated, so they say nothing of how much the log holds.
fn log_bytes(dir: &std::path::Path) -> u64 {
    strata_tests::files_under(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn compaction_survives_sigkill_at_random_moments() {
    let cycles = strata_tests::crash_cycles(6);
    let seed = strata_tests::crash_seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    println!("compaction crash loop: {cycles} cycles, seed {seed}");
    let mut broker = Broker::start(&[
        "--set",
        "log.cleaner.backoff.ms=50",
        "--set",
        "offsets.topic.segment.bytes=4096",
        "--set",
        "group.initial.rebalance.delay.ms=0",
    ]);
    {
        let mut c = Conn::connect(&broker.addr());
        let created = c.create_topic(
            TOPIC,
            1,
            &[
                ("cleanup.policy", "compact"),
                ("segment.bytes", "16384"),
                ("min.cleanable.dirty.ratio", "0.01"),
            ],
        );
        assert_eq!(created.error_code, 0);
    }

    let deliveries = Arc::new(Deliveries::default());
    let producer: ThreadedProducer<Recorder> = strata_tests::crash_producer_config(&broker.addr())
        .create_with_context(Recorder(Arc::clone(&deliveries)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let committer = {
        let (addr, stop) = (broker.addr(), Arc::clone(&stop));
        std::thread::spawn(move || commit_loop(addr, stop))
    };
    let sent = std::thread::scope(|s| {
        let producing = s.spawn(|| produce(&producer, &stop));
        for _ in 0..cycles {
            std::thread::sleep(Duration::from_millis(rng.u64(200..900)));
            broker.kill();
            broker.restart();
        }
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        producing.join().unwrap()
    });
    assert_eq!(
        producer
            .flush(Duration::from_secs(120))
            .map_err(|e| e.to_string()),
        Ok(()),
        "in-flight records were not resolved"
    );
    let (last_commit, commits) = committer.join().unwrap();
    assert_eq!(
        deliveries.failed.load(Ordering::Relaxed),
        0,
        "deliveries failed (last: {:?})",
        deliveries.last_error.lock().unwrap()
    );
    let acked = deliveries.acked.lock().unwrap().clone();
    println!(
        "  {sent} sent, {} acknowledged, {commits} commits",
        acked.len()
    );

    // Crash once more so that the final read follows a recovery, then let
    // the cleaner finish (nothing dirty left below the active segment), so
    // that the log no longer changes while it is checked.
    broker.kill();
    broker.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = strata_tests::scrape(broker.metrics_addr());
        let dirty = text
            .lines()
            .find(|l| l.starts_with("strata_partition_dirty_ratio{") && l.contains(TOPIC))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
        if dirty == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cleaner did not catch up: {dirty:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut c = Conn::connect(&broker.addr());
    let end = c.list_offset(TOPIC, 0, -1).offset;
    let consumer = strata_tests::consumer_from_start(&broker.addr(), TOPIC, 1);
    let mut read: Vec<(i64, String, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.last().is_none_or(|r| r.0 < end - 1) && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("consume");
            read.push((
                m.offset(),
                String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
                String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap(),
            ));
        }
    }
    assert!(
        read.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets increase and none is stored twice"
    );
    assert!(
        (read.len() as i64) < end,
        "the cleaner removed superseded records ({} of {end} left)",
        read.len()
    );
    let at: HashMap<i64, (&str, &str)> = read
        .iter()
        .map(|(o, k, v)| (*o, (k.as_str(), v.as_str())))
        .collect();
    let mut last_read: HashMap<&str, i64> = HashMap::new();
    for (o, k, v) in &read {
        assert!(
            v.starts_with(&format!("{k}-")),
            "offset {o}: foreign record {k}={v}"
        );
        last_read.insert(k, *o);
    }
    let mut latest_acked: HashMap<&str, (i64, &str)> = HashMap::new();
    for (o, (k, v)) in &acked {
        latest_acked.insert(k, (*o, v));
        // An acknowledged record is either there, or superseded by a later
        // record of its key that is.
        match at.get(o) {
            Some(found) => assert_eq!(*found, (k.as_str(), v.as_str()), "offset {o}"),
            None => assert!(
                last_read.get(k.as_str()).is_some_and(|l| l > o),
                "acknowledged {k}={v} at {o} is gone and nothing replaced it"
            ),
        }
    }
    for (k, (o, v)) in &latest_acked {
        let last = last_read.get(k).copied();
        assert!(
            last >= Some(*o),
            "the latest value of {k} ({v} at {o}) is lost"
        );
        if last == Some(*o) {
            assert_eq!(at[o].1, *v);
        }
    }

    // Reads from any offset start at the first record at or after it.
    let offsets: Vec<i64> = read.iter().map(|r| r.0).collect();
    for _ in 0..20 {
        let from = rng.i64(0..end);
        let want = offsets.iter().copied().find(|&o| o >= from);
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.addr())
            .set("group.id", "probe")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(TOPIC, 0, Offset::Offset(from))
            .unwrap();
        c.assign(&tpl).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let got = loop {
            if let Some(m) = c.poll(Duration::from_millis(200)) {
                break Some(m.expect("consume").offset());
            }
            if Instant::now() > deadline {
                break None;
            }
        };
        if got != want {
            let mut files: Vec<String> =
                strata_tests::files_under(&broker.data_dir().join(format!("{TOPIC}-0")))
                    .iter()
                    .map(|p| {
                        let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                        format!("{} {len}", p.file_name().unwrap().to_string_lossy())
                    })
                    .collect();
            files.sort();
            panic!("a read from offset {from} starts at {got:?}, not {want:?}; files: {files:#?}");
        }
    }

    // Commits survived, and their log stayed small.
    let check: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("group.id", GROUP)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(TOPIC, 0);
    let stored = check
        .committed_offsets(tpl, Duration::from_secs(30))
        .unwrap();
    let got = stored.find_partition(TOPIC, 0).map(|e| e.offset());
    if let Some(want) = last_commit {
        assert!(
            matches!(got, Some(Offset::Offset(o)) if o >= want),
            "committed {want}, the group has {got:?}"
        );
    }
    let offsets_log = log_bytes(&broker.data_dir().join("__consumer_offsets-0"));
    println!("  committed-offsets log: {offsets_log} bytes after {commits} commits");
    // Each commit appends a record of about 150 bytes; without cleaning the
    // log would hold them all.
    assert!(commits > 100, "{commits} commits");
    assert!(
        offsets_log < 16 * 1024 && offsets_log < commits * 150 / 4,
        "the committed-offsets log is {offsets_log} bytes after {commits} commits"
    );
}
