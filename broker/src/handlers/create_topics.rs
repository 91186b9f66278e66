use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::ResponseError;

use super::{blocking, str_bytes};
use crate::broker::Broker;
use crate::config::{Scope, DEFS};
use crate::error::AdminError;

/// CreateTopics: validates name, partitions, replication factor (1 on a
/// single node), assignments and configs, then creates (unless
/// `validate_only`). Answers each topic on its own.
pub async fn handle(broker: &Arc<Broker>, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let b = Arc::clone(broker);
    let results = blocking(move || {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for t in &req.topics {
            *counts.entry(t.name.0.to_string()).or_default() += 1;
        }
        req.topics
            .into_iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let result = CreatableTopicResult::default()
                    .with_name(t.name.clone())
                    .with_num_partitions(-1)
                    .with_replication_factor(-1);
                if counts[&name] > 1 {
                    return result
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(format!(
                            "Duplicate topic name {name} in the request"
                        ))));
                }
                let mut configs = BTreeMap::new();
                for c in &t.configs {
                    if let Some(v) = &c.value {
                        configs.insert(c.name.to_string(), v.to_string());
                    }
                }
                let outcome =
                    check_assignments(&b, &t.assignments, t.num_partitions, t.replication_factor)
                        .and_then(|(p, rf)| {
                            b.create_topic(&name, p, rf, configs, req.validate_only)
                        });
                match outcome {
                    Ok(topic) => {
                        let partitions = if req.validate_only {
                            if t.num_partitions == -1 && t.assignments.is_empty() {
                                b.config().i64("num.partitions") as i32
                            } else if t.assignments.is_empty() {
                                t.num_partitions
                            } else {
                                t.assignments.len() as i32
                            }
                        } else {
                            topic.partitions.len() as i32
                        };
                        let configs = DEFS
                            .iter()
                            .filter(|d| d.scope == Scope::Topic)
                            .map(|d| {
                                let (value, source) =
                                    b.config().topic_value(d.name, &topic.configs);
                                CreatableTopicConfigs::default()
                                    .with_name(str_bytes(d.name))
                                    .with_value(Some(str_bytes(value)))
                                    .with_config_source(source.code())
                            })
                            .collect();
                        result
                            .with_topic_id(topic.id)
                            .with_num_partitions(partitions)
                            .with_replication_factor(1)
                            .with_configs(Some(configs))
                    }
                    Err(e) => result
                        .with_error_code(e.code())
                        .with_error_message(Some(str_bytes(e.to_string()))),
                }
            })
            .collect()
    })
    .await;
    CreateTopicsResponse::default().with_topics(results)
}

/// With explicit assignments, partitions and replication factor must be -1
/// and every replica must be this broker. Returns the partition count and
/// replication factor to create with.
fn check_assignments(
    broker: &Broker,
    assignments: &[kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment],
    partitions: i32,
    rf: i16,
) -> Result<(i32, i16), AdminError> {
    if assignments.is_empty() {
        return Ok((partitions, rf));
    }
    if partitions != -1 || rf != -1 {
        return Err(AdminError::InvalidRequest(
            "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
        ));
    }
    for (i, a) in assignments.iter().enumerate() {
        if a.partition_index != i as i32 {
            return Err(AdminError::InvalidReplicaAssignment(
                "Partitions should be 0-based and consecutive.".into(),
            ));
        }
        if a.broker_ids.len() != 1 || a.broker_ids[0].0 != broker.node_id {
            return Err(AdminError::InvalidReplicaAssignment(format!(
                "Partition {i} must have exactly one replica, on broker {}.",
                broker.node_id
            )));
        }
    }
    Ok((assignments.len() as i32, 1))
}
