use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;
use strata_storage::{Log, StorageResult};

use super::blocking;
use crate::broker::Broker;
use crate::error::storage_code;
use crate::records::first_record_at_or_after;

/// Kafka's special ListOffsets timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// ListOffsets: offsets for the special timestamps, or the first record at
/// or after a timestamp.
pub async fn handle(
    broker: &Arc<Broker>,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    // Leader epochs exist from v4; earlier versions must leave the field unset.
    let epoch = if version >= 4 { 0 } else { -1 };
    let b = Arc::clone(broker);
    let topics = blocking(move || {
        req.topics
            .into_iter()
            .map(|t| {
                let topic = b.topic(&t.name.0);
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let base = ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index)
                            .with_timestamp(-1)
                            .with_offset(-1);
                        let Some(log) = topic.as_ref().and_then(|t| t.partition(p.partition_index))
                        else {
                            return base
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                        };
                        match lookup(log, p.timestamp) {
                            Ok((timestamp, offset)) => base
                                .with_timestamp(timestamp)
                                .with_offset(offset)
                                .with_leader_epoch(epoch),
                            Err(e) => base.with_error_code(storage_code(&e)),
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect()
    })
    .await;
    ListOffsetsResponse::default().with_topics(topics)
}

/// (timestamp, offset) answering `query`, -1 for either when unknown.
fn lookup(log: &Log, query: i64) -> StorageResult<(i64, i64)> {
    Ok(match query {
        LATEST => (-1, log.high_watermark().0),
        EARLIEST | EARLIEST_LOCAL => (-1, log.log_start_offset().0),
        // Nothing is tiered yet: Kafka answers -1 when remote storage is off.
        LATEST_TIERED => (-1, -1),
        MAX_TIMESTAMP => match log.batch_with_max_timestamp()? {
            Some(batch) => first_record_at_or_after(&batch, i64::MIN, true).unwrap_or((-1, -1)),
            None => (-1, -1),
        },
        ts => match log.batch_for_timestamp(ts)? {
            Some(batch) => first_record_at_or_after(&batch, ts, false).unwrap_or((-1, -1)),
            None => (-1, -1),
        },
    })
}
