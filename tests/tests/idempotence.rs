//! Idempotent producers: duplicates answered with the original offsets,
//! gaps and fenced epochs refused (raw protocol), and real idempotent
//! producers writing every record exactly once across broker crashes.

use std::time::Duration;

use kafka_protocol::messages::{InitProducerIdRequest, ProducerId};
use kafka_protocol::ResponseError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use strata_tests::raw::{idempotent_batch, Conn};
use strata_tests::{consumer_from_start, Broker};

#[test]
fn duplicates_gaps_and_fencing_over_the_wire() {
    let broker = Broker::start(&[]);
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(c.create_topic("idem", 1, &[]).error_code, 0);
    let init = c.request(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);

    assert_eq!(
        c.produce("idem", 0, idempotent_batch(3, pid, epoch, 0))
            .base_offset,
        0
    );
    // The same batch again (a retry): success, with the original offset.
    let dup = c.produce("idem", 0, idempotent_batch(3, pid, epoch, 0));
    assert_eq!((dup.error_code, dup.base_offset), (0, 0));
    assert_eq!(
        c.list_offset("idem", 0, -1).offset,
        3,
        "nothing was written twice"
    );
    assert_eq!(
        c.produce("idem", 0, idempotent_batch(2, pid, epoch, 3))
            .base_offset,
        3
    );
    // A gap in the sequence.
    assert_eq!(
        c.produce("idem", 0, idempotent_batch(1, pid, epoch, 9))
            .error_code,
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    // Re-initialising bumps the epoch and fences the old one.
    let again = c.request(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch),
    );
    assert_eq!(
        (again.producer_id.0, again.producer_epoch),
        (pid, epoch + 1)
    );
    // The new epoch starts over at sequence 0; once it has written, the old
    // epoch is fenced on the partition.
    assert_eq!(
        c.produce("idem", 0, idempotent_batch(1, pid, epoch + 1, 0))
            .base_offset,
        5
    );
    assert_eq!(
        c.produce("idem", 0, idempotent_batch(1, pid, epoch, 5))
            .error_code,
        ResponseError::InvalidProducerEpoch.code()
    );
    // Producer ids are unique across restarts.
    let other = c.request(
        0,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000),
    );
    assert_ne!(other.producer_id.0, pid);
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_producer_writes_exactly_once_across_crashes() {
    let mut broker = Broker::start(&["--set", "log.segment.bytes=30000"]);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("batch.size", "4000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "200")
        .create()
        .unwrap();
    let n = 3000;
    let mut acks = Vec::with_capacity(n);
    for i in 0..n {
        let value = format!("{i:06}");
        let fr = FutureRecord::<str, str>::to("exactly-once")
            .partition(0)
            .payload(&value);
        acks.push(
            producer
                .send_result(fr)
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
        if i == n / 3 || i == 2 * n / 3 {
            // Crash the broker mid-stream; librdkafka retries what was in
            // flight, and the broker must not store it twice.
            tokio::time::sleep(Duration::from_millis(50)).await;
            broker.kill();
            broker.restart();
        }
    }
    for (i, a) in acks.into_iter().enumerate() {
        a.await
            .unwrap()
            .unwrap_or_else(|(e, _)| panic!("record {i} not acknowledged: {e}"));
    }
    let consumer = consumer_from_start(&broker.addr(), "exactly-once", 1);
    let mut values = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while values.len() < n && std::time::Instant::now() < deadline {
        if let Some(m) =
            rdkafka::consumer::BaseConsumer::poll(&consumer, Duration::from_millis(200))
        {
            let m = m.unwrap();
            values.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        }
    }
    // Nothing more than the n records either.
    std::thread::sleep(Duration::from_millis(500));
    while let Some(m) = rdkafka::consumer::BaseConsumer::poll(&consumer, Duration::from_millis(200))
    {
        values.push(String::from_utf8(m.unwrap().payload().unwrap().to_vec()).unwrap());
    }
    let expected: Vec<String> = (0..n).map(|i| format!("{i:06}")).collect();
    assert_eq!(values.len(), n, "every record exactly once");
    assert!(values == expected, "in order");
}
