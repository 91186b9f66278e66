use std::sync::Arc;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsAssignment;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::{blocking, str_bytes};
use crate::broker::Broker;
use crate::error::AdminError;

/// Kafka's checks of explicit replica assignments: one per partition being
/// added, each with the topic's one replica, on this broker.
fn check_assignments(
    broker: &Broker,
    topic: &str,
    count: i32,
    assignments: Option<&[CreatePartitionsAssignment]>,
) -> Result<(), AdminError> {
    // Clients leave the assignments null when they let the broker choose;
    // an empty list is taken the same way.
    let Some(assignments) = assignments.filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    let current = broker
        .topic(topic)
        .ok_or(AdminError::UnknownTopic)?
        .partitions
        .len() as i32;
    let adding = count - current;
    if adding > 0 && assignments.len() as i32 != adding {
        return Err(AdminError::InvalidReplicaAssignment(format!(
            "Attempted to add {adding} additional partition(s), but only {} assignment(s) were specified.",
            assignments.len()
        )));
    }
    for (i, a) in assignments.iter().enumerate() {
        if a.broker_ids.len() != 1 {
            return Err(AdminError::InvalidReplicaAssignment(format!(
                "Inconsistent replication factor between partitions, partition {} has {} replica(s) while the topic has 1.",
                current + i as i32,
                a.broker_ids.len()
            )));
        }
        if a.broker_ids[0].0 != broker.node_id {
            return Err(AdminError::InvalidReplicaAssignment(format!(
                "Replicas can only be on broker {}.",
                broker.node_id
            )));
        }
    }
    Ok(())
}

/// CreatePartitions: raises partition counts; new replicas can only be on
/// this broker.
pub async fn handle(
    broker: &Arc<Broker>,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let b = Arc::clone(broker);
    let results = blocking(move || {
        req.topics
            .into_iter()
            .map(|t| {
                let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
                let outcome = check_assignments(&b, &t.name.0, t.count, t.assignments.as_deref())
                    .and_then(|()| b.add_partitions(&t.name.0, t.count, req.validate_only));
                match outcome {
                    Ok(()) => result,
                    Err(e) => result
                        .with_error_code(e.code())
                        .with_error_message(Some(str_bytes(e.to_string()))),
                }
            })
            .collect()
    })
    .await;
    CreatePartitionsResponse::default().with_results(results)
}
