use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::ResponseError;
use strata_storage::{Offset, StorageError};
use tracing::{debug, warn};

use super::blocking;
use crate::broker::{Broker, Partition};
use crate::error::storage_code;

/// Upper bound on a long poll, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The least a pass after the first waits for the cold tier, enough to read
/// a chunk the first pass left in the cache.
const LATE_REMOTE_WAIT: Duration = Duration::from_millis(20);

/// A partition whose fetch offset is below the hot tier: read from the
/// cold tier after the local pass.
struct RemoteNeeded {
    topic: usize,
    partition: usize,
    handle: Arc<Partition>,
    offset: Offset,
    limit: usize,
    min_one: bool,
}

/// Fetch: reads whole batches from each partition, long-polling until
/// `min_bytes` are available or `max_wait_ms` passes; woken by appends.
/// Offsets below the hot tier are read from the cold tier, each within
/// `remote.fetch.max.wait.ms`: a slow store delays only this response.
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
    let remote_wait = Duration::from_millis(broker.config().i64("remote.fetch.max.wait.ms") as u64);
    let mut first_pass = true;
    loop {
        // Register for the wake-up before reading so that an append between
        // the read and the wait is not missed.
        let appended = broker.appended.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let (b, r) = (Arc::clone(broker), Arc::clone(&req));
        let (mut topics, mut bytes, mut errors, remote) =
            blocking(move || read_all(&b, &r, version)).await;
        // The first pass gives the cold tier its full wait; a later pass (woken
        // by an append, or at the deadline) only what is left of the client's
        // wait, so that the answer comes within max(max_wait_ms,
        // remote.fetch.max.wait.ms) however slow the store is. A read the
        // earlier pass left downloading is usually cached by now.
        let wait = if first_pass {
            remote_wait
        } else {
            deadline
                .saturating_duration_since(Instant::now())
                .clamp(LATE_REMOTE_WAIT, remote_wait.max(LATE_REMOTE_WAIT))
        };
        first_pass = false;
        // One deadline for all the partitions read from the cold tier.
        let remote_deadline = tokio::time::Instant::now() + wait;
        for need in remote {
            let data = &mut topics[need.topic].partitions[need.partition];
            match tokio::time::timeout_at(
                remote_deadline,
                need.handle
                    .remote
                    .read(need.offset, need.limit, need.min_one),
            )
            .await
            {
                Ok(Ok(Some(read))) => {
                    bytes += read.records.len();
                    data.records = Some(read.records);
                }
                Ok(Ok(None)) => data.error_code = ResponseError::OffsetOutOfRange.code(),
                Ok(Err(e)) => {
                    warn!(offset = need.offset.0, error = %e, retriable = e.is_retriable(), "remote read failed");
                    data.error_code = ResponseError::KafkaStorageError.code();
                    errors = true;
                }
                // Answer without these records; the consumer fetches again
                // and finds the chunks the read left downloading.
                Err(_) => debug!(
                    offset = need.offset.0,
                    "remote read still running at remote.fetch.max.wait.ms"
                ),
            }
        }
        let now = Instant::now();
        if bytes >= req.min_bytes.max(0) as usize || errors || now >= deadline {
            count_bytes_out(broker, &req, &topics);
            return FetchResponse::default().with_responses(topics);
        }
        let _ = tokio::time::timeout(deadline - now, appended).await;
    }
}

/// Adds the record bytes of an answer to `strata_topic_bytes_out_total`.
/// The response's topics are the request's, in order; from v13 they are
/// named by id only.
fn count_bytes_out(broker: &Broker, req: &FetchRequest, topics: &[FetchableTopicResponse]) {
    for (asked, answer) in req.topics.iter().zip(topics) {
        let bytes: usize = answer
            .partitions
            .iter()
            .filter_map(|p| p.records.as_ref().map(|r| r.len()))
            .sum();
        if bytes == 0 {
            continue;
        }
        let topic = if asked.topic.0.is_empty() {
            broker.topic_by_id(asked.topic_id)
        } else {
            broker.topic(&asked.topic.0)
        };
        if let Some(t) = topic {
            t.counters.bytes_out.increment(bytes as u64);
        }
    }
}

/// One pass over the requested partitions' hot tiers: the response topics,
/// the record bytes returned, whether any partition had an error, and the
/// partitions to read from the cold tier.
fn read_all(
    broker: &Broker,
    req: &FetchRequest,
    version: i16,
) -> (Vec<FetchableTopicResponse>, usize, bool, Vec<RemoteNeeded>) {
    let mut remaining = if req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        usize::MAX
    };
    let mut total = 0usize;
    let mut errors = false;
    let mut remote = Vec::new();
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
                .with_preferred_read_replica(BrokerId(-1))
                .with_aborted_transactions(Some(Vec::new()))
                .with_records(Some(Bytes::new()));
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(fp.partition)) else {
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
            let offset = Offset(fp.fetch_offset);
            match partition.log.read(offset, limit, total == 0) {
                Ok(data) => {
                    total += data.records.len();
                    remaining = remaining.saturating_sub(data.records.len());
                    partitions.push(
                        base.with_high_watermark(data.high_watermark.0)
                            .with_last_stable_offset(data.high_watermark.0)
                            .with_log_start_offset(partition.log_start().0)
                            .with_records(Some(data.records)),
                    );
                }
                Err(StorageError::OffsetOutOfRange {
                    log_start, log_end, ..
                }) if offset < log_start && partition.remote.covers(offset) => {
                    remote.push(RemoteNeeded {
                        topic: out.len(),
                        partition: partitions.len(),
                        handle: Arc::clone(partition),
                        offset,
                        limit,
                        min_one: total == 0,
                    });
                    partitions.push(
                        base.with_high_watermark(log_end.0)
                            .with_last_stable_offset(log_end.0)
                            .with_log_start_offset(partition.log_start().0),
                    );
                }
                Err(e) => {
                    errors = true;
                    let hw = match &e {
                        StorageError::OffsetOutOfRange { log_end, .. } => log_end.0,
                        _ => -1,
                    };
                    partitions.push(
                        base.with_error_code(storage_code(&e))
                            .with_high_watermark(hw)
                            .with_last_stable_offset(hw)
                            .with_log_start_offset(partition.log_start().0),
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
    (out, total, errors, remote)
}
