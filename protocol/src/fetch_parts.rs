//! A Fetch response frame in parts, with holes where record bytes go, so
//! that the server can send records from segment files to the socket
//! without copying them through user space (`sendfile`), as Kafka does.
//!
//! Every byte around the holes is written by `kafka-protocol` itself: the
//! response, each topic and each partition is encoded once with an empty
//! list (or no records) and split where that list or field goes, found by
//! comparing two encodings that differ only there. The frame is byte for
//! byte what [`crate::encode_response`] writes with the records in place
//! (the tests compare both for every version).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use crate::ProtocolError;

/// Record bytes the caller sends itself: partition `partition` of topic
/// `topic` (indexes into the response's lists) carries `len` bytes. Its
/// `records` field in the response must be `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hole {
    pub topic: usize,
    pub partition: usize,
    pub len: usize,
}

/// A piece of the frame: bytes to write, or hole `i`'s record bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Bytes(Bytes),
    Hole(usize),
}

/// Encodes a Fetch response frame (length prefix, header, body) with the
/// `holes`' records left out, in order. Partitions not named by a hole are
/// encoded whole.
pub fn encode_fetch_response_parts(
    version: i16,
    correlation_id: i32,
    response: &FetchResponse,
    holes: &[Hole],
) -> Result<Vec<Part>, ProtocolError> {
    let err = |reason: String| ProtocolError::Encode {
        api_key: ApiKey::Fetch,
        version,
        reason,
    };
    let flexible = version >= 12;
    let mut out = Parts::default();
    // The length prefix is filled in at the end.
    out.buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out.buf, ApiKey::Fetch.response_header_version(version))
        .map_err(|e| err(e.to_string()))?;

    // The response without topics, split where its topic list goes.
    let mut shell = response.clone();
    shell.responses = Vec::new();
    let (head, tail) =
        split_list(&shell, version, |r, n| r.responses = empty_topics(n)).map_err(err)?;
    out.buf.extend_from_slice(&head);
    put_len(&mut out.buf, flexible, response.responses.len());
    for (t, topic) in response.responses.iter().enumerate() {
        let mut shell = topic.clone();
        shell.partitions = Vec::new();
        let (head, tail) =
            split_list(&shell, version, |r, n| r.partitions = empty_partitions(n)).map_err(err)?;
        out.buf.extend_from_slice(&head);
        put_len(&mut out.buf, flexible, topic.partitions.len());
        for (p, partition) in topic.partitions.iter().enumerate() {
            match holes.iter().position(|h| h.topic == t && h.partition == p) {
                None => partition
                    .encode(&mut out.buf, version)
                    .map_err(|e| err(e.to_string()))?,
                Some(i) => {
                    if partition.records.is_some() {
                        return Err(err(format!(
                            "partition {p} of topic {t} has records and a hole"
                        )));
                    }
                    let (before, after) = split_records(partition, version).map_err(err)?;
                    out.buf.extend_from_slice(&before);
                    put_records_len(&mut out.buf, flexible, holes[i].len);
                    out.hole(i, holes[i].len);
                    out.buf.extend_from_slice(&after);
                }
            }
        }
        out.buf.extend_from_slice(&tail);
    }
    out.buf.extend_from_slice(&tail);
    Ok(out.finish())
}

/// The frame so far: finished parts, the bytes being written, and how many
/// bytes the holes add.
#[derive(Default)]
struct Parts {
    parts: Vec<Part>,
    buf: BytesMut,
    hole_bytes: usize,
}

impl Parts {
    fn hole(&mut self, i: usize, len: usize) {
        let done = self.buf.split().freeze();
        self.parts.push(Part::Bytes(done));
        self.parts.push(Part::Hole(i));
        self.hole_bytes += len;
    }

    fn finish(mut self) -> Vec<Part> {
        let rest = self.buf.split().freeze();
        self.parts.push(Part::Bytes(rest));
        let total: usize = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Bytes(b) => b.len(),
                Part::Hole(_) => 0,
            })
            .sum::<usize>()
            + self.hole_bytes;
        let len = ((total - 4) as i32).to_be_bytes();
        if let Some(Part::Bytes(first)) = self.parts.first_mut() {
            let mut b = BytesMut::from(&first[..]);
            b[0..4].copy_from_slice(&len);
            *first = b.freeze();
        }
        self.parts
            .retain(|p| !matches!(p, Part::Bytes(b) if b.is_empty()));
        self.parts
    }
}

/// Splits `value`'s encoding where one of its lists goes: `with(value, n)`
/// sets that list to `n` default items. The encodings with none and with
/// one item differ first where the list's length is; what follows the
/// length in the empty encoding is the tail.
fn split_list<T: Encodable + Clone>(
    value: &T,
    version: i16,
    with: impl Fn(&mut T, usize),
) -> Result<(Bytes, Bytes), String> {
    let mut empty = value.clone();
    with(&mut empty, 0);
    let mut one = value.clone();
    with(&mut one, 1);
    let a = encode(&empty, version)?;
    let b = encode(&one, version)?;
    // An empty list's length is a one-byte varint (flexible versions), or a
    // four-byte integer whose last byte is the first to differ from one.
    let (at, len_size) = if version >= 12 {
        (first_difference(&a, &b), 1)
    } else {
        (first_difference(&a, &b) - 3, 4)
    };
    Ok((a.slice(..at), a.slice(at + len_size..)))
}

