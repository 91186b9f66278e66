//! Reads of history against a bucket that behaves like a real one, and the
//! cold tier's limits: a store that throttles is survived without a failed
//! fetch, a fetch that mixes hot and cold partitions keeps to its byte
//! limits and is not held up by a stalled store beyond
//! `remote.fetch.max.wait.ms`, and the remote-copy quota holds the upload
//! rate. None of these tests measures speed; `strata-bench` does.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use strata_storage::batch::BatchHeader;
use strata_tests::fault_proxy::{BucketProfile, FaultProxy, Mode};
use strata_tests::raw::{self, batch, Conn};
use strata_tests::{metric, Broker, S3Server, SMALL_TIERED};

/// Produces `n` batches of one 1,000-byte record to `topic`'s partition.
fn fill(c: &mut Conn, topic: &str, partition: i32, n: i64) {
    for i in 0..n {
        let r = c.produce(topic, partition, batch(1, 1_000, 1_000 + i));
        assert_eq!(r.error_code, 0, "produce to {topic}-{partition}");
    }
}

/// Waits until `topic`'s partition 0 has its first records only in the
/// cold tier.
fn wait_until_cold(c: &mut Conn, topic: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.list_offset(topic, 0, -4).offset == 0 {
        assert!(
            Instant::now() < deadline,
            "the hot tier of {topic} never shrank"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each partition's record bytes in a fetch answer, by (topic position in
/// the request, partition).
fn bytes_by_partition(resp: &FetchResponse) -> BTreeMap<(usize, i32), usize> {
    let mut out = BTreeMap::new();
    for (t, topic) in resp.responses.iter().enumerate() {
        for p in &topic.partitions {
            assert_eq!(p.error_code, 0, "topic {t} partition {}", p.partition_index);
            out.insert(
                (t, p.partition_index),
                p.records.as_ref().map_or(0, Bytes::len),
            );
        }
    }
    out
}

/// A broker whose cold tier is an S3 server behind a proxy (seeded with
/// `seed`), with 64 KiB chunks and `extra` arguments.
fn broker_behind_proxy(seed: u64, extra: &[&str]) -> (S3Server, FaultProxy, Broker) {
    let s3 = S3Server::start();
    let proxy = FaultProxy::start(s3.port(), seed);
    let (url, env) = s3.broker_env_through(proxy.port());
    let mut args = SMALL_TIERED.to_vec();
    args.extend([
        "--remote",
        &url,
        "--set",
        "remote.log.reader.chunk.bytes=65536",
    ]);
    args.extend(extra);
    let broker = Broker::start_with_env(&args, &env);
    (s3, proxy, broker)
}

/// One Fetch of several topics: `(topic, partition, offset, partition_max)`.
fn fetch(parts: &[(&str, i32, i64, i32)], max_wait_ms: i32, max_bytes: i32) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for &(topic, p, offset, max) in parts {
        let one = raw::fetch_request(topic, &[(p, offset, max)], max_wait_ms, max_bytes);
        topics.extend(one.topics);
    }
    raw::fetch_request("unused", &[], max_wait_ms, max_bytes).with_topics(topics)
}

#[test]
fn a_fetch_mixing_hot_and_cold_partitions_keeps_to_its_limits_and_a_stalled_store_holds_up_only_the_cold_ones(
) {
    const MAX_BYTES: i32 = 100_000;
    let (_s3, proxy, broker) = broker_behind_proxy(7, &[]);
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(c.create_topic("cold", 1, &[]).error_code, 0);
    let hot_only = [("remote.storage.enable", "false")];
    assert_eq!(c.create_topic("hot", 1, &hot_only).error_code, 0);
    // About 400 KiB each: the cold topic's in several 64 KiB segments that
    // leave local disk once uploaded, the hot topic's all on local disk.
    fill(&mut c, "cold", 0, 400);
    fill(&mut c, "hot", 0, 400);
    wait_until_cold(&mut c, "cold");

    // Both orders of hot and cold, each partition allowed 1 MiB: the
    // answer keeps to the request's max_bytes (Kafka's KAFKA-20019 is a
    // remote read added past it).
    for order in [["hot", "cold"], ["cold", "hot"]] {
        let req = fetch(
            &[(order[0], 0, 0, 1 << 20), (order[1], 0, 0, 1 << 20)],
            2_000,
            MAX_BYTES,
        );
        let mut total_seen = 0;
        for _ in 0..5 {
            let by = bytes_by_partition(&c.request(12, &req));
            let total: usize = by.values().sum();
            assert!(
                total <= MAX_BYTES as usize,
                "{order:?}: {total} record bytes in an answer limited to {MAX_BYTES} ({by:?})"
            );
            total_seen = total_seen.max(total);
        }
        assert!(total_seen > 0, "{order:?}: the fetch answered with records");
    }
    // Per-partition limits hold in both tiers: 5,000 bytes each, well under
    // max_bytes, so a first batch of about 1 KiB fits and the limit binds.
    let req = fetch(
        &[("cold", 0, 0, 5_000), ("hot", 0, 0, 5_000)],
        2_000,
        MAX_BYTES,
    );
    let mut cold_answered = false;
    for _ in 0..10 {
        let by = bytes_by_partition(&c.request(12, &req));
        assert!(
            by[&(0, 0)] <= 5_000,
            "cold partition over its limit: {by:?}"
        );
        assert!(by[&(1, 0)] <= 5_000, "hot partition over its limit: {by:?}");
        assert!(by[&(1, 0)] > 0, "the hot partition answered: {by:?}");
        if by[&(0, 0)] > 0 {
            cold_answered = true;
            break;
        }
    }
    assert!(cold_answered, "the cold tier answered within ten fetches");

    // The store stops answering. History nobody has read yet (the end of
    // the cold topic, past anything read ahead) cannot come, but the hot
    // partition of the same request is answered at once, without errors,
    // after at most remote.fetch.max.wait.ms (500 ms; asserted loosely).
    let end = c.list_offset("cold", 0, -5).offset;
    assert!(end > 300, "the cold tier holds the topic's end");
    proxy.set_mode(Mode::Stall);
    let started = Instant::now();
    let resp = c.request(
        12,
        &fetch(
            &[("cold", 0, end - 5, 1 << 20), ("hot", 0, 0, 1 << 20)],
            100,
            MAX_BYTES,
        ),
    );
    let took = started.elapsed();
    let by = bytes_by_partition(&resp);
    assert_eq!(by[&(0, 0)], 0, "nothing came from the stalled store");
    assert!(
        by[&(1, 0)] > 0,
        "the hot partition's records came regardless"
    );
    assert!(
        took < Duration::from_secs(10),
        "the stalled store held the answer for {took:?}"
    );
    proxy.set_mode(Mode::Pass);
}

#[test]
fn reads_of_history_survive_a_bucket_that_throttles_without_a_failed_fetch() {
    const RECORDS: i64 = 1_000;
    // Small chunks and cache: many GETs, and read-ahead that must give way.
    let (_s3, proxy, broker) =
        broker_behind_proxy(11, &["--set", "remote.log.reader.cache.bytes=524288"]);
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(c.create_topic("history", 1, &[]).error_code, 0);
    fill(&mut c, "history", 0, RECORDS);
    wait_until_cold(&mut c, "history");

    // From now on the bucket answers after 5 ms, and beyond 2 requests a
    // second with 503 SlowDown, as S3 does past a prefix's request rate
    // (starting with no burst allowance, so the first GET meets it).
    proxy.set_mode(Mode::Bucket(BucketProfile {
        first_byte: Duration::from_millis(5),
        jitter: Duration::from_millis(5),
        bytes_per_sec: 0,
        requests_per_sec: 2,
    }));
    let mut offset = 0i64;
    let mut fetches = 0;
    let deadline = Instant::now() + Duration::from_secs(240);
    while offset < RECORDS {
        assert!(
            Instant::now() < deadline,
            "the replay stalled at offset {offset}"
        );
        let resp = c.request(
            12,
            &raw::fetch_request("history", &[(0, offset, 64 * 1024)], 500, 1 << 20),
        );
        fetches += 1;
        let p = &resp.responses[0].partitions[0];
        assert_eq!(
            p.error_code,
            0,
            "fetch {fetches} at offset {offset} failed while the bucket throttled; broker log:\n{}",
            broker.log()
        );
        let records = p.records.clone().unwrap_or_default();
        let mut pos = 0;
        while pos < records.len() {
            // Whole batches, in order, each holding the next offset.
            let h = BatchHeader::parse(&records[pos..]).expect("a whole batch");
            assert!(
                h.base_offset <= offset && offset <= h.last_offset(),
                "batch {}..={} where {offset} was next",
                h.base_offset,
                h.last_offset()
            );
            offset = h.last_offset() + 1;
            pos += h.total_len();
        }
    }
    let slow_downs = proxy.counts().get("slow down").copied().unwrap_or(0);
    println!(
        "replayed {RECORDS} records in {fetches} fetches; the bucket answered SlowDown {slow_downs} times, \
         the broker counted {} throttled GETs",
        metric(&broker, "strata_remote_throttled_total")
    );
    assert!(slow_downs > 0, "the bucket throttled during the replay");
}

#[test]
fn the_remote_copy_quota_holds_the_upload_rate() {
    const RATE: f64 = 200_000.0;
    let rate_arg = format!(
        "remote.log.manager.copy.max.bytes.per.second={}",
        RATE as u64
    );
    // An S3 bucket: uploads into the default local directory link the
    // segment files and send no bytes for a quota to hold.
    let s3 = S3Server::start();
    let (url, env) = s3.broker_env();
    let mut args = SMALL_TIERED.to_vec();
    args.extend(["--remote", &url, "--set", &rate_arg]);
    let broker = Broker::start_with_env(&args, &env);
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(c.create_topic("quota", 1, &[]).error_code, 0);
    let started = Instant::now();
    // About 1 MiB at once: 15 segments of 64 KiB, far faster than the quota.
    fill(&mut c, "quota", 0, 1_000);

    // What has been uploaded never runs ahead of the quota: the bytes of a
    // full bucket (one second) plus the rate times the time since the first
    // byte could be sent, with one segment's indexes as slack. A slow
    // machine only uploads less, so this cannot fail by being slow.
    let mut uploaded = 0.0;
    let deadline = started + Duration::from_secs(90);
    while uploaded < 800_000.0 {
        assert!(
            Instant::now() < deadline,
            "uploads stalled at {uploaded} bytes"
        );
        std::thread::sleep(Duration::from_millis(250));
        uploaded = metric(&broker, "strata_remote_upload_bytes_total");
        let allowed = RATE * (1.0 + started.elapsed().as_secs_f64()) + 70_000.0;
        assert!(
            uploaded <= allowed,
            "{uploaded} bytes uploaded after {:?}, more than the quota allows ({allowed})",
            started.elapsed()
        );
    }
    println!(
        "{uploaded} bytes uploaded in {:?} under a quota of {RATE} B/s",
        started.elapsed()
    );
}
