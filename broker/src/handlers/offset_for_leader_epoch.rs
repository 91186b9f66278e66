use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;

/// The only leader epoch a partition has: a single node never changes
/// leader. Metadata reports it for every partition.
const EPOCH: i32 = 0;

/// OffsetForLeaderEpoch: for epoch 0 the end offset is the log end offset,
/// as Kafka answers for the current epoch. A current-epoch check
/// (KIP-320) older than 0 is FENCED_LEADER_EPOCH and a newer one
/// UNKNOWN_LEADER_EPOCH; an epoch the partition never had gets
/// UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET (-1, -1) without an error.
pub fn handle(broker: &Broker, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.topic(&t.topic.0);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let answer = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition))
                    else {
                        return answer
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    match p.current_leader_epoch {
                        -1 | EPOCH => {}
                        e if e < EPOCH => {
                            return answer.with_error_code(ResponseError::FencedLeaderEpoch.code())
                        }
                        _ => {
                            return answer.with_error_code(ResponseError::UnknownLeaderEpoch.code())
                        }
                    }
                    if p.leader_epoch != EPOCH {
                        return answer;
                    }
                    answer
                        .with_leader_epoch(EPOCH)
                        .with_end_offset(partition.log().log_end_offset().0)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
