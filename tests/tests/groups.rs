//! Group coordinator details over the raw protocol: static membership,
//! session expiry, offsets of deleted topics, and the committed offsets log
//! compacted across a restart.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strata_tests::raw::{topic_name, Conn};
use strata_tests::Broker;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

fn join(c: &mut Conn, group: &str, member: &str, instance: Option<&str>) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(6_000)
        .with_rebalance_timeout_ms(6_000)
        .with_member_id(s(member))
        .with_group_instance_id(instance.map(s))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"m"))]);
    c.request(7, &req)
}

fn describe(c: &mut Conn, group: &str) -> (String, usize) {
    let r = c.request(
        5,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]),
    );
    (
        r.groups[0].group_state.to_string(),
        r.groups[0].members.len(),
    )
}

fn commit(c: &mut Conn, group: &str, topic: &str, offset: i64) -> i16 {
    c.commit_offset(group, topic, 0, offset)
}

fn committed(c: &mut Conn, group: &str, topic: &str) -> i64 {
    c.committed_offset(group, topic, 0)
}

#[test]
fn static_members_keep_their_place_and_silent_members_expire() {
    let broker = Broker::start(&[
        "--set",
        "group.initial.rebalance.delay.ms=0",
        "--set",
        "group.session.check.interval.ms=100",
    ]);
    let mut c = Conn::connect(&broker.addr());
    // A static member joins without the MEMBER_ID_REQUIRED step.
    let first = join(&mut c, "static", "", Some("instance-1"));
    assert_eq!(first.error_code, 0);
    // It restarts (new connection, no member id): it takes its old place.
    let mut c2 = Conn::connect(&broker.addr());
    let again = join(&mut c2, "static", "", Some("instance-1"));
    assert_eq!(again.error_code, 0);
    assert_ne!(again.member_id, first.member_id);
    assert_eq!(
        describe(&mut c, "static"),
        ("CompletingRebalance".to_string(), 1)
    );
    // The old member id is fenced.
    let hb = HeartbeatRequest::default()
        .with_group_id(GroupId(s("static")))
        .with_generation_id(again.generation_id)
        .with_member_id(first.member_id.clone());
    assert_eq!(c.request(3, &hb).error_code, 25, "UNKNOWN_MEMBER_ID");

    // Without heartbeats the member's 6 s session runs out.
    std::thread::sleep(Duration::from_millis(7_500));
    assert_eq!(describe(&mut c, "static"), ("Empty".to_string(), 0));
}

#[test]
fn offsets_of_deleted_topics_go_and_the_offsets_log_is_compacted() {
    // Small segments of the committed-offsets log, so that the log cleaner
    // has sealed ones to compact.
    let mut broker = Broker::start(&[
        "--set",
        "offsets.topic.segment.bytes=4096",
        "--set",
        "log.cleaner.backoff.ms=100",
    ]);
    let mut c = Conn::connect(&broker.addr());
    for t in ["kept", "dropped"] {
        assert_eq!(c.create_topic(t, 1, &[]).error_code, 0);
    }
    // Many commits of the same partitions: mostly superseded records.
    for i in 0..1500 {
        assert_eq!(commit(&mut c, "g", "kept", i), 0);
    }
    assert_eq!(commit(&mut c, "g", "dropped", 7), 0);
    let del = DeleteTopicsRequest::default().with_topic_names(vec![topic_name("dropped")]);
    assert_eq!(c.request(5, &del).responses[0].error_code, 0);
    assert_eq!(
        committed(&mut c, "g", "dropped"),
        -1,
        "a deleted topic's offsets are removed"
    );

    // The cleaner compacts the log: superseded commits go.
    let removed = || -> f64 {
        strata_tests::scrape(broker.metrics_addr())
            .lines()
            .filter(|l| {
                l.starts_with("strata_cleaner_records_removed_total{")
                    && l.contains("__consumer_offsets")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // 1,500 commits of one partition: all but the latest are superseded,
    // apart from those still in the active segment.
    while removed() < 1400.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the offsets log was not compacted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(broker.terminate());
    broker.restart();
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(committed(&mut c, "g", "kept"), 1499);
    assert_eq!(committed(&mut c, "g", "dropped"), -1);
    let size = || -> u64 {
        std::fs::read_dir(broker.data_dir().join("__consumer_offsets-0"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    };
    // Uncompacted, the 1,502 records take about 160 KB; compacted, the
    // live offsets and the active segment's few superseded ones remain.
    // The removal count above can be reached while the last few sealed
    // segments still wait for the cleaner's next pass, so the size is
    // awaited, not sampled once.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while size() >= 12_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the compacted log holds only live offsets ({} bytes)",
            size()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
