use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;
use strata_storage::Offset;
use tracing::warn;

use crate::broker::Broker;
use crate::error::tiering_code;

/// DeleteRecords: moves each partition's log start to the given offset
/// (-1: the high watermark) across both tiers, as Kafka's
/// `kafka-delete-records` does (see `TieredPartition::delete_records_before`);
/// the answer's low watermark is the new log start. An offset past the high
/// watermark is OFFSET_OUT_OF_RANGE.
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
            if let Err(e) = broker.writable_topics() {
                partitions.push(answer.with_error_code(e.code()));
                continue;
            }
            // -1 is the high watermark; other negative offsets are out of range.
            let target = (p.offset != -1).then_some(Offset(p.offset));
            let answer = match partition.delete_records_before(target).await {
                Ok(low) => answer.with_low_watermark(low.0),
                Err(e) => {
                    warn!(topic = %t.name.0, partition = p.partition_index, error = %e, "DeleteRecords failed");
                    answer.with_error_code(tiering_code(&e))
                }
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
