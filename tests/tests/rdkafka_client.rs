//! librdkafka (through the rdkafka crate) against the real broker: admin,
//! produce with keys, headers, null values and explicit timestamps, consume
//! by offset, and timestamp lookup.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use strata_tests::Broker;

const BASE_TS: i64 = 1_700_000_000_000;

#[derive(Debug, Clone, PartialEq)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: i64,
}

fn record(i: i64) -> Rec {
    Rec {
        key: (i % 3 != 0).then(|| format!("key-{i}").into_bytes()),
        value: (i % 10 != 0)
            .then(|| format!("value-{i}-{}", "x".repeat((i % 50) as usize)).into_bytes()),
        headers: vec![
            ("i".into(), Some(i.to_string().into_bytes())),
            ("empty".into(), None),
        ],
        timestamp: BASE_TS + i * 10,
    }
}

fn admin(broker: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .create()
        .expect("admin client")
}

async fn produce(
    broker: &Broker,
    topic: &str,
    codec: &str,
    n: i64,
    partitions: i32,
) -> BTreeMap<(i32, i64), Rec> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", codec)
        .create()
        .expect("producer");
    let mut futures = Vec::new();
    for i in 0..n {
        let r = record(i);
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let mut fr = FutureRecord::<[u8], [u8]>::to(topic)
            .partition((i % partitions as i64) as i32)
            .timestamp(r.timestamp)
            .headers(headers);
        if let Some(k) = &r.key {
            fr = fr.key(k);
        }
        if let Some(v) = &r.value {
            fr = fr.payload(v);
        }
        futures.push((
            r.clone(),
            producer
                .send_result(fr)
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        ));
    }
    let mut acked = BTreeMap::new();
    for (r, f) in futures {
        let d = f
            .await
            .expect("delivery future")
            .unwrap_or_else(|(e, _)| panic!("delivery failed: {e}"));
        acked.insert((d.partition, d.offset), r);
    }
    acked
}

fn consume_all(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> BTreeMap<(i32, i64), Rec> {
    let consumer = strata_tests::consumer_from_start(&broker.addr(), topic, partitions);
    let mut got = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < expected && Instant::now() < deadline {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.expect("consume error");
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        let rec = Rec {
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
            timestamp: m.timestamp().to_millis().expect("timestamp"),
        };
        assert!(
            got.insert((m.partition(), m.offset()), rec).is_none(),
            "duplicate offset"
        );
    }
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_consume_and_timestamp_lookup() {
    let broker = Broker::start(&[]);
    let admin = admin(&broker);
    let created = admin
        .create_topics(
            &[NewTopic::new("rd", 3, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");

    for (topic, codec) in [
        ("rd", "none"),
        ("rd-gzip", "gzip"),
        ("rd-snappy", "snappy"),
        ("rd-lz4", "lz4"),
    ] {
        if topic != "rd" {
            let r = admin
                .create_topics(
                    &[NewTopic::new(topic, 3, TopicReplication::Fixed(1))],
                    &AdminOptions::new(),
                )
                .await
                .unwrap();
            assert!(r[0].is_ok(), "{r:?}");
        }
        let acked = produce(&broker, topic, codec, 300, 3).await;
        assert_eq!(acked.len(), 300);
        for p in 0..3 {
            let offsets: Vec<i64> = acked
                .keys()
                .filter(|(pp, _)| *pp == p)
                .map(|(_, o)| *o)
                .collect();
            assert_eq!(
                offsets,
                (0..100).collect::<Vec<_>>(),
                "contiguous offsets in partition {p}"
            );
        }
        let got = consume_all(&broker, topic, 3, 300);
        assert_eq!(got, acked, "every record comes back as produced ({codec})");
    }

    // Timestamp lookup: record i has timestamp BASE_TS + 10 i and lands in
    // partition i % 3 at offset i / 3.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("rd", 0, Offset::Offset(BASE_TS + 1500))
        .unwrap(); // i=150 -> offset 50
    tpl.add_partition_offset("rd", 1, Offset::Offset(BASE_TS + 1505))
        .unwrap(); // first i>=150.5 with i%3==1 is 151 -> 50
    tpl.add_partition_offset("rd", 2, Offset::Offset(BASE_TS + 99_999))
        .unwrap(); // after the end
    let found = consumer
        .offsets_for_times(tpl, Duration::from_secs(10))
        .unwrap();
    let off = |p| found.find_partition("rd", p).unwrap().offset();
    assert_eq!(off(0), Offset::Offset(50));
    assert_eq!(off(1), Offset::Offset(50));
    assert_eq!(off(2), Offset::End);
    let (low, high) = consumer
        .fetch_watermarks("rd", 1, Duration::from_secs(10))
        .unwrap();
    assert_eq!((low, high), (0, 100));
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_create_partitions_delete_and_errors() {
    let broker = Broker::start(&[]);
    let admin = admin(&broker);
    let opts = AdminOptions::new();

    let r = admin
        .create_topics(
            &[NewTopic::new("adm", 2, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .unwrap();
    assert!(r[0].is_ok());
    let r = admin
        .create_topics(
            &[NewTopic::new("adm", 2, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::TopicAlreadyExists
    );
    let r = admin
        .create_topics(
            &[NewTopic::new("bad name!", 1, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(r[0].as_ref().unwrap_err().1, RDKafkaErrorCode::InvalidTopic);
    let r = admin
        .create_topics(
            &[NewTopic::new("rf3", 1, TopicReplication::Fixed(3))],
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidReplicationFactor
    );
    let r = admin
        .create_topics(
            &[NewTopic::new("cfg", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon")],
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidConfig
    );
    let r = admin
        .create_topics(
            &[NewTopic::new("cfg", 1, TopicReplication::Fixed(1)).set("no.such.config", "1")],
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidConfig
    );

    let r = admin
        .create_partitions(&[NewPartitions::new("adm", 5)], &opts)
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    let r = admin
        .create_partitions(&[NewPartitions::new("adm", 3)], &opts)
        .await
        .unwrap();
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidPartitions
    );
    let md = admin
        .inner()
        .fetch_metadata(Some("adm"), Duration::from_secs(5))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 5);

    let r = admin.delete_topics(&["adm"], &opts).await.unwrap();
    assert!(r[0].is_ok());
    let r = admin.delete_topics(&["adm"], &opts).await.unwrap();
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::UnknownTopicOrPartition
    );
    assert!(
        !broker.data_dir().join("adm-0").exists(),
        "partition directories are removed"
    );
}
