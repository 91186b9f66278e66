use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;
use strata_storage::{Log, StorageError};
use tracing::{debug, warn};

use super::{blocking, str_bytes};
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::error::storage_code;
use crate::recompress::{recompress, topic_codec, RecompressError};

/// Produce: validates and appends each partition's batches. The append is
/// in the page cache before the response is sent, which is what acks=1 and
/// acks=-1 promise on a single node; see ARCHITECTURE.md for fsync.
pub async fn handle(
    broker: &Arc<Broker>,
    req: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let b = Arc::clone(broker);
    // Each append wakes the fetches waiting on its own partition.
    let (responses, rolled) = blocking(move || append_all(&b, req, version)).await;
    if !rolled.is_empty() {
        // The segments these appends sealed are fsynced in the background,
        // so that this response (and the ones queued behind it on the
        // connection) does not wait for up to a segment of dirty pages.
        tokio::task::spawn_blocking(move || {
            for log in rolled {
                if let Err(e) = log.flush_sealed() {
                    warn!(error = %e, "fsync of a sealed segment failed");
                }
            }
        });
    }
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

fn partition_error(index: i32, code: i16, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(str_bytes))
}

/// Appends every partition's batches; returns the answers and the logs that
/// rolled a segment.
fn append_all(
    broker: &Broker,
    req: ProduceRequest,
    version: i16,
) -> (Vec<TopicProduceResponse>, Vec<Arc<Log>>) {
    let bad_acks = !matches!(req.acks, -1..=1);
    let mut out = Vec::with_capacity(req.topic_data.len());
    let mut rolled = Vec::new();
    let config = broker.config();
    for topic_data in req.topic_data {
        // v13 names topics by id only.
        let by_id = version >= 13;
        let topic = if by_id {
            broker.topic_by_id(topic_data.topic_id)
        } else {
            broker.topic(&topic_data.name.0)
        };
        let unknown = if by_id {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        let topic_name = topic
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_else(|| topic_data.name.0.to_string());
        // acks=all asks every in-sync replica; a single node is the only
        // one, so a topic asking for more cannot be written with acks=all,
        // as Kafka answers when its in-sync set is too small.
        let min_isr = topic.as_ref().map_or(1, |t| {
            config
                .topic_value("min.insync.replicas", &t.configs)
                .0
                .parse::<i32>()
                .unwrap_or(1)
        });
        // A codec in compression.type makes the broker recompress batches
        // that have another.
        let recompression = topic.as_ref().and_then(|t| {
            topic_codec(&config.topic_value("compression.type", &t.configs).0)
                .map(|codec| (codec, config.compression_levels(&t.configs)))
        });
        let decompressed_limit = config.i64("socket.request.max.bytes") as usize;
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for pd in topic_data.partition_data {
            if bad_acks {
                partitions.push(partition_error(
                    pd.index,
                    ResponseError::InvalidRequiredAcks.code(),
                    None,
                ));
                continue;
            }
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(pd.index)) else {
                let code = if topic.is_some() {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    unknown
                };
                partitions.push(partition_error(pd.index, code.code(), None));
                continue;
            };
            if let Err(e) = broker.writable_topics() {
                partitions.push(partition_error(pd.index, e.code(), Some(e.to_string())));
                continue;
            }
            if req.acks == -1 && min_isr > 1 {
                partitions.push(partition_error(
                    pd.index,
                    ResponseError::NotEnoughReplicas.code(),
                    Some(format!(
                        "The size of the current ISR [{}] is insufficient to satisfy the min.isr requirement of {min_isr} for partition {}-{}",
                        broker.node_id, topic_name, pd.index
                    )),
                ));
                continue;
            }
            let Some(records) = pd.records else {
                partitions.push(partition_error(
                    pd.index,
                    ResponseError::CorruptMessage.code(),
                    Some("no records".into()),
                ));
                continue;
            };
            // A transactional batch goes only to a partition its producer's
            // open transaction includes (KIP-890's verification), so that
            // no record is left outside every transaction's markers.
            if let Ok(h) = strata_storage::batch::BatchHeader::parse(&records) {
                let transactional = strata_storage::producer::is_transactional(&h)
                    && h.attributes & strata_storage::batch::CONTROL_FLAG == 0;
                if transactional
                    && !broker.txns.verify_produce(
                        h.producer_id,
                        h.producer_epoch,
                        &topic_name,
                        pd.index,
                    )
                {
                    partitions.push(partition_error(
                        pd.index,
                        ResponseError::InvalidTxnState.code(),
                        Some(format!(
                            "the transaction of producer {} does not include {}-{}: add the partition to the transaction first",
                            h.producer_id, topic_name, pd.index
                        )),
                    ));
                    continue;
                }
            }
            // Offsets are assigned by rewriting the batch headers in place,
            // which needs a private copy of the request's bytes (or the
            // recompressed batches, which are one).
            let recompressed = match recompression {
                Some((codec, levels)) => recompress(&records, codec, levels, decompressed_limit),
                None => Ok(None),
            };
            let mut data = match recompressed {
                Ok(Some(rewritten)) => rewritten,
                Ok(None) => BytesMut::from(records),
                Err(e) => {
                    let code = match e {
                        RecompressError::TooLarge { .. } => ResponseError::MessageTooLarge,
                        _ => ResponseError::CorruptMessage,
                    };
                    debug!(topic = %topic_name, partition = pd.index, error = %e, "batch not recompressed");
                    partitions.push(partition_error(pd.index, code.code(), Some(e.to_string())));
                    continue;
                }
            };
            match partition.append(&mut data, now_ms()) {
                Ok(info) => {
                    if let (false, Some(t)) = (info.duplicate, &topic) {
                        t.counters.bytes_in.increment(data.len() as u64);
                        t.counters
                            .records_in
                            .increment((info.last_offset.0 - info.base_offset.0 + 1) as u64);
                    }
                    if info.rolled {
                        rolled.push(Arc::clone(partition.log()));
                    }
                    partitions.push(
                        PartitionProduceResponse::default()
                            .with_index(pd.index)
                            .with_base_offset(info.base_offset.0)
                            .with_log_append_time_ms(info.log_append_time_ms)
                            .with_log_start_offset(partition.log_start().0),
                    )
                }
                Err(e) => {
                    match &e {
                        StorageError::Io { .. } => {
                            warn!(topic = %topic_name, partition = pd.index, error = %e, "append failed")
                        }
                        _ => {
                            debug!(topic = %topic_name, partition = pd.index, error = %e, "append refused")
                        }
                    }
                    partitions.push(partition_error(
                        pd.index,
                        storage_code(&e),
                        Some(e.to_string()),
                    ));
                }
            }
        }
        out.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_topic_id(topic_data.topic_id)
                .with_partition_responses(partitions),
        );
    }
    (out, rolled)
}
