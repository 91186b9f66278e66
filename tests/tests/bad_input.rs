//! Hostile and malformed input over raw TCP: each case gets Kafka's answer
//! (an error code, or the offending connection closed), and another client
//! connected all along keeps being served.

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use strata_tests::raw::{batch, topic_name as name, Conn};
use strata_tests::Broker;

fn produce_code(conn: &mut Conn, topic: &str, partition: i32, records: bytes::Bytes) -> i16 {
    conn.produce(topic, partition, records).error_code
}

fn create_topic(conn: &mut Conn, topic: &str, configs: &[(&str, &str)]) -> i16 {
    conn.create_topic(topic, 1, configs).error_code
}

fn latest_offset(conn: &mut Conn, topic: &str) -> i64 {
    conn.list_offset(topic, 0, -1).offset
}

/// The bystander is still served.
fn assert_served(bystander: &mut Conn) {
    let r = bystander.request(3, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
}

#[test]
fn bad_frames_close_only_the_offending_connection() {
    let broker = Broker::start(&["--set", "socket.request.max.bytes=10000"]);
    let mut bystander = Conn::connect(&broker.addr());
    assert_served(&mut bystander);

    // A frame larger than socket.request.max.bytes: closed before the body
    // is read or allocated.
    let mut c = Conn::connect(&broker.addr());
    c.write_raw(&10_001i32.to_be_bytes());
    assert!(c.is_closed());
    assert_served(&mut bystander);

    // A negative frame size.
    let mut c = Conn::connect(&broker.addr());
    c.write_raw(&(-5i32).to_be_bytes());
    assert!(c.is_closed());

    // Garbage inside a well-sized frame.
    let mut c = Conn::connect(&broker.addr());
    c.write_frame(&[0xff, 0x13, 0x00, 0x07, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert!(c.is_closed());

    // A frame too short to hold a request header.
    let mut c = Conn::connect(&broker.addr());
    c.write_frame(&[0, 3]);
    assert!(c.is_closed());

    // An unknown API key, and a real API Strata does not serve (JoinGroup).
    for key in [999i16, 11] {
        let mut c = Conn::connect(&broker.addr());
        c.write_frame(&Conn::encode(key, 0, 1, &ApiVersionsRequest::default()));
        assert!(c.is_closed(), "API key {key}");
    }

    // An unsupported version of Metadata: v13's bytes labelled v14, one past
    // the newest served.
    let mut c = Conn::connect(&broker.addr());
    let mut frame = Conn::encode(3, 13, 1, &MetadataRequest::default()).to_vec();
    frame[2..4].copy_from_slice(&14i16.to_be_bytes());
    c.write_frame(&frame);
    assert!(c.is_closed());

    // A truncated body.
    let mut c = Conn::connect(&broker.addr());
    let frame = Conn::encode(
        3,
        12,
        1,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("abc")))
        ])),
    );
    c.write_frame(&frame[..frame.len() - 3]);
    assert!(c.is_closed());

    // A tiny frame whose array count claims two billion topics: refused
    // before the decoder sizes a buffer from it (that would abort the
    // process on a failed allocation).
    for version in [1i16, 12] {
        let mut c = Conn::connect(&broker.addr());
        let mut frame = Conn::encode(
            3,
            version,
            1,
            &MetadataRequest::default().with_topics(Some(vec![])),
        );
        // Both bodies are 4 bytes here: the empty array and, for v12, two
        // booleans and the tagged-field count.
        let header_len = frame.len() - 4;
        let mut bytes = frame.split_to(header_len).to_vec();
        if version >= 9 {
            bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07, 0, 0, 0]);
        } else {
            bytes.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0, 3, b'a', b'b', b'c', 1]);
        }
        c.write_frame(&bytes);
        assert!(c.is_closed(), "Metadata v{version}");
        assert_served(&mut bystander);
        assert!(
            !broker.log().contains("memory allocation"),
            "{}",
            broker.log()
        );
    }

    // An ApiVersions version from the future gets the v0 fallback answer.
    let mut c = Conn::connect(&broker.addr());
    // Header v1 by hand (the codec refuses to encode a version it does not
    // know): api key 18, version 99, correlation id 42, null client id.
    c.write_frame(&[0, 18, 0, 99, 0, 0, 0, 42, 0xff, 0xff]);
    let mut resp = c.read_frame().expect("an answer, not a closed connection");
    use kafka_protocol::protocol::Decodable;
    let header = ResponseHeader::decode(&mut resp, 0).unwrap();
    assert_eq!(header.correlation_id, 42);
    let body = ApiVersionsResponse::decode(&mut resp, 0).unwrap();
    assert_eq!(body.error_code, ResponseError::UnsupportedVersion.code());
    assert!(body
        .api_keys
        .iter()
        .any(|k| k.api_key == 18 && k.max_version == 4));

    assert_served(&mut bystander);
}

