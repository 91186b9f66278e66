use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::ResponseError;
use strata_storage::{Offset, StorageError};

use super::blocking;
use crate::broker::Broker;
use crate::error::storage_code;

/// Upper bound on a long poll, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Fetch: reads whole batches from each partition, long-polling until
/// `min_bytes` are available or `max_wait_ms` passes; woken by appends.
/// Fetch sessions are not kept: every response is a full one with session
/// id 0, which clients treat as "no session" and keep sending full fetches.
pub async fn handle(broker: &Arc<Broker>, req: FetchRequest, version: i16) -> FetchResponse {
    if req.session_id != 0 {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    let req = Arc::new(req);
    let deadline =
        Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    loop {
        // Register for the wake-up before reading so that an append between
        // the read and the wait is not missed.
        let appended = broker.appended.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let (b, r) = (Arc::clone(broker), Arc::clone(&req));
        let (topics, bytes, errors) = blocking(move || read_all(&b, &r, version)).await;
        let now = Instant::now();
        if bytes >= req.min_bytes.max(0) as usize || errors || now >= deadline {
            return FetchResponse::default().with_responses(topics);
        }
        let _ = tokio::time::timeout(deadline - now, appended).await;
    }
}

/// One pass over the requested partitions: the response topics, the record
/// bytes returned and whether any partition had an error.
fn read_all(
    broker: &Broker,
    req: &FetchRequest,
    version: i16,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut remaining = if req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        usize::MAX
    };
    let mut total = 0usize;
    let mut errors = false;
    let mut out = Vec::with_capacity(req.topics.len());
    for ft in &req.topics {
        let (topic, unknown_code) = if version >= 13 {
            (
                broker.topic_by_id(ft.topic_id),
                ResponseError::UnknownTopicId.code(),
            )
        } else {
            (
                broker.topic(&ft.topic.0),
                ResponseError::UnknownTopicOrPartition.code(),
            )
        };
        let mut partitions = Vec::with_capacity(ft.partitions.len());
        for fp in &ft.partitions {
            let base = PartitionData::default()
                .with_partition_index(fp.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
                .with_aborted_transactions(Some(Vec::new()))
                .with_records(Some(Bytes::new()));
            let Some(log) = topic.as_ref().and_then(|t| t.partition(fp.partition)) else {
                errors = true;
                let code = if topic.is_some() {
                    ResponseError::UnknownTopicOrPartition.code()
                } else {
                    unknown_code
                };
                partitions.push(base.with_error_code(code));
                continue;
            };
            let limit = (fp.partition_max_bytes.max(0) as usize).min(remaining);
            match log.read(Offset(fp.fetch_offset), limit, total == 0) {
                Ok(data) => {
                    total += data.records.len();
                    remaining = remaining.saturating_sub(data.records.len());
                    partitions.push(
                        base.with_high_watermark(data.high_watermark.0)
                            .with_last_stable_offset(data.high_watermark.0)
                            .with_log_start_offset(data.log_start_offset.0)
                            .with_records(Some(data.records)),
                    );
                }
                Err(e) => {
                    errors = true;
                    let (hw, ls) = match &e {
                        StorageError::OffsetOutOfRange {
                            log_start, log_end, ..
                        } => (log_end.0, log_start.0),
                        _ => (-1, -1),
                    };
                    partitions.push(
                        base.with_error_code(storage_code(&e))
                            .with_high_watermark(hw)
                            .with_last_stable_offset(hw)
                            .with_log_start_offset(ls),
                    );
                }
            }
        }
        out.push(
            FetchableTopicResponse::default()
                .with_topic(if version >= 13 {
                    TopicName::default()
                } else {
                    ft.topic.clone()
                })
                .with_topic_id(ft.topic_id)
                .with_partitions(partitions),
        );
    }
    (out, total, errors)
}
