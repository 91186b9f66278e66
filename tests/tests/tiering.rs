//! Tiered storage end to end: sealed segments move to a real object store
//! (the s3s-fs S3 server, or the local-directory store), the hot tier shrinks
//! to its retention, and consumers replay every record from offset 0 through
//! both tiers with librdkafka and with rskafka.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::IncrementalAlterConfigsRequest;
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use rskafka::client::partition::UnknownTopicHandling;
use rskafka::client::ClientBuilder;
use strata_tests::raw::Conn;
use strata_tests::{files_under, Broker, S3Server, SMALL_TIERED};

const BASE_TS: i64 = 1_650_000_000_000;

#[derive(Debug, Clone, PartialEq)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
    timestamp: i64,
}

fn record(i: i64) -> Rec {
    Rec {
        key: (i % 5 != 0).then(|| format!("key-{i}").into_bytes()),
        value: (i % 11 != 4)
            .then(|| format!("value-{i}-{}", "v".repeat((i % 200) as usize)).into_bytes()),
        headers: vec![("i".to_string(), i.to_string().into_bytes())],
        timestamp: BASE_TS + i,
    }
}

async fn produce(broker: &Broker, topic: &str, range: std::ops::Range<i64>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("acks", "all")
        .set("linger.ms", "5")
        // Small batches, so that the small segments hold many of them.
        .set("batch.size", "16384")
        .create()
        .unwrap();
    let mut pending = Vec::new();
    for i in range.clone() {
        let r = record(i);
        let mut fr = FutureRecord::<[u8], [u8]>::to(topic)
            .partition(0)
            .timestamp(r.timestamp)
            .headers(OwnedHeaders::new().insert(Header {
                key: "i",
                value: Some(&r.headers[0].1),
            }));
        if let Some(k) = &r.key {
            fr = fr.key(k);
        }
        if let Some(v) = &r.value {
            fr = fr.payload(v);
        }
        pending.push(
            producer
                .send_result(fr)
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
    }
    for (i, p) in range.zip(pending) {
        let d = p
            .await
            .unwrap()
            .unwrap_or_else(|(e, _)| panic!("record {i} not acknowledged: {e}"));
        assert_eq!(d.offset, i, "offsets follow the records");
    }
}

fn local_segments(broker: &Broker, topic: &str) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(broker.data_dir().join(format!("{topic}-0")))
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_string_lossy()
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    bases.sort();
    bases
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn replay_rdkafka(broker: &Broker, topic: &str, n: usize) -> Vec<(i64, Rec)> {
    let consumer = strata_tests::consumer_from_start(&broker.addr(), topic, 1);
    let mut out = Vec::with_capacity(n);
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.len() < n && Instant::now() < deadline {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.expect("consume");
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        out.push((
            m.offset(),
            Rec {
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers,
                timestamp: m.timestamp().to_millis().unwrap(),
            },
        ));
    }
    out
}

async fn replay_rskafka(broker: &Broker, topic: &str, n: usize) -> Vec<(i64, Rec)> {
    let client = ClientBuilder::new(vec![broker.addr()])
        .build()
        .await
        .unwrap();
    let partition = client
        .partition_client(topic, 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = out.last().map_or(0, |(o, _)| o + 1);
        let (records, _hw) = partition
            .fetch_records(next, 1..4_000_000, 1_000)
            .await
            .expect("fetch");
        for r in records {
            out.push((
                r.offset,
                Rec {
                    key: r.record.key,
                    value: r.record.value,
                    headers: r
                        .record
                        .headers
                        .into_iter()
                        .collect::<BTreeMap<_, _>>()
                        .into_iter()
                        .collect(),
                    timestamp: r.record.timestamp.timestamp_millis(),
                },
            ));
        }
    }
    out
}

fn expected(range: std::ops::Range<i64>) -> Vec<(i64, Rec)> {
    range.map(|i| (i, record(i))).collect()
}

/// Compares a replay with what was produced, naming the first difference
/// instead of printing thousands of records.
fn assert_replay(got: &[(i64, Rec)], want: &[(i64, Rec)], what: &str) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: record {i} differs:\n got  {:?}\n want {:?}",
            got[i], want[i]
        );
    }
    assert_eq!(got.len(), want.len(), "{what}: number of records");
}

