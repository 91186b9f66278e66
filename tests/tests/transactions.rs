//! Bad input to the transactional APIs gets Kafka's error codes over the
//! wire, and nothing that should not be committed is: produce to a
//! partition outside the transaction, a sequence gap, a wrong or old epoch,
//! an unknown producer id, EndTxn with nothing to end, TxnOffsetCommit and
//! EndTxn from a fenced instance, a timeout above the broker's maximum. A
//! read_committed fetch afterwards sees only what was committed, and the
//! open transaction's state survives a SIGKILL of the broker.

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strata_storage::testing::BatchBuilder;
use strata_tests::raw::{fetch_request, topic_name as name, Conn};
use strata_tests::Broker;

const TOPIC: &str = "txn-bad";

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

fn init(c: &mut Conn, id: &str, timeout_ms: i32) -> InitProducerIdResponse {
    c.request(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s(id))))
            .with_transaction_timeout_ms(timeout_ms)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    )
}

fn add(c: &mut Conn, id: &str, pid: i64, epoch: i16, partition: i32) -> i16 {
    let r = c.request(
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s(id)))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(name(TOPIC))
                .with_partitions(vec![partition])]),
    );
    r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

fn end(c: &mut Conn, id: &str, pid: i64, epoch: i16, commit: bool) -> i16 {
    c.request(
        3,
        &EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s(id)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(commit),
    )
    .error_code
}

fn txn_batch(pid: i64, epoch: i16, seq: i32, n: i32) -> Bytes {
    Bytes::from(
        BatchBuilder::new(n)
            .producer(pid, epoch, seq)
            .transactional()
            .payload(10)
            .build(),
    )
}

/// Base offsets of the batches a read_committed fetch of partition 0
/// returns from offset 0.
fn committed_batches(c: &mut Conn) -> (Vec<i64>, i64) {
    let req = fetch_request(TOPIC, &[(0, 0, 1 << 20)], 0, 1 << 20).with_isolation_level(1);
    let r = c.request(11, &req);
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let records = p.records.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let h = strata_storage::batch::BatchHeader::parse(&records[pos..]).unwrap();
        if h.attributes & strata_storage::batch::CONTROL_FLAG == 0 {
            out.push(h.base_offset);
        }
        pos += h.total_len();
    }
    (out, p.last_stable_offset)
}