/// Splits a partition's encoding (with no records) around its records
/// field, found where the encodings with no records and with empty records
/// differ.
fn split_records(partition: &PartitionData, version: i16) -> Result<(Bytes, Bytes), String> {
    let none = encode(partition, version)?;
    let empty = encode(&partition.clone().with_records(Some(Bytes::new())), version)?;
    let at = first_difference(&none, &empty);
    // No records: a one-byte varint 0 (flexible) or the four bytes of -1.
    let len_size = if version >= 12 { 1 } else { 4 };
    Ok((none.slice(..at), none.slice(at + len_size..)))
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

fn encode<T: Encodable>(value: &T, version: i16) -> Result<Bytes, String> {
    let mut buf = BytesMut::new();
    value.encode(&mut buf, version).map_err(|e| e.to_string())?;
    Ok(buf.freeze())
}

fn empty_topics(n: usize) -> Vec<FetchableTopicResponse> {
    vec![FetchableTopicResponse::default(); n]
}

fn empty_partitions(n: usize) -> Vec<PartitionData> {
    vec![PartitionData::default(); n]
}

/// An array's length: a compact array's varint of n + 1, or an int32.
fn put_len(buf: &mut BytesMut, flexible: bool, n: usize) {
    if flexible {
        put_varint(buf, n as u32 + 1);
    } else {
        buf.put_i32(n as i32);
    }
}

/// A records field's length: compact nullable bytes' varint of len + 1, or
/// an int32.
fn put_records_len(buf: &mut BytesMut, flexible: bool, len: usize) {
    if flexible {
        put_varint(buf, len as u32 + 1);
    } else {
        buf.put_i32(len as i32);
    }
}

fn put_varint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, LeaderIdAndEpoch, NodeEndpoint,
    };
    use kafka_protocol::messages::{BrokerId, ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use crate::encode_response;

    fn records(len: usize, seed: u8) -> Bytes {
        Bytes::from(
            (0..len)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
                .collect::<Vec<_>>(),
        )
    }

    /// A response with three topics of several partitions, errors, aborted
    /// transactions, a preferred read replica, a tagged current leader and
    /// node endpoints, with record sizes that need one- to three-byte
    /// varints.
    fn response(version: i16) -> FetchResponse {
        let sizes = [[0usize, 5, 200], [16_000, 1, 70_000], [3, 0, 129]];
        let topics = sizes
            .iter()
            .enumerate()
            .map(|(t, sizes)| {
                let partitions = sizes
                    .iter()
                    .enumerate()
                    .map(|(p, &len)| {
                        let mut d = PartitionData::default()
                            .with_partition_index(p as i32)
                            .with_high_watermark(1_000 + p as i64)
                            .with_last_stable_offset(900)
                            .with_log_start_offset(if version >= 5 { 7 } else { -1 })
                            .with_preferred_read_replica(BrokerId(if p == 1 && version >= 11 {
                                2
                            } else {
                                -1
                            }))
                            .with_aborted_transactions(Some(vec![AbortedTransaction::default()
                                .with_producer_id(ProducerId(5))
                                .with_first_offset(10)]))
                            .with_records(Some(records(len, (t * 3 + p) as u8)));
                        if p == 2 {
                            d = d.with_error_code(6);
                            if version >= 12 {
                                d = d.with_current_leader(
                                    LeaderIdAndEpoch::default()
                                        .with_leader_id(BrokerId(1))
                                        .with_leader_epoch(3),
                                );
                            }
                        }
                        d
                    })
                    .collect();
                let mut topic = FetchableTopicResponse::default().with_partitions(partitions);
                if version >= 13 {
                    topic = topic.with_topic_id(uuid_of(t));
                } else {
                    topic =
                        topic.with_topic(TopicName(StrBytes::from_string(format!("topic-{t}"))));
                }
                topic
            })
            .collect();
        let mut r = FetchResponse::default()
            .with_throttle_time_ms(3)
            .with_responses(topics);
        if version >= 7 {
            r = r.with_error_code(0).with_session_id(0);
        }
        if version >= 16 {
            r = r.with_node_endpoints(vec![NodeEndpoint::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_static_str("localhost"))
                .with_port(9092)]);
        }
        r
    }

    fn uuid_of(t: usize) -> uuid::Uuid {
        uuid::Uuid::from_u128(0x1234_0000 + t as u128)
    }

    #[test]
    fn parts_with_their_holes_filled_are_the_whole_response_in_every_version() {
        for version in 4..=18 {
            let whole = response(version);
            let expected = encode_response(
                ApiKey::Fetch,
                version,
                77,
                &kafka_protocol::messages::ResponseKind::Fetch(whole.clone()),
            )
            .unwrap();
            // Every other partition becomes a hole, some of them empty.
            let mut holed = whole.clone();
            let mut holes = Vec::new();
            let mut fill = Vec::new();
            for (t, topic) in holed.responses.iter_mut().enumerate() {
                for (p, partition) in topic.partitions.iter_mut().enumerate() {
                    if (t + p) % 2 == 0 {
                        let r = partition.records.take().unwrap();
                        holes.push(Hole {
                            topic: t,
                            partition: p,
                            len: r.len(),
                        });
                        fill.push(r);
                    }
                }
            }
            let parts = encode_fetch_response_parts(version, 77, &holed, &holes).unwrap();
            let mut got = BytesMut::new();
            for part in &parts {
                match part {
                    Part::Bytes(b) => got.extend_from_slice(b),
                    Part::Hole(i) => got.extend_from_slice(&fill[*i]),
                }
            }
            assert_eq!(got.freeze(), expected, "version {version}");
            assert_eq!(
                parts.iter().filter(|p| matches!(p, Part::Hole(_))).count(),
                holes.len()
            );
            // Without holes it is the whole response too.
            let parts = encode_fetch_response_parts(version, 77, &whole, &[]).unwrap();
            assert_eq!(parts, vec![Part::Bytes(expected)], "version {version}");
        }
    }
}
