//! DescribeTopicPartitions v0 (KIP-966): Metadata's topic and partition
//! answer, paginated. Topics are visited in name order from the cursor (a
//! topic name and the partition to start at); once the response holds the
//! partition limit (the request's, capped by
//! `max.request.partition.size.limit`), the next cursor says where to
//! continue.

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{authorized_operations, str_bytes};
use crate::broker::Broker;

fn failed(name: TopicName, e: ResponseError) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(e.code())
        .with_name(Some(name))
        .with_topic_id(Uuid::nil())
        .with_topic_authorized_operations(authorized_operations::OMITTED)
}

pub fn handle(
    broker: &Broker,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let cap = broker.config().i64("max.request.partition.size.limit") as i32;
    let limit = req.response_partition_limit.min(cap).max(1) as usize;
    // Every name asked for (or every topic), in order.
    let all = req.topics.is_empty();
    let mut names: Vec<TopicName> = if all {
        broker
            .topics()
            .into_iter()
            .map(|t| TopicName(str_bytes(t.name.clone())))
            .collect()
    } else {
        req.topics.into_iter().map(|t| t.name).collect()
    };
    names.sort_by(|a, b| a.0.cmp(&b.0));
    names.dedup();
    let mut start_partition = 0;
    if let Some(c) = &req.cursor {
        // A cursor must name one of the topics asked for, as Kafka
        // requires; its answer then names each topic with INVALID_REQUEST.
        if !all && !names.contains(&c.topic_name) {
            return DescribeTopicPartitionsResponse::default().with_topics(
                names
                    .into_iter()
                    .map(|n| failed(n, ResponseError::InvalidRequest))
                    .collect(),
            );
        }
        names.retain(|n| n.0 >= c.topic_name.0);
        if names.first() == Some(&c.topic_name) {
            start_partition = c.partition_index.max(0);
        }
    }
    let node = BrokerId(broker.node_id);
    let mut topics = Vec::new();
    let mut used = 0usize;
    let mut next_cursor = None;
    for name in names {
        let Some(topic) = broker.topic(&name.0) else {
            topics.push(failed(name, ResponseError::UnknownTopicOrPartition));
            continue;
        };
        if used == limit {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(name)
                    .with_partition_index(0),
            );
            break;
        }
        let count = topic.partitions.len() as i32;
        let first = std::mem::take(&mut start_partition).min(count);
        let room = (limit - used) as i32;
        let last = count.min(first + room);
        used += (last - first) as usize;
        let partitions = (first..last)
            .map(|p| {
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p)
                    .with_leader_id(node)
                    .with_leader_epoch(0)
                    .with_replica_nodes(vec![node])
                    .with_isr_nodes(vec![node])
                    .with_eligible_leader_replicas(Some(vec![]))
                    .with_last_known_elr(Some(vec![]))
            })
            .collect();
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(name.clone()))
                .with_topic_id(topic.id)
                .with_topic_authorized_operations(authorized_operations::topic(true))
                .with_partitions(partitions),
        );
        if last < count {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(name)
                    .with_partition_index(last),
            );
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}
