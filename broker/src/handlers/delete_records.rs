use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;
use strata_storage::Offset;
use tracing::warn;

use super::blocking;
use crate::broker::{Broker, Partition};
use crate::error::storage_code;

/// DeleteRecords: moves each partition's log start to the given offset
/// (-1: the high watermark) across both tiers, as Kafka's
/// `kafka-delete-records` does. The cold tier records the new start in its
/// manifest first, then the hot tier in its log directory; both are durable
/// before the answer, whose low watermark is the new log start. An offset
/// past the high watermark is OFFSET_OUT_OF_RANGE.
pub async fn handle(broker: &Arc<Broker>, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let topic = broker.topic(&t.name.0);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let answer = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition_index))
            else {
                partitions
                    .push(answer.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            let answer = match delete(partition, p.offset).await {
                Ok(low) => answer.with_low_watermark(low.0),
                Err(code) => answer.with_error_code(code),
            };
            partitions.push(answer);
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

async fn delete(partition: &Arc<Partition>, offset: i64) -> Result<Offset, i16> {
    let high_watermark = partition.log.log_end_offset();
    let target = match offset {
        -1 => high_watermark,
        o if o < 0 || o > high_watermark.0 => return Err(ResponseError::OffsetOutOfRange.code()),
        o => Offset(o),
    };
    if target <= partition.log_start() {
        return Ok(partition.log_start());
    }
    if let Err(e) = partition.remote.delete_records_before(target).await {
        warn!(error = %e, "recording a remote log start failed");
        return Err(ResponseError::KafkaStorageError.code());
    }
    let log = Arc::clone(&partition.log);
    blocking(move || log.delete_records_before(target))
        .await
        .map_err(|e| storage_code(&e))?;
    Ok(partition.log_start())
}
