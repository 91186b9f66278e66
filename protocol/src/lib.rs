//! Kafka wire framing and request/response codecs for Strata, on top of the
//! `kafka-protocol` crate. No I/O happens here: the broker reads frames off
//! its sockets and hands their bytes to [`decode_request`], and writes what
//! [`encode_response`] returns.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes: a
//! request header and a request body, or a response header and body.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};

pub mod fetch_parts;
mod guard;

pub use kafka_protocol;

/// The APIs Strata serves and exactly the versions it implements and tests.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
];

/// The version range Strata serves for `api_key`, if it serves it at all.
pub fn supported_versions(api_key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(k, _, _)| *k == api_key)
        .map(|&(_, min, max)| (min, max))
}

/// Why a frame or request could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    #[error("frame size {size} is negative or exceeds socket.request.max.bytes={max}")]
    FrameTooLarge { size: i64, max: usize },
    #[error("request of {0} bytes is too short for a request header")]
    Truncated(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("unsupported version {version} of {api_key:?}")]
    UnsupportedVersion {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
    },
    #[error("malformed {api_key:?} v{version} request: {reason}")]
    Malformed {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("could not encode {api_key:?} v{version} response: {reason}")]
    Encode {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
}

/// Checks a frame's 4-byte length prefix before anything is allocated for
/// the frame, returning the body length.
pub fn frame_len(prefix: [u8; 4], max: usize) -> Result<usize, ProtocolError> {
    let size = i32::from_be_bytes(prefix) as i64;
    if size < 0 || size as u64 > max as u64 {
        return Err(ProtocolError::FrameTooLarge { size, max });
    }
    Ok(size as usize)
}

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: RequestKind,
}

impl Request {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
}

/// Decodes one request frame (without its length prefix).
///
/// An unsupported version yields [`ProtocolError::UnsupportedVersion`] with
/// the correlation id, so that the caller can answer ApiVersions with the v0
/// fallback response as Kafka does.
pub fn decode_request(mut frame: Bytes) -> Result<Request, ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError::Truncated(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|_| ProtocolError::UnknownApiKey(raw_key))?;
    match supported_versions(api_key) {
        None => return Err(ProtocolError::UnknownApiKey(raw_key)),
        Some((min, max)) if version < min || version > max => {
            return Err(ProtocolError::UnsupportedVersion {
                api_key,
                version,
                correlation_id,
            })
        }
        Some(_) => {}
    }
    let malformed = |reason: String| ProtocolError::Malformed {
        api_key,
        version,
        reason,
    };
    guard::check_request(&frame, api_key, version).map_err(malformed)?;
    // The decoder is third-party code fed with untrusted bytes: a panic in it
    // must cost this one request, not the broker.
    let decoded = catch_unwind(AssertUnwindSafe(|| {
        decode_parts(&mut frame, api_key, version)
    }));
    match decoded {
        Ok(Ok((header, body))) => {
            // Bytes after the last field are ignored, as Kafka's parser
            // ignores them: librdkafka 2.x sends three after a Metadata v12
            // request for all topics (`list_topics()`), and Kafka answers it.
            Ok(Request {
                api_key,
                header,
                body,
            })
        }
        Ok(Err(reason)) => Err(malformed(reason)),
        Err(_) => Err(malformed("decoder panicked".into())),
    }
}

fn decode_parts(
    frame: &mut Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<(RequestHeader, RequestKind), String> {
    let header = RequestHeader::decode(frame, api_key.request_header_version(version))
        .map_err(|e| e.to_string())?;
    let body = RequestKind::decode(api_key, frame, version).map_err(|e| e.to_string())?;
    Ok((header, body))
}

/// A frame: the 4-byte length prefix, then what `write` puts after it (a
/// header and a body).
fn encode_frame(
    api_key: ApiKey,
    version: i16,
    write: impl FnOnce(&mut BytesMut) -> Result<(), String>,
) -> Result<Bytes, ProtocolError> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    write(&mut buf).map_err(|reason| ProtocolError::Encode {
        api_key,
        version,
        reason,
    })?;
    let len = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// Encodes a response frame, length prefix included.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, ProtocolError> {
    encode_frame(api_key, version, |buf| {
        ResponseHeader::default()
            .with_correlation_id(correlation_id)
            .encode(buf, api_key.response_header_version(version))
            .map_err(|e| e.to_string())?;
        body.encode(buf, version).map_err(|e| e.to_string())
    })
}