#[test]
fn bad_transactional_input_gets_kafkas_codes_and_commits_nothing() {
    let mut broker = Broker::start(&["--set", "transaction.max.timeout.ms=60000"]);
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(c.create_topic(TOPIC, 2, &[]).error_code, 0);

    // A timeout above transaction.max.timeout.ms.
    assert_eq!(
        init(&mut c, "too-long", 120_000).error_code,
        50,
        "INVALID_TRANSACTION_TIMEOUT"
    );

    let r = init(&mut c, "bad", 30_000);
    assert_eq!(r.error_code, 0);
    let (pid, epoch) = (r.producer_id.0, r.producer_epoch);

    // Nothing added yet: EndTxn has no transaction to end.
    assert_eq!(
        end(&mut c, "bad", pid, epoch, true),
        48,
        "INVALID_TXN_STATE"
    );
    // Transactional records to a partition the transaction does not include.
    let r = c.produce(TOPIC, 0, txn_batch(pid, epoch, 0, 2));
    assert_eq!(r.error_code, 48, "INVALID_TXN_STATE: {:?}", r.error_message);

    assert_eq!(add(&mut c, "bad", pid, epoch, 0), 0);
    // A producer id that is not the transactional id's.
    assert_eq!(
        add(&mut c, "bad", pid + 1000, epoch, 1),
        49,
        "INVALID_PRODUCER_ID_MAPPING"
    );
    // An epoch the id never had.
    assert_eq!(
        add(&mut c, "bad", pid, epoch + 1, 1),
        47,
        "INVALID_PRODUCER_EPOCH"
    );
    assert_eq!(end(&mut c, "bad", pid, epoch + 1, true), 47);
    // An unknown topic fails, the rest of the request is not attempted.
    let r = c.request(
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s("bad")))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(name("no-such-topic"))
                    .with_partitions(vec![0]),
                AddPartitionsToTxnTopic::default()
                    .with_name(name(TOPIC))
                    .with_partitions(vec![1]),
            ]),
    );
    let codes: Vec<i16> = r
        .results_by_topic_v3_and_below
        .iter()
        .map(|t| t.results_by_partition[0].partition_error_code)
        .collect();
    assert_eq!(
        codes,
        vec![3, 55],
        "UNKNOWN_TOPIC_OR_PARTITION, OPERATION_NOT_ATTEMPTED"
    );

    assert_eq!(
        c.produce(TOPIC, 0, txn_batch(pid, epoch, 0, 2)).error_code,
        0
    );
    // A sequence gap.
    let r = c.produce(TOPIC, 0, txn_batch(pid, epoch, 5, 1));
    assert_eq!(r.error_code, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");

    // The open transaction holds read_committed back, across a SIGKILL.
    assert_eq!(committed_batches(&mut c), (vec![], 0));
    broker.kill();
    broker.restart();
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(committed_batches(&mut c), (vec![], 0));

    // A new instance fences the old one and aborts its transaction.
    let r = init(&mut c, "bad", 30_000);
    assert_eq!((r.error_code, r.producer_id.0), (0, pid));
    assert_eq!(r.producer_epoch, epoch + 1);
    let old = epoch;
    let epoch = r.producer_epoch;
    let r = c.produce(TOPIC, 0, txn_batch(pid, old, 2, 1));
    assert_eq!(
        r.error_code, 47,
        "INVALID_PRODUCER_EPOCH for the fenced instance's records"
    );
    assert_eq!(end(&mut c, "bad", pid, old, true), 90, "PRODUCER_FENCED");
    let group = GroupId(s("txn-bad-group"));
    let offsets = |epoch: i16| {
        TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s("bad")))
            .with_group_id(group.clone())
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(name(TOPIC))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(7)])])
    };
    let r = c.request(3, &offsets(old));
    assert_eq!(r.topics[0].partitions[0].error_code, 90, "PRODUCER_FENCED");
    // The current instance has not added the group: not its transaction's.
    let r = c.request(3, &offsets(epoch));
    assert_eq!(
        r.topics[0].partitions[0].error_code, 48,
        "INVALID_TXN_STATE"
    );

    // The current instance commits one batch.
    assert_eq!(add(&mut c, "bad", pid, epoch, 0), 0);
    let committed_at = c.produce(TOPIC, 0, txn_batch(pid, epoch, 0, 3)).base_offset;
    assert_eq!(end(&mut c, "bad", pid, epoch, true), 0);
    let (batches, lso) = committed_batches(&mut c);
    assert_eq!(
        batches,
        vec![0, committed_at],
        "the aborted batch is returned, with its abort listed"
    );
    let req = fetch_request(TOPIC, &[(0, 0, 1 << 20)], 0, 1 << 20).with_isolation_level(1);
    let r = c.request(11, &req);
    let aborted = r.responses[0].partitions[0]
        .aborted_transactions
        .clone()
        .unwrap_or_default();
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (aborted[0].producer_id.0, aborted[0].first_offset),
        (pid, 0)
    );
    let latest = c.list_offset(TOPIC, 0, -1);
    assert_eq!(latest.offset, lso, "latest is the end once nothing is open");
    // No offset was committed for the group by the fenced attempts.
    let r = c.request(
        1,
        &OffsetFetchRequest::default()
            .with_group_id(group)
            .with_topics(Some(vec![
                kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(name(TOPIC))
                    .with_partition_indexes(vec![0]),
            ])),
    );
    assert_eq!(r.topics[0].partitions[0].committed_offset, -1);
}
