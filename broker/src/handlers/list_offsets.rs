use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;
use strata_tiering::OffsetQuery;
use tracing::warn;

use crate::broker::Broker;
use crate::error::tiering_code;
use crate::records::find_record;

/// ListOffsets across both tiers: offsets for the special timestamps, or
/// the first record at or after a timestamp.
pub async fn handle(
    broker: &Arc<Broker>,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    // Leader epochs exist from v4; earlier versions must leave the field unset.
    let epoch = if version >= 4 { 0 } else { -1 };
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let topic = broker.topic(&t.name.0);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let base = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1);
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition_index))
            else {
                partitions
                    .push(base.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            let mut query = OffsetQuery::from_timestamp(p.timestamp);
            // read_committed (v2+) asks for the last stable offset as latest.
            if query == OffsetQuery::Latest && req.isolation_level == 1 {
                query = OffsetQuery::LastStable;
            }
            partitions.push(match partition.list_offset(query, find_record).await {
                Ok(Some((timestamp, offset))) => base
                    .with_timestamp(timestamp)
                    .with_offset(offset.0)
                    .with_leader_epoch(epoch),
                Ok(None) => base.with_leader_epoch(epoch),
                Err(e) => {
                    warn!(topic = %t.name.0, partition = p.partition_index, error = %e, "ListOffsets failed");
                    base.with_error_code(tiering_code(&e))
                }
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}