/// A client's request frame, length prefix included: the request header
/// in the version `version` of `R` needs, then the body. For Strata's own
/// command-line tools and tests.
pub fn encode_request<R: kafka_protocol::protocol::Request>(
    version: i16,
    correlation_id: i32,
    client_id: &'static str,
    body: &R,
) -> Result<Bytes, ProtocolError> {
    let api_key = ApiKey::try_from(R::KEY).map_err(|_| ProtocolError::UnknownApiKey(R::KEY))?;
    encode_frame(api_key, version, |buf| {
        kafka_protocol::messages::RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(kafka_protocol::protocol::StrBytes::from_static_str(
                client_id,
            )))
            .encode(buf, api_key.request_header_version(version))
            .map_err(|e| e.to_string())?;
        body.encode(buf, version).map_err(|e| e.to_string())
    })
}

/// Decodes a response frame (without its length prefix) to a request `R`
/// sent at `version`: its correlation id and body. Trailing bytes are an
/// error.
pub fn decode_response<R: kafka_protocol::protocol::Request>(
    mut frame: Bytes,
    version: i16,
) -> Result<(i32, R::Response), ProtocolError> {
    let api_key = ApiKey::try_from(R::KEY).map_err(|_| ProtocolError::UnknownApiKey(R::KEY))?;
    let bad = |reason: String| ProtocolError::Malformed {
        api_key,
        version,
        reason,
    };
    let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))
        .map_err(|e| bad(e.to_string()))?;
    let body = R::Response::decode(&mut frame, version).map_err(|e| bad(e.to_string()))?;
    if frame.has_remaining() {
        return Err(bad(format!("{} trailing bytes", frame.remaining())));
    }
    Ok((header.correlation_id, body))
}

/// The ApiVersions body listing [`SUPPORTED_APIS`].
pub fn api_versions_body(error_code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(
            SUPPORTED_APIS
                .iter()
                .map(|&(k, min, max)| {
                    ApiVersion::default()
                        .with_api_key(k as i16)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
}

/// Kafka's answer to an ApiVersions request of a version it does not know:
/// a v0 response with UNSUPPORTED_VERSION and the supported ranges, from
/// which the client picks a version it shares.
pub fn unsupported_api_versions_response(correlation_id: i32) -> Bytes {
    let body = api_versions_body(kafka_protocol::ResponseError::UnsupportedVersion.code());
    encode_response(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &ResponseKind::ApiVersions(body),
    )
    .expect("a v0 ApiVersions response always encodes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};

    fn frame<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Bytes {
        let mut buf = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7);
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    /// The Metadata v12 request librdkafka 2.16 sends for `list_topics()`
    /// (all topics), byte for byte: Kafka answers it, so Strata must too.
    #[test]
    fn librdkafka_list_topics_metadata_with_trailing_bytes_is_accepted() {
        let hex = "0003000c00000003000772646b61666b610000000000010000";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let request = decode_request(Bytes::from(bytes)).unwrap();
        match request.body {
            RequestKind::Metadata(m) => assert!(m.topics.is_none(), "all topics"),
            other => panic!("decoded as {other:?}"),
        }
    }

    #[test]
    fn frame_limits() {
        assert_eq!(frame_len(100i32.to_be_bytes(), 100).unwrap(), 100);
        assert!(frame_len(101i32.to_be_bytes(), 100).is_err());
        assert!(frame_len((-1i32).to_be_bytes(), 100).is_err());
    }

    #[test]
    fn decodes_supported_and_rejects_the_rest() {
        let r = decode_request(frame(ApiKey::Metadata, 12, &MetadataRequest::default())).unwrap();
        assert_eq!(r.api_key, ApiKey::Metadata);
        assert_eq!(r.header.correlation_id, 7);
        let e = decode_request(frame(
            ApiKey::ApiVersions,
            0,
            &ApiVersionsRequest::default(),
        ));
        assert!(e.is_ok());
        let mut bad = frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).to_vec();
        bad[3] = 9;
        assert!(matches!(
            decode_request(Bytes::from(bad)),
            Err(ProtocolError::UnsupportedVersion {
                version: 9,
                correlation_id: 7,
                ..
            })
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 99, 0, 0, 0, 0, 0, 1])),
            Err(ProtocolError::UnknownApiKey(99))
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 3, 0])),
            Err(ProtocolError::Truncated(3))
        ));
        let mut cut = frame(ApiKey::Metadata, 12, &MetadataRequest::default()).to_vec();
        cut.truncate(cut.len() - 2);
        assert!(matches!(
            decode_request(Bytes::from(cut)),
            Err(ProtocolError::Malformed { .. })
        ));
    }
}
