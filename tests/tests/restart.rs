//! Durability across broker restarts: every acknowledged record survives a
//! SIGKILL (process crash) and a SIGTERM (clean shutdown).

use std::time::{Duration, Instant};

use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use strata_tests::Broker;

fn produce(broker: &Broker, topic: &str, from: usize, n: usize) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("acks", "all")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    for i in from..from + n {
        let value = format!("record-{i}");
        producer
            .send(
                BaseRecord::<str, str>::to(topic)
                    .partition(0)
                    .key(&value)
                    .payload(&value),
            )
            .expect("enqueue");
    }
    // flush waits for every delivery report; an error would leave messages
    // in flight.
    producer
        .flush(Duration::from_secs(30))
        .expect("all records acknowledged");
    assert_eq!(producer.in_flight_count(), 0);
}

fn read_all(broker: &Broker, topic: &str, expected: usize) -> Vec<(i64, String)> {
    let consumer = strata_tests::consumer_from_start(&broker.addr(), topic, 1);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < expected && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            out.push((
                m.offset(),
                String::from_utf8(m.payload().unwrap().to_vec()).unwrap(),
            ));
        }
    }
    out
}

fn expected(n: usize) -> Vec<(i64, String)> {
    (0..n).map(|i| (i as i64, format!("record-{i}"))).collect()
}

#[test]
fn acknowledged_records_survive_sigkill() {
    // Small segments so that the crash lands with several sealed segments
    // and a partly filled active one.
    let mut broker = Broker::start(&[
        "--set",
        "log.segment.bytes=20000",
        "--set",
        "log.index.interval.bytes=500",
    ]);
    produce(&broker, "crash", 0, 2000);
    broker.kill();
    broker.restart();
    assert_eq!(read_all(&broker, "crash", 2000), expected(2000));
    // The log keeps going where it was.
    produce(&broker, "crash", 2000, 500);
    broker.kill();
    broker.restart();
    assert_eq!(read_all(&broker, "crash", 2500), expected(2500));
    assert!(broker.log().contains("no clean shutdown recorded"));
}

#[test]
fn acknowledged_records_survive_sigterm() {
    let mut broker = Broker::start(&["--set", "log.segment.bytes=20000"]);
    produce(&broker, "term", 0, 1500);
    assert!(
        broker.terminate(),
        "SIGTERM exits cleanly:\n{}",
        broker.log()
    );
    assert!(broker.log().contains("shut down cleanly"));
    broker.restart();
    assert_eq!(read_all(&broker, "term", 1500), expected(1500));
    produce(&broker, "term", 1500, 10);
    assert_eq!(read_all(&broker, "term", 1510), expected(1510));
}