#[test]
fn bad_requests_get_kafka_error_codes() {
    let broker = Broker::start(&["--set", "auto.create.topics.enable=false"]);
    let mut bystander = Conn::connect(&broker.addr());
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(create_topic(&mut c, "t", &[]), 0);
    assert_eq!(
        create_topic(&mut c, "small", &[("max.message.bytes", "200")]),
        0
    );

    // A batch with a flipped bit fails its CRC: CORRUPT_MESSAGE, nothing stored.
    let good = batch(3, 10, 1000);
    let mut bad = good.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    assert_eq!(
        produce_code(&mut c, "t", 0, bad.into()),
        ResponseError::CorruptMessage.code()
    );
    assert_eq!(latest_offset(&mut c, "t"), 0);
    // A truncated batch, and bytes that are no batch at all.
    assert_eq!(
        produce_code(&mut c, "t", 0, good.slice(..good.len() - 5)),
        ResponseError::CorruptMessage.code()
    );
    assert_eq!(
        produce_code(&mut c, "t", 0, bytes::Bytes::from_static(&[1, 2, 3])),
        ResponseError::CorruptMessage.code()
    );
    assert_eq!(latest_offset(&mut c, "t"), 0);
    assert_eq!(produce_code(&mut c, "t", 0, good.clone()), 0);
    assert_eq!(latest_offset(&mut c, "t"), 3);

    // A batch over the topic's max.message.bytes.
    assert_eq!(
        produce_code(&mut c, "small", 0, batch(1, 500, 0)),
        ResponseError::MessageTooLarge.code()
    );
    assert_eq!(produce_code(&mut c, "small", 0, batch(1, 10, 0)), 0);

    // Unknown topics and partitions.
    assert_eq!(
        produce_code(&mut c, "nope", 0, good.clone()),
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        produce_code(&mut c, "t", 7, good.clone()),
        ResponseError::UnknownTopicOrPartition.code()
    );
    let md = c.request(
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("nope"))),
            MetadataRequestTopic::default().with_name(Some(name("bad/name"))),
        ])),
    );
    assert_eq!(
        md.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        md.topics[1].error_code,
        ResponseError::InvalidTopicException.code()
    );
    assert_eq!(
        create_topic(&mut c, "bad/name", &[]),
        ResponseError::InvalidTopicException.code()
    );
    assert_eq!(
        create_topic(&mut c, &"x".repeat(250), &[]),
        ResponseError::InvalidTopicException.code()
    );
    assert_eq!(
        create_topic(&mut c, "cfg", &[("retention.ms", "-7")]),
        ResponseError::InvalidConfig.code()
    );

    // Fetch: unknown partition, and an offset past the end.
    let fetch = |topic: &str, partition: i32, offset: i64| {
        FetchRequest::default()
            .with_max_wait_ms(0)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])])
    };
    let r = c.request(12, &fetch("t", 3, 0));
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let r = c.request(12, &fetch("t", 0, 100));
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ResponseError::OffsetOutOfRange.code()
    );
    assert_eq!(r.responses[0].partitions[0].high_watermark, 3);

    // Produce to a deleted topic.
    let del = DeleteTopicsRequest::default().with_topic_names(vec![name("t")]);
    assert_eq!(c.request(5, &del).responses[0].error_code, 0);
    assert_eq!(
        produce_code(&mut c, "t", 0, good.clone()),
        ResponseError::UnknownTopicOrPartition.code()
    );

    // Invalid acks.
    let req =
        ProduceRequest::default()
            .with_acks(5)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name("small"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(1, 1, 0)))])]);
    let r = c.request(9, &req);
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        ResponseError::InvalidRequiredAcks.code()
    );

    assert_served(&mut bystander);
}

/// A topic the broker recompresses: a batch that decompresses past
/// `socket.request.max.bytes` is MESSAGE_TOO_LARGE and one whose compressed
/// bytes are garbage CORRUPT_MESSAGE, each without allocating what it
/// claims; nothing is stored and everyone else is served.
#[test]
fn recompression_refuses_bombs_and_garbage() {
    use kafka_protocol::compression::{Compressor, Zstd};
    use strata_storage::testing::BatchBuilder;

    fn zstd(data: &[u8]) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        Zstd::compress(&mut out, |buf: &mut bytes::BytesMut| {
            buf.extend_from_slice(data);
            Ok(())
        })
        .unwrap();
        out.to_vec()
    }
    fn garbage(_: &[u8]) -> Vec<u8> {
        vec![0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5, 6, 7, 8]
    }

    let broker = Broker::start(&["--set", "socket.request.max.bytes=1048576"]);
    let mut bystander = Conn::connect(&broker.addr());
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(
        create_topic(&mut c, "gz", &[("compression.type", "gzip")]),
        0
    );
    // 8 MiB of records squeezed into a few kilobytes of zstd.
    let bomb = BatchBuilder::new(1)
        .payload(8 << 20)
        .compressed((4, zstd))
        .build();
    assert!(bomb.len() < 64 << 10);
    assert_eq!(
        produce_code(&mut c, "gz", 0, bomb.into()),
        ResponseError::MessageTooLarge.code()
    );
    let junk = BatchBuilder::new(1)
        .payload(10)
        .compressed((4, garbage))
        .build();
    assert_eq!(
        produce_code(&mut c, "gz", 0, junk.into()),
        ResponseError::CorruptMessage.code()
    );
    assert_served(&mut bystander);
    assert_eq!(latest_offset(&mut c, "gz"), 0);
    assert_eq!(produce_code(&mut c, "gz", 0, batch(3, 10, 1000)), 0);
    assert_eq!(latest_offset(&mut c, "gz"), 3);
}