fn set_topic_config(broker: &Broker, topic: &str, key: &str, value: &str) {
    let mut c = Conn::connect(&broker.addr());
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.into()))
            .with_configs(vec![AlterableConfig::default()
                .with_name(StrBytes::from_string(key.into()))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_string(value.into())))]),
    ]);
    assert_eq!(c.request(1, &req).responses[0].error_code, 0);
}

fn segment_objects(files: &[std::path::PathBuf]) -> usize {
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .count()
}

/// Produces, waits for the hot tier to shrink, and replays from offset 0
/// with both clients; returns the local log start.
async fn tier_and_replay(
    broker: &Broker,
    topic: &str,
    n: i64,
    remote_files: &dyn Fn() -> Vec<std::path::PathBuf>,
) -> i64 {
    produce(broker, topic, 0..n).await;
    wait_until(
        "the hot tier shrank to its retention",
        Duration::from_secs(60),
        || local_segments(broker, topic).len() <= 2,
    );
    let local = local_segments(broker, topic);
    assert!(local[0] > n / 2, "old local segments are gone: {local:?}");
    assert!(
        segment_objects(&remote_files()) > 10,
        "remote segment objects exist"
    );

    assert_replay(
        &replay_rdkafka(broker, topic, n as usize),
        &expected(0..n),
        "librdkafka replay",
    );
    assert_replay(
        &replay_rskafka(broker, topic, n as usize).await,
        &expected(0..n),
        "rskafka replay",
    );
    local[0]
}

fn offsets_for_timestamp(broker: &Broker, topic: &str, ts: i64) -> Offset {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(ts))
        .unwrap();
    consumer
        .offsets_for_times(tpl, Duration::from_secs(10))
        .unwrap()
        .find_partition(topic, 0)
        .unwrap()
        .offset()
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_tiering_replay_restart_timestamps_and_total_retention() {
    let s3 = S3Server::start();
    let (url, env) = s3.broker_env();
    let mut args = SMALL_TIERED.to_vec();
    args.extend(["--remote", &url]);
    let mut broker = Broker::start_with_env(&args, &env);
    let n = 20_000;
    let local_start = tier_and_replay(&broker, "history", n, &|| s3.objects()).await;

    // ListOffsets across the tiers.
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(
        c.list_offset("history", 0, -2).offset,
        0,
        "earliest spans both tiers"
    );
    assert_eq!(
        c.list_offset("history", 0, -4).offset,
        local_start,
        "earliest-local"
    );
    assert!(
        c.list_offset("history", 0, -5).offset >= local_start - 1,
        "latest-tiered"
    );
    // A timestamp lookup landing in a remote segment.
    assert_eq!(
        offsets_for_timestamp(&broker, "history", BASE_TS + 1234),
        Offset::Offset(1234)
    );
    let max = c.list_offset("history", 0, -3);
    assert_eq!((max.offset, max.timestamp), (n - 1, BASE_TS + n - 1));

    // After a crash and restart everything is still there.
    broker.kill();
    broker.restart();
    assert_replay(
        &replay_rskafka(&broker, "history", n as usize).await,
        &expected(0..n),
        "replay after restart",
    );
    assert_eq!(
        offsets_for_timestamp(&broker, "history", BASE_TS + 777),
        Offset::Offset(777)
    );

    // Total retention deletes remote segments and moves the earliest offset.
    // Segment objects present now; uploads may still add newer ones (a
    // segment sealed just before the crash is fsynced and uploaded after the
    // restart), so the check is that some of these are gone.
    let before: Vec<_> = s3
        .objects()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    set_topic_config(&broker, "history", "retention.bytes", "300000");
    let mut c = Conn::connect(&broker.addr());
    wait_until(
        "total retention moved the log start",
        Duration::from_secs(30),
        || c.list_offset("history", 0, -2).offset > 0,
    );
    // The log start moves when a deletion is recorded as started; the
    // objects go right after.
    wait_until(
        "remote segments were deleted",
        Duration::from_secs(30),
        || before.iter().any(|p| !p.exists()),
    );
    // Retention may still be deleting: wait for the log start to settle.
    let mut start = c.list_offset("history", 0, -2).offset;
    wait_until("the log start settled", Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_millis(500));
        let now = c.list_offset("history", 0, -2).offset;
        std::mem::replace(&mut start, now) == now
    });
    let tail = replay_rdkafka(&broker, "history", (n - start) as usize);
    assert_replay(&tail, &expected(start..n), "replay from the new log start");
    // What is left is about retention.bytes, the hot tier included.
    assert!(n - start < 6_000, "{} records kept", n - start);
}

