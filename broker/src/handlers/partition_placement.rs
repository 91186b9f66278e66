//! Leadership and replica placement, as a one-broker Kafka cluster answers
//! them: ElectLeaders (every partition already has its preferred leader,
//! this broker), AlterPartitionReassignments (the one replica can only stay
//! where it is) and ListPartitionReassignments (none is ever in progress).

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ElectLeadersRequest,
    ElectLeadersResponse, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::broker::Broker;

/// Whether `topic` has partition `index`.
fn exists(broker: &Broker, topic: &str, index: i32) -> bool {
    broker
        .topic(topic)
        .is_some_and(|t| t.partition(index).is_some())
}

/// ElectLeaders v0-v2: each named partition already has its preferred (and
/// only) replica as leader, so the answer is ELECTION_NOT_NEEDED, as Kafka
/// gives it; unknown partitions are UNKNOWN_TOPIC_OR_PARTITION. A request
/// for every partition (null) lists none, as Kafka leaves out the
/// partitions that needed no election.
pub fn elect_leaders(broker: &Broker, req: ElectLeadersRequest) -> ElectLeadersResponse {
    let results = req
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let partition_result = t
                .partitions
                .iter()
                .map(|&p| {
                    let (code, message) = if exists(broker, &t.topic.0, p) {
                        (
                            ResponseError::ElectionNotNeeded.code(),
                            "Leader election not needed for topic partition.",
                        )
                    } else {
                        (
                            ResponseError::UnknownTopicOrPartition.code(),
                            "The partition does not exist.",
                        )
                    };
                    PartitionResult::default()
                        .with_partition_id(p)
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(message)))
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(t.topic)
                .with_partition_result(partition_result)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}

/// AlterPartitionReassignments v0: moving a partition's one replica to this
/// broker, where it is, succeeds at once; any other replica set is
/// INVALID_REPLICA_ASSIGNMENT, naming the broker that is not registered or
/// the replication factor that cannot be reached; cancelling (null
/// replicas) is NO_REASSIGNMENT_IN_PROGRESS, as none ever is. v1's
/// AllowReplicationFactorChange=false never decides anything here: every
/// replica set that would change the factor of 1 already fails the checks
/// above (another broker, or this one twice), as Kafka checks those first.
pub fn alter_reassignments(
    broker: &Broker,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let allow_factor_change = req.allow_replication_factor_change;
    let responses = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let (code, message) = if !exists(broker, &t.name.0, p.partition_index) {
                        (
                            ResponseError::UnknownTopicOrPartition,
                            "The partition does not exist.".to_string(),
                        )
                    } else {
                        match &p.replicas {
                            None => (
                                ResponseError::NoReassignmentInProgress,
                                "No reassignment is in progress for this partition.".to_string(),
                            ),
                            Some(r) => match r.iter().find(|id| id.0 != broker.node_id) {
                                Some(other) => (
                                    ResponseError::InvalidReplicaAssignment,
                                    format!(
                                        "The manual partition assignment includes broker {}, but no such broker is registered.",
                                        other.0
                                    ),
                                ),
                                None if r.len() != 1 => (
                                    ResponseError::InvalidReplicaAssignment,
                                    format!(
                                        "The manual partition assignment includes broker {} more than once, or no broker.",
                                        broker.node_id
                                    ),
                                ),
                                None => return ReassignablePartitionResponse::default()
                                    .with_partition_index(p.partition_index),
                            },
                        }
                    };
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.code())
                        .with_error_message(Some(str_bytes(message)))
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_factor_change)
        .with_responses(responses)
}

/// ListPartitionReassignments v0: no reassignment is ever in progress on a
/// single node.
pub fn list_reassignments(
    _broker: &Broker,
    _req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default()
}
