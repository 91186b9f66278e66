use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError;
use tracing::warn;
use uuid::Uuid;

use super::{authorized_operations, blocking, str_bytes};
use crate::broker::Broker;
use crate::bucket::follower::ClusterView;
use crate::topic::{validate_topic_name, Topic};

fn topic_entry(view: &ClusterView, topic: &Topic) -> MetadataResponseTopic {
    let ids = |v: &[i32]| v.iter().map(|&n| BrokerId(n)).collect::<Vec<_>>();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_topic_authorized_operations(authorized_operations::OMITTED)
        .with_partitions(
            (0..topic.partitions.len() as i32)
                .map(|p| {
                    MetadataResponsePartition::default()
                        .with_partition_index(p)
                        .with_leader_id(BrokerId(view.leader))
                        .with_leader_epoch(0)
                        .with_replica_nodes(ids(&view.replicas))
                        .with_isr_nodes(ids(&view.isr))
                })
                .collect(),
        )
}

fn error_entry(name: Option<&str>, id: Uuid, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(name.map(|n| TopicName(str_bytes(n))))
        .with_topic_id(id)
        .with_topic_authorized_operations(authorized_operations::OMITTED)
}

/// Metadata: this broker as the leader of every partition (with its read
/// replica, if it names one; a read replica named so names its primary).
/// Unknown topics are created when both the request (v4+, always before)
/// and `auto.create.topics.enable` allow it, as Kafka does. Authorized
/// operations (v8+) are reported when asked for.
pub async fn handle(broker: &Arc<Broker>, req: MetadataRequest, version: i16) -> MetadataResponse {
    let topic_ops = authorized_operations::topic(req.include_topic_authorized_operations);
    // The cluster's operations are in Metadata v8 to v10 only.
    let cluster_ops =
        authorized_operations::cluster(version <= 10 && req.include_cluster_authorized_operations);
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    let auto_create = (version < 4 || req.allow_auto_topic_creation)
        && broker.config().bool("auto.create.topics.enable");
    // Who leads and replicates every partition, read once per request.
    let view = broker.cluster_view();
    let mut topics = Vec::new();
    if all {
        topics.extend(broker.topics().iter().map(|t| topic_entry(&view, t)));
    } else {
        // Answer each distinct topic once, in request order.
        let mut seen = BTreeMap::new();
        for requested in req.topics.unwrap_or_default() {
            let entry = match requested.name {
                Some(name) => {
                    let name = name.0.to_string();
                    if seen.insert(name.clone(), ()).is_some() {
                        continue;
                    }
                    lookup_or_create(broker, &view, name, auto_create).await
                }
                None => match broker.topic_by_id(requested.topic_id) {
                    Some(t) => topic_entry(&view, &t),
                    None => error_entry(
                        None,
                        requested.topic_id,
                        ResponseError::UnknownTopicId.code(),
                    ),
                },
            };
            topics.push(entry);
        }
    }
    MetadataResponse::default()
        .with_controller_id(BrokerId(view.leader))
        .with_brokers(
            view.brokers
                .into_iter()
                .map(|b| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(b.node_id))
                        .with_host(str_bytes(b.host))
                        .with_port(b.port)
                })
                .collect(),
        )
        .with_cluster_id(Some(str_bytes(broker.cluster_id.clone())))
        .with_cluster_authorized_operations(cluster_ops)
        .with_topics(
            topics
                .into_iter()
                .map(|t| {
                    if t.error_code == 0 {
                        t.with_topic_authorized_operations(topic_ops)
                    } else {
                        t
                    }
                })
                .collect(),
        )
}

async fn lookup_or_create(
    broker: &Arc<Broker>,
    view: &ClusterView,
    name: String,
    auto_create: bool,
) -> MetadataResponseTopic {
    if let Some(t) = broker.topic(&name) {
        return topic_entry(view, &t);
    }
    if validate_topic_name(&name).is_err() {
        return error_entry(
            Some(&name),
            Uuid::nil(),
            ResponseError::InvalidTopicException.code(),
        );
    }
    if !auto_create {
        return error_entry(
            Some(&name),
            Uuid::nil(),
            ResponseError::UnknownTopicOrPartition.code(),
        );
    }
    let b = Arc::clone(broker);
    let n = name.clone();
    match blocking(move || b.create_topic(&n, -1, -1, BTreeMap::new(), false)).await {
        Ok(t) => topic_entry(view, &t),
        // Another request created it first.
        Err(crate::error::AdminError::TopicExists(_)) => match broker.topic(&name) {
            Some(t) => topic_entry(view, &t),
            None => error_entry(
                Some(&name),
                Uuid::nil(),
                ResponseError::LeaderNotAvailable.code(),
            ),
        },
        Err(e) => {
            warn!(topic = %name, error = %e, "automatic topic creation failed");
            error_entry(Some(&name), Uuid::nil(), e.code())
        }
    }
}
