use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::ResponseError;
use strata_storage::batch::{whole_batches_within, BatchHeader};
use strata_storage::FileData;
use strata_storage::{Offset, StorageError};
use strata_tiering::{HotRead, Isolation, ReadForm, TieredPartition};
use tokio::sync::Notify;
use tracing::{debug, warn};

use super::blocking;
use crate::broker::Broker;
use crate::error::storage_code;

/// Upper bound on a long poll, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The least a pass after the first waits for the cold tier, enough to read
/// a chunk the first pass left in the cache.
const LATE_REMOTE_WAIT: Duration = Duration::from_millis(20);

/// A partition whose fetch offset is below the hot tier: read from the
/// cold tier after the local pass.
struct ColdRead {
    topic: usize,
    partition: usize,
    handle: Arc<TieredPartition>,
    offset: Offset,
    limit: usize,
}

/// A Fetch answer. Partitions read from local disk as file regions have no
/// records in `response`; `files` holds them (topic and partition index in
/// the response, and the regions), for the server to send from the files.
pub struct FetchAnswer {
    pub response: FetchResponse,
    pub files: Vec<PartitionFiles>,
}

/// One partition's records as regions of its segment files.
pub struct PartitionFiles {
    pub topic: usize,
    pub partition: usize,
    pub data: FileData,
}

/// What one pass over the hot tiers found.
struct HotPass {
    topics: Vec<FetchableTopicResponse>,
    /// Hot partitions read as file regions (with `ReadForm::Files`).
    files: Vec<PartitionFiles>,
    /// Record bytes in `topics`.
    bytes: usize,
    /// Whether the answer goes out now: a partition answered with an
    /// error, or was sent to a read replica (as Kafka answers a fetch at
    /// once when it names a preferred read replica).
    answer_now: bool,
    /// Partitions to read from the cold tier, in request order.
    cold: Vec<ColdRead>,
    /// read_committed partitions whose answer needs its aborted
    /// transactions.
    committed: Vec<Committed>,
}

/// A read_committed partition: where its answer is, where it started, and
/// (for records sent from files, which are not in the response) where it
/// ends.
struct Committed {
    topic: usize,
    partition: usize,
    handle: Arc<TieredPartition>,
    offset: Offset,
    end: Option<Offset>,
}

/// Fetch: reads whole batches from each partition, long-polling until
/// `min_bytes` are available or `max_wait_ms` passes; woken only by appends
/// to the partitions it reads. Offsets below the hot tier are read from the
/// cold tier, all such partitions at once within `remote.fetch.max.wait.ms`:
/// a slow store delays only this response. The answer respects the
/// request's `max_bytes` across both tiers (except for one first batch, as
/// KIP-74 allows). Fetch sessions are not kept: every response is a full one
/// with session id 0, which clients treat as "no session" and keep sending
/// full fetches. With `ReadForm::Files` the hot tier's records are handed
/// out as file regions beside the response instead of inside it.
pub async fn handle(
    broker: &Arc<Broker>,
    req: FetchRequest,
    version: i16,
    form: ReadForm,
) -> FetchAnswer {
    if req.session_id != 0 {
        return FetchAnswer {
            response: FetchResponse::default()
                .with_error_code(ResponseError::FetchSessionIdNotFound.code()),
            files: Vec::new(),
        };
    }
    let req = Arc::new(req);
    let deadline =
        Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    let remote_wait = Duration::from_millis(broker.config().i64("remote.fetch.max.wait.ms") as u64);
    let max_bytes = if req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        usize::MAX
    };
    // Registered with every partition read, before it is read, so that an
    // append between the read and the wait leaves a permit here.
    let waker = Arc::new(Notify::new());
    let mut first_pass = true;
    loop {
        metrics::counter!("strata_fetch_passes_total").increment(1);
        let (b, r, w) = (Arc::clone(broker), Arc::clone(&req), Arc::clone(&waker));
        let HotPass {
            mut topics,
            mut files,
            mut bytes,
            mut answer_now,
            cold,
            committed,
        } = blocking(move || read_hot(&b, &r, version, max_bytes, &w, form)).await;
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
        if !cold.is_empty() {
            let hot_bytes = bytes;
            let remote_deadline = tokio::time::Instant::now() + wait;
            // Every cold partition is read at once, under one deadline.
            let reads = futures::future::join_all(cold.iter().map(|c| {
                tokio::time::timeout_at(
                    remote_deadline,
                    c.handle.read_cold(c.offset, c.limit, hot_bytes == 0),
                )
            }))
            .await;
            for (c, read) in cold.iter().zip(reads) {
                let data = &mut topics[c.topic].partitions[c.partition];
                match read {
                    Ok(Ok(Some(records))) => {
                        // Concurrent reads each had the whole budget left by
                        // the hot tiers; in request order, each keeps what
                        // still fits.
                        let keep = whole_batches_within(
                            &records,
                            max_bytes.saturating_sub(bytes),
                            bytes == 0,
                        );
                        bytes += keep;
                        data.records = Some(records.slice(..keep));
                    }
                    Ok(Ok(None)) => data.error_code = ResponseError::OffsetOutOfRange.code(),
                    Ok(Err(e)) => {
                        warn!(offset = c.offset.0, error = %e, retriable = e.is_retriable(), "remote read failed");
                        data.error_code = ResponseError::KafkaStorageError.code();
                        answer_now = true;
                    }
                    // Answer without these records; the consumer fetches again
                    // and finds the chunks the read left downloading.
                    Err(_) => debug!(
                        offset = c.offset.0,
                        "remote read still running at remote.fetch.max.wait.ms"
                    ),
                }
            }
        }
        let now = Instant::now();
        if bytes >= req.min_bytes.max(0) as usize || answer_now || now >= deadline {
            add_aborted(&mut topics, &mut files, &committed).await;
            count_bytes_out(broker, &req, &topics, &files);
            return FetchAnswer {
                response: FetchResponse::default().with_responses(topics),
                files,
            };
        }
        let _ = tokio::time::timeout(deadline - now, waker.notified()).await;
    }
}

