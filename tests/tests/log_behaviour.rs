//! Log behaviour seen through the protocol: long-poll fetch woken by an
//! append, fetch size limits, LogAppendTime, retention moving the log start,
//! and topic metadata surviving a restart.

use std::thread;
use std::time::Duration;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use rdkafka::message::{Message, Timestamp};

use strata_tests::raw::{batch, topic_name as name, Conn};
use strata_tests::Broker;

fn create(c: &mut Conn, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let r = c.create_topic(topic, partitions, configs);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
}

fn produce(
    c: &mut Conn,
    topic: &str,
    partition: i32,
    records: bytes::Bytes,
) -> PartitionProduceResponse {
    let p = c.produce(topic, partition, records);
    assert_eq!(p.error_code, 0);
    p
}

fn fetch(
    topic: &str,
    partitions: &[(i32, i64, i32)],
    max_wait_ms: i32,
    max_bytes: i32,
) -> FetchRequest {
    strata_tests::raw::fetch_request(topic, partitions, max_wait_ms, max_bytes)
}

fn earliest(c: &mut Conn, topic: &str) -> i64 {
    c.list_offset(topic, 0, -2).offset
}

#[test]
fn long_poll_is_woken_by_an_append() {
    let broker = Broker::start(&[]);
    let mut c = Conn::connect(&broker.addr());
    create(&mut c, "lp", 1, &[]);
    let addr = broker.addr();
    let producer = thread::spawn(move || {
        // Give the fetch below time to start waiting.
        thread::sleep(Duration::from_millis(300));
        produce(&mut Conn::connect(&addr), "lp", 0, batch(2, 10, 0));
    });
    // A 10 s wait at the log end: if the append did not wake it, it would
    // end with no records.
    let r = c.request(12, &fetch("lp", &[(0, 0, 1 << 20)], 10_000, 1 << 20));
    producer.join().unwrap();
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.high_watermark, 2);
    assert!(
        !p.records.as_ref().unwrap().is_empty(),
        "the fetch returned the appended records"
    );
}

#[test]
fn fetch_respects_partition_and_total_max_bytes() {
    let broker = Broker::start(&[]);
    let mut c = Conn::connect(&broker.addr());
    create(&mut c, "mb", 2, &[]);
    let one = batch(5, 100, 0);
    for p in 0..2 {
        for _ in 0..4 {
            produce(&mut c, "mb", p, one.clone());
        }
    }
    let len = one.len() as i32;
    // Counts whole batches by walking their length fields.
    let batches = |r: &FetchResponse, p: usize| {
        let records = r.responses[0].partitions[p].records.clone().unwrap();
        let (mut pos, mut n) = (0, 0);
        while pos < records.len() {
            pos += 12 + i32::from_be_bytes(records[pos + 8..pos + 12].try_into().unwrap()) as usize;
            n += 1;
        }
        assert_eq!(pos, records.len(), "only whole batches");
        n
    };
    // Per-partition limit of two and a half batches: two whole batches.
    let r = c.request(12, &fetch("mb", &[(0, 0, len * 5 / 2)], 0, i32::MAX));
    assert_eq!(batches(&r, 0), 2);
    // A limit below one batch still returns the first batch (KIP-74).
    let r = c.request(12, &fetch("mb", &[(0, 0, 10)], 0, i32::MAX));
    assert_eq!(batches(&r, 0), 1);
    // The response limit spans partitions: three batches in all.
    let r = c.request(
        12,
        &fetch("mb", &[(0, 0, 1 << 20), (1, 0, 1 << 20)], 0, len * 3),
    );
    assert_eq!(batches(&r, 0) + batches(&r, 1), 3);
}

#[test]
fn log_append_time_topics_are_stamped_by_the_broker() {
    let broker = Broker::start(&[]);
    let mut c = Conn::connect(&broker.addr());
    create(
        &mut c,
        "lat",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    );
    let p = produce(&mut c, "lat", 0, batch(3, 10, 1000));
    assert!(
        p.log_append_time_ms > 1_600_000_000_000,
        "{}",
        p.log_append_time_ms
    );
    // What a consumer sees: librdkafka reports the broker's time, typed.
    let consumer = strata_tests::consumer_from_start(&broker.addr(), "lat", 1);
    for expected_offset in 0..3 {
        let m = consumer
            .poll(Duration::from_secs(20))
            .expect("a record")
            .unwrap();
        assert_eq!(m.offset(), expected_offset);
        assert_eq!(
            m.timestamp(),
            Timestamp::LogAppendTime(p.log_append_time_ms)
        );
    }
}

#[test]
fn retention_deletes_old_segments_and_moves_the_log_start() {
    let broker = Broker::start(&["--set", "log.retention.check.interval.ms=100"]);
    let mut c = Conn::connect(&broker.addr());
    create(
        &mut c,
        "ret",
        1,
        // Hot tier only: local retention with nothing to upload first.
        &[
            ("segment.bytes", "2000"),
            ("retention.bytes", "4000"),
            ("remote.storage.enable", "false"),
        ],
    );
    for _ in 0..30 {
        produce(&mut c, "ret", 0, batch(4, 100, 0));
    }
    let segment_files = || {
        std::fs::read_dir(broker.data_dir().join("ret-0"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".log")
            })
            .count()
    };
    // Retention runs every 100 ms, possibly midway through the appends
    // above: wait for a pass that saw them all.
    let (mut start, mut segments) = (0, usize::MAX);
    for _ in 0..100 {
        start = earliest(&mut c, "ret");
        segments = segment_files();
        if start > 0 && segments <= 4 {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(start > 0, "retention.bytes moved the log start offset");
    assert!(segments <= 4, "{segments} segments left");
    // The offsets still held are what retention.bytes allows: about 4000
    // bytes plus the active segment.
    assert!(c.list_offset("ret", 0, -1).offset - start <= 60);
    // Reading below the log start is out of range; from it works.
    let r = c.request(12, &fetch("ret", &[(0, 0, 1 << 20)], 0, 1 << 20));
    assert_eq!(r.responses[0].partitions[0].error_code, 1);
    assert_eq!(r.responses[0].partitions[0].log_start_offset, start);
    let r = c.request(12, &fetch("ret", &[(0, start, 1 << 20)], 0, 1 << 20));
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
}

#[test]
fn topic_ids_partitions_and_configs_survive_a_restart() {
    let mut broker = Broker::start(&[]);
    let mut c = Conn::connect(&broker.addr());
    create(
        &mut c,
        "keep",
        3,
        &[("retention.ms", "123456"), ("max.message.bytes", "5000")],
    );
    let md = |c: &mut Conn| {
        let r = c.request(
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("keep")))
            ])),
        );
        (
            r.topics[0].topic_id,
            r.topics[0].partitions.len(),
            r.cluster_id.clone(),
        )
    };
    let before = md(&mut c);
    broker.kill();
    broker.restart();
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(md(&mut c), before);
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("keep"))]);
    let r = c.request(4, &req);
    let entry = |k: &str| {
        r.results[0]
            .configs
            .iter()
            .find(|c| &*c.name == k)
            .unwrap()
            .clone()
    };
    assert_eq!(entry("retention.ms").value.as_deref(), Some("123456"));
    assert_eq!(entry("retention.ms").config_source, 1, "TOPIC_CONFIG");
    assert_eq!(entry("max.message.bytes").value.as_deref(), Some("5000"));
    assert_eq!(entry("segment.bytes").config_source, 5, "DEFAULT_CONFIG");
}
