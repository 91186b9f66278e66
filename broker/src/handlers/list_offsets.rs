use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;
use strata_storage::Offset;

use super::blocking;
use crate::broker::{Broker, Partition};
use crate::error::AdminError;
use crate::records::first_record_at_or_after;

/// Kafka's special ListOffsets timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

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
            partitions.push(match lookup(partition, p.timestamp).await {
                Ok((timestamp, offset)) => base
                    .with_timestamp(timestamp)
                    .with_offset(offset)
                    .with_leader_epoch(epoch),
                Err(e) => base.with_error_code(e.code()),
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

fn tiering(e: strata_tiering::TieringError) -> AdminError {
    AdminError::Tiering(e.to_string())
}

/// (timestamp, offset) answering `query`, -1 for either when unknown.
async fn lookup(p: &Arc<Partition>, query: i64) -> Result<(i64, i64), AdminError> {
    let log_start = p.log_start().0;
    let in_record = |batch: Option<Bytes>, ts: i64, max: bool| {
        batch
            .and_then(|b| first_record_at_or_after(&b, ts, max, log_start))
            .unwrap_or((-1, -1))
    };
    Ok(match query {
        LATEST => (-1, p.log.high_watermark().0),
        EARLIEST => (-1, p.log_start().0),
        EARLIEST_LOCAL => (-1, p.log.log_start_offset().0),
        LATEST_TIERED => (-1, p.remote.uploaded_end().map_or(-1, |end| end.0 - 1)),
        MAX_TIMESTAMP => {
            let log = Arc::clone(&p.log);
            let local = blocking(move || log.batch_with_max_timestamp())
                .await
                .map_err(AdminError::Storage)?;
            let local = in_record(local, i64::MIN, true);
            match p.remote.max_timestamp() {
                // Strictly larger: on a tie the earlier (remote) record wins.
                Some((ts, base)) if local.0 < 0 || ts >= local.0 => {
                    let batch = p.remote.batch_at(base).await.map_err(tiering)?;
                    let remote = in_record(batch, i64::MIN, true);
                    if remote.0 >= local.0 {
                        remote
                    } else {
                        local
                    }
                }
                _ => local,
            }
        }
        ts => {
            // History below the hot tier is searched in the cold tier.
            let local_start = p.log.log_start_offset();
            if p.remote.log_start().is_some_and(|r| r < local_start) {
                if let Some(batch) = p.remote.batch_for_timestamp(ts).await.map_err(tiering)? {
                    let found = in_record(Some(batch), ts, false);
                    if found.1 >= 0 && Offset(found.1) < local_start {
                        return Ok(found);
                    }
                }
            }
            let log = Arc::clone(&p.log);
            let batch = blocking(move || log.batch_for_timestamp(ts))
                .await
                .map_err(AdminError::Storage)?;
            in_record(batch, ts, false)
        }
    })
}
