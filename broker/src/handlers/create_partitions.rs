use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::{blocking, str_bytes};
use crate::broker::Broker;
use crate::error::AdminError;

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
                let outcome = match &t.assignments {
                    Some(a)
                        if a.iter()
                            .any(|x| x.broker_ids.iter().any(|id| id.0 != b.node_id)) =>
                    {
                        Err(AdminError::InvalidReplicaAssignment(format!(
                            "Replicas can only be on broker {}.",
                            b.node_id
                        )))
                    }
                    _ => b.add_partitions(&t.name.0, t.count, req.validate_only),
                };
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
