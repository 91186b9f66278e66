//! Long polls and byte limits through the tiered partition: an append wakes
//! only the fetches parked on its own partition, and a fetch that reads
//! several partitions from the cold tier keeps to the request's `max_bytes`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::protocol::Request;
use strata_tests::raw::{self, batch, Conn};
use strata_tests::{Broker, SMALL_TIERED};

/// The value of a counter on the broker's metrics endpoint (0 if absent).
fn counter(broker: &Broker, name: &str) -> f64 {
    strata_tests::scrape(broker.metrics_addr())
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A Fetch of one topic's partitions at `(partition, offset)`, up to 1 MiB
/// each.
fn fetch_request(
    topic: &str,
    partitions: &[(i32, i64)],
    max_wait_ms: i32,
    max_bytes: i32,
) -> FetchRequest {
    let partitions: Vec<(i32, i64, i32)> = partitions
        .iter()
        .map(|&(p, offset)| (p, offset, 1024 * 1024))
        .collect();
    raw::fetch_request(topic, &partitions, max_wait_ms, max_bytes)
}

/// Sends a fetch without waiting for its answer.
fn send(conn: &mut Conn, req: &FetchRequest) {
    let frame = Conn::encode(FetchRequest::KEY, 12, 1, req);
    conn.write_frame(&frame);
}

fn records_len(resp: &kafka_protocol::messages::FetchResponse) -> usize {
    resp.responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.records.as_ref().map_or(0, Bytes::len))
        .sum()
}

#[test]
fn an_append_wakes_only_the_fetches_parked_on_its_partition() {
    const IDLE: i32 = 20;
    const APPENDS: usize = 100;
    let broker = Broker::start(&[]);
    let mut admin = Conn::connect(&broker.addr());
    assert_eq!(admin.create_topic("idle", IDLE, &[]).error_code, 0);
    assert_eq!(admin.create_topic("busy", 1, &[]).error_code, 0);

    // One long poll parked on each idle partition, for 8 s.
    let mut parked: Vec<Conn> = (0..IDLE)
        .map(|p| {
            let mut c = Conn::connect(&broker.addr());
            send(&mut c, &fetch_request("idle", &[(p, 0)], 8_000, 1 << 20));
            c
        })
        .collect();
    // And one on the busy partition, which the first append must answer.
    let mut tail = Conn::connect(&broker.addr());
    send(&mut tail, &fetch_request("busy", &[(0, 0)], 8_000, 1 << 20));
    std::thread::sleep(Duration::from_millis(500));

    let passes_before = counter(&broker, "strata_fetch_passes_total");
    assert!(
        passes_before >= (IDLE + 1) as f64,
        "every parked fetch made its first pass ({passes_before})"
    );
    let started = Instant::now();
    for i in 0..APPENDS {
        let r = admin.produce("busy", 0, batch(1, 10, 1_000 + i as i64));
        assert_eq!(r.error_code, 0);
    }
    let tail_answer = tail
        .read_frame()
        .expect("the busy partition's fetch answers");
    let (_, tail_answer) =
        strata_protocol::decode_response::<FetchRequest>(tail_answer, 12).unwrap();
    assert!(records_len(&tail_answer) > 0);
    let passes = counter(&broker, "strata_fetch_passes_total") - passes_before;
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "the appends took too long for the parked fetches to still be waiting"
    );
    // The busy partition's fetch reads once more when woken; the twenty idle
    // ones are not woken at all. Before the fix every append woke all 21.
    assert!(
        passes <= 3.0,
        "{passes} fetch passes for {APPENDS} appends to another partition"
    );

    // The idle fetches still answer, empty, when their wait is over.
    for c in &mut parked {
        let frame = c
            .read_frame()
            .expect("an idle fetch answers at its deadline");
        let (_, resp) = strata_protocol::decode_response::<FetchRequest>(frame, 12).unwrap();
        assert_eq!(records_len(&resp), 0);
        assert_eq!(resp.responses[0].partitions[0].error_code, 0);
    }
}

#[test]
fn a_fetch_of_several_cold_partitions_keeps_to_max_bytes() {
    const PARTITIONS: i32 = 4;
    const MAX_BYTES: i32 = 100_000;
    let broker = Broker::start(SMALL_TIERED);
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(c.create_topic("history", PARTITIONS, &[]).error_code, 0);
    // About 400 KiB per partition in 1 KiB batches: several 64 KiB segments.
    for p in 0..PARTITIONS {
        for i in 0..400 {
            let r = c.produce("history", p, batch(1, 1_000, 1_000 + i));
            assert_eq!(r.error_code, 0);
        }
    }
    // Wait until every partition's first records are only in the cold tier.
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..PARTITIONS).any(|p| c.list_offset("history", p, -4).offset == 0) {
        assert!(Instant::now() < deadline, "the hot tier never shrank");
        std::thread::sleep(Duration::from_millis(100));
    }

    let partitions: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut total_seen = 0;
    for _ in 0..3 {
        let resp = c.request(12, &fetch_request("history", &partitions, 2_000, MAX_BYTES));
        let total = records_len(&resp);
        for p in &resp.responses[0].partitions {
            assert_eq!(p.error_code, 0, "partition {}", p.partition_index);
        }
        assert!(
            total <= MAX_BYTES as usize,
            "{total} record bytes in an answer limited to {MAX_BYTES}"
        );
        total_seen = total_seen.max(total);
    }
    assert!(total_seen > 0, "the cold tier answered");
}
