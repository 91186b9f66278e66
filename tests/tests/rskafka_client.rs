//! rskafka, a pure-Rust client, against the real broker.

use std::collections::BTreeMap;

use chrono::DateTime;
use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use strata_tests::Broker;

#[tokio::test(flavor = "multi_thread")]
async fn produce_fetch_and_list_offsets() {
    let broker = Broker::start(&[]);
    let client = ClientBuilder::new(vec![broker.addr()])
        .build()
        .await
        .expect("connect");
    client
        .controller_client()
        .unwrap()
        .create_topic("rs", 2, 1, 5_000)
        .await
        .expect("create topic");
    let partition = client
        .partition_client("rs", 1, UnknownTopicHandling::Retry)
        .await
        .unwrap();

    let records: Vec<Record> = (0..50i64)
        .map(|i| Record {
            key: (i % 2 == 0).then(|| format!("k{i}").into_bytes()),
            value: (i % 7 != 0).then(|| vec![i as u8; (i * 13) as usize]),
            headers: BTreeMap::from([("n".to_string(), i.to_string().into_bytes())]),
            timestamp: DateTime::from_timestamp_millis(1_600_000_000_000 + i * 1000).unwrap(),
        })
        .collect();
    let mut offsets = Vec::new();
    for chunk in records.chunks(10) {
        offsets.extend(
            partition
                .produce(chunk.to_vec(), Compression::NoCompression)
                .await
                .expect("produce"),
        );
    }
    assert_eq!(offsets, (0..50).collect::<Vec<_>>());

    let mut got = Vec::new();
    while got.len() < records.len() {
        let (batch, high_watermark) = partition
            .fetch_records(got.len() as i64, 1..1_000_000, 1_000)
            .await
            .expect("fetch");
        assert_eq!(high_watermark, 50);
        got.extend(batch);
    }
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.record, records[i]);
    }

    assert_eq!(partition.get_offset(OffsetAt::Earliest).await.unwrap(), 0);
    assert_eq!(partition.get_offset(OffsetAt::Latest).await.unwrap(), 50);
    let ts = DateTime::from_timestamp_millis(1_600_000_000_000 + 20_500).unwrap();
    assert_eq!(
        partition.get_offset(OffsetAt::Timestamp(ts)).await.unwrap(),
        21
    );

    // The other partition is empty.
    let empty = client
        .partition_client("rs", 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    assert_eq!(empty.get_offset(OffsetAt::Latest).await.unwrap(), 0);
    let (batch, hw) = empty.fetch_records(0, 1..1000, 100).await.unwrap();
    assert!(batch.is_empty());
    assert_eq!(hw, 0);
}
