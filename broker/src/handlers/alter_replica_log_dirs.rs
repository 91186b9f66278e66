//! AlterReplicaLogDirs: a broker with one log directory can only keep each
//! replica where it is.

use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;

/// AlterReplicaLogDirs v1-v2: a move to the data directory (the one log
/// directory DescribeLogDirs names) is a no-op that succeeds; any other
/// path is LOG_DIR_NOT_FOUND, as Kafka answers for a directory it was not
/// configured with; an unknown partition is UNKNOWN_TOPIC_OR_PARTITION.
pub fn handle(broker: &Broker, req: AlterReplicaLogDirsRequest) -> AlterReplicaLogDirsResponse {
    let mut results: Vec<AlterReplicaLogDirTopicResult> = Vec::new();
    for dir in req.dirs {
        let here = *dir.path == *broker.log_dir;
        for t in dir.topics {
            let topic = broker.topic(&t.name.0);
            let partitions = t
                .partitions
                .iter()
                .map(|&p| {
                    let code = if topic.as_ref().and_then(|tp| tp.partition(p)).is_none() {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else if here {
                        0
                    } else {
                        ResponseError::LogDirNotFound.code()
                    };
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(p)
                        .with_error_code(code)
                })
                .collect();
            results.push(
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(t.name)
                    .with_partitions(partitions),
            );
        }
    }
    AlterReplicaLogDirsResponse::default().with_results(results)
}