#[tokio::test(flavor = "multi_thread")]
async fn local_directory_store_is_the_default() {
    let broker = Broker::start(SMALL_TIERED);
    let remote_dir = broker.data_dir().join("remote");
    tier_and_replay(&broker, "local-tier", 8_000, &|| files_under(&remote_dir)).await;
    assert!(files_under(&remote_dir)
        .iter()
        .any(|p| p.ends_with("manifest.json")));

    // Deleting the topic deletes its remote objects too.
    let mut c = Conn::connect(&broker.addr());
    let req = kafka_protocol::messages::DeleteTopicsRequest::default()
        .with_topic_names(vec![strata_tests::raw::topic_name("local-tier")]);
    assert_eq!(c.request(5, &req).responses[0].error_code, 0);
    // What stays is the bucket's own catalogue, lease and offsets
    // snapshot under `_strata/`.
    wait_until(
        "the remote objects were deleted",
        Duration::from_secs(30),
        || {
            files_under(&remote_dir).iter().all(|p| {
                p.strip_prefix(&remote_dir)
                    .is_ok_and(|r| r.starts_with("_strata"))
            })
        },
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn store_outage_does_not_stop_produce_or_lose_records() {
    let mut s3 = S3Server::start();
    let (url, env) = s3.broker_env();
    let mut args = SMALL_TIERED.to_vec();
    args.extend(["--remote", &url]);
    let broker = Broker::start_with_env(&args, &env);
    produce(&broker, "outage", 0..4_000).await;
    wait_until(
        "some segments were uploaded",
        Duration::from_secs(30),
        || segment_objects(&s3.objects()) >= 3,
    );

    s3.stop();
    let mut c = Conn::connect(&broker.addr());
    let uploaded_end = c.list_offset("outage", 0, -5).offset + 1;
    // Produce keeps succeeding with the store down.
    produce(&broker, "outage", 4_000..12_000).await;
    std::thread::sleep(Duration::from_secs(2));
    // Nothing above what was uploaded before the outage left the hot tier.
    let local = local_segments(&broker, "outage");
    assert!(
        local[0] <= uploaded_end,
        "local start {} above the uploaded end {uploaded_end}",
        local[0]
    );
    assert!(
        local.len() > 5,
        "segments wait on local disk for their upload: {local:?}"
    );

    s3.restart();
    wait_until(
        "the backlog was uploaded and the hot tier shrank",
        Duration::from_secs(90),
        || local_segments(&broker, "outage").len() <= 2,
    );
    assert_replay(
        &replay_rdkafka(&broker, "outage", 12_000),
        &expected(0..12_000),
        "replay after the outage",
    );
    assert!(
        broker.log().contains("cold tier operation failed"),
        "the outage was reported"
    );
}