/// Adds the record bytes of an answer to `strata_topic_bytes_out_total`.
/// The response's topics are the request's, in order; from v13 they are
/// named by id only.
fn count_bytes_out(
    broker: &Broker,
    req: &FetchRequest,
    topics: &[FetchableTopicResponse],
    files: &[PartitionFiles],
) {
    for (i, (asked, answer)) in req.topics.iter().zip(topics).enumerate() {
        let bytes: usize = answer
            .partitions
            .iter()
            .filter_map(|p| p.records.as_ref().map(|r| r.len()))
            .sum::<usize>()
            + files
                .iter()
                .filter(|f| f.topic == i)
                .map(|f| f.data.len())
                .sum::<usize>();
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

/// One pass over the requested partitions' hot tiers, registering `waker`
/// with each partition before reading it.
fn read_hot(
    broker: &Broker,
    req: &FetchRequest,
    version: i16,
    max_bytes: usize,
    waker: &Arc<Notify>,
    form: ReadForm,
) -> HotPass {
    let mut remaining = max_bytes;
    let mut total = 0usize;
    let mut answer_now = false;
    let mut cold = Vec::new();
    let mut committed = Vec::new();
    let mut files = Vec::new();
    let mut out = Vec::with_capacity(req.topics.len());
    let redirect = broker.preferred_read_replica(&req.rack_id);
    let follower = broker.is_follower();
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
                answer_now = true;
                let code = if topic.is_some() {
                    ResponseError::UnknownTopicOrPartition.code()
                } else {
                    unknown_code
                };
                partitions.push(base.with_error_code(code));
                continue;
            };
            partition.register_waiter(waker);
            let limit = (fp.partition_max_bytes.max(0) as usize).min(remaining);
            let offset = Offset(fp.fetch_offset);
            let isolation = Isolation::from_level(req.isolation_level);
            let read = partition.read_hot(offset, limit, total == 0, isolation, form);
            let offsets = partition.offsets();
            let base = base
                .with_high_watermark(offsets.high_watermark.0)
                .with_last_stable_offset(offsets.last_stable.0)
                .with_log_start_offset(offsets.log_start.0);
            match read {
                // A read replica answering as a follower sends a consumer at
                // its end back to the primary, which has the hot tail.
                Ok(HotRead::Records(data))
                    if follower && data.records.is_empty() && offset >= offsets.high_watermark =>
                {
                    answer_now = true;
                    partitions.push(base.with_error_code(ResponseError::OffsetNotAvailable.code()));
                }
                Ok(HotRead::Files(data))
                    if follower && data.is_empty() && offset >= offsets.high_watermark =>
                {
                    answer_now = true;
                    partitions.push(base.with_error_code(ResponseError::OffsetNotAvailable.code()));
                }
                Ok(HotRead::Files(data)) => {
                    let len = data.len();
                    total += len;
                    remaining = remaining.saturating_sub(len);
                    if isolation == Isolation::ReadCommitted && len > 0 {
                        committed.push(Committed {
                            topic: out.len(),
                            partition: partitions.len(),
                            handle: Arc::clone(partition),
                            offset,
                            end: data.end_offset,
                        });
                    }
                    let hw = data.high_watermark.0.max(offsets.high_watermark.0);
                    if len == 0 {
                        partitions.push(base.with_high_watermark(hw));
                    } else {
                        // The records travel beside the response.
                        files.push(PartitionFiles {
                            topic: out.len(),
                            partition: partitions.len(),
                            data,
                        });
                        partitions.push(base.with_high_watermark(hw).with_records(None));
                    }
                }
                Ok(HotRead::Records(data)) => {
                    total += data.records.len();
                    remaining = remaining.saturating_sub(data.records.len());
                    if isolation == Isolation::ReadCommitted && !data.records.is_empty() {
                        committed.push(Committed {
                            topic: out.len(),
                            partition: partitions.len(),
                            handle: Arc::clone(partition),
                            offset,
                            end: None,
                        });
                    }
                    partitions.push(
                        base.with_high_watermark(
                            data.high_watermark.0.max(offsets.high_watermark.0),
                        )
                        .with_records(Some(data.records)),
                    );
                }
                Ok(HotRead::Cold) if version >= 11 && redirect.is_some() => {
                    // KIP-392: the consumer reads the history from the read
                    // replica, with no records from here.
                    answer_now = true;
                    partitions.push(
                        base.with_preferred_read_replica(BrokerId(redirect.expect("checked"))),
                    );
                }
                Ok(HotRead::Cold) => {
                    if isolation == Isolation::ReadCommitted {
                        committed.push(Committed {
                            topic: out.len(),
                            partition: partitions.len(),
                            handle: Arc::clone(partition),
                            offset,
                            end: None,
                        });
                    }
                    cold.push(ColdRead {
                        topic: out.len(),
                        partition: partitions.len(),
                        handle: Arc::clone(partition),
                        offset,
                        limit,
                    });
                    partitions.push(base);
                }
                Err(e) => {
                    answer_now = true;
                    let hw = match &e {
                        StorageError::OffsetOutOfRange { log_end, .. } => log_end.0,
                        _ => -1,
                    };
                    partitions.push(
                        base.with_error_code(storage_code(&e))
                            .with_high_watermark(hw)
                            .with_last_stable_offset(hw),
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
    HotPass {
        topics: out,
        files,
        bytes: total,
        answer_now,
        cold,
        committed,
    }
}

/// Fills in the aborted transactions of every read_committed partition
/// that returned records: those with records in the range returned, from
/// whichever tier holds their index.
async fn add_aborted(
    topics: &mut [FetchableTopicResponse],
    files: &mut Vec<PartitionFiles>,
    committed: &[Committed],
) {
    for c in committed {
        let data = &mut topics[c.topic].partitions[c.partition];
        let end = match (c.end, data.records.as_ref()) {
            (Some(end), _) => end,
            (None, Some(records)) if !records.is_empty() => Offset(last_offset(records) + 1),
            _ => continue,
        };
        match c.handle.aborted_txns(c.offset, end).await {
            Ok(aborted) => {
                data.aborted_transactions = Some(
                    aborted
                        .into_iter()
                        .map(|t| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(t.producer_id))
                                .with_first_offset(t.first_offset.0)
                        })
                        .collect(),
                );
            }
            Err(e) => {
                // Without the list the consumer would show aborted records:
                // the partition answers with an error instead.
                warn!(offset = c.offset.0, error = %e, "aborted transactions unreadable");
                data.records = Some(Bytes::new());
                data.error_code = ResponseError::KafkaStorageError.code();
                files.retain(|f| (f.topic, f.partition) != (c.topic, c.partition));
            }
        }
    }
}

/// The offset of the last record of the last whole batch in `records`.
fn last_offset(records: &Bytes) -> i64 {
    let mut pos = 0;
    let mut last = -1;
    while let Ok(h) = BatchHeader::parse(&records[pos..]) {
        last = h.last_offset();
        pos += h.total_len();
        if pos >= records.len() {
            break;
        }
    }
    last
}
