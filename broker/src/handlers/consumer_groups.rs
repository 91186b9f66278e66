//! KIP-848's consumer group protocol: ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe. The state machine is `crate::group::consumer`;
//! this module turns requests into its arguments and its answers into
//! responses, with topic ids on the wire and names inside.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::consumer_group_describe_response::{
    self as describe, DescribedGroup,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::groups::Client;
use super::{authorized_operations, str_bytes};
use crate::broker::Broker;
use crate::group::{Assignment, HeartbeatArgs, TopicShape};

/// Every topic that exists now, as assignments see them.
fn topic_shapes(broker: &Broker) -> BTreeMap<String, TopicShape> {
    broker
        .topics()
        .into_iter()
        .map(|t| {
            (
                t.name.clone(),
                TopicShape {
                    id: t.id,
                    partitions: t.partitions.len() as i32,
                },
            )
        })
        .collect()
}

pub fn heartbeat(
    broker: &Broker,
    req: ConsumerGroupHeartbeatRequest,
    version: i16,
    client: &Client,
) -> ConsumerGroupHeartbeatResponse {
    // From v1 the client generates its member id (KIP-1082); v0 members may
    // leave it to the broker.
    if version >= 1 && req.member_id.is_empty() {
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(str_bytes("MemberId can't be empty.")))
            .with_member_epoch(req.member_epoch);
    }
    let owned = req.topic_partitions.map(|tps| {
        let mut a = Assignment::new();
        for tp in tps {
            a.entry(tp.topic_id)
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
        a
    });
    let args = HeartbeatArgs {
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|s| s.to_string()),
        rack_id: req.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.map(|s| s.to_string()),
        server_assignor: req.server_assignor.map(|s| s.to_string()),
        owned,
        client_id: client.id.clone(),
        client_host: client.host.clone(),
    };
    let r = broker
        .groups
        .consumer_heartbeat(&req.group_id.0, &args, &topic_shapes(broker));
    let assignment = r.assignment.map(|a| {
        WireAssignment::default().with_topic_partitions(
            a.into_iter()
                .map(|(id, ps)| {
                    TopicPartitions::default()
                        .with_topic_id(id)
                        .with_partitions(ps.into_iter().collect())
                })
                .collect(),
        )
    });
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(r.error)
        .with_error_message(r.message.map(str_bytes))
        .with_member_id((!r.member_id.is_empty()).then(|| str_bytes(r.member_id)))
        .with_member_epoch(r.member_epoch)
        .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
        .with_assignment(assignment)
}

fn described(a: &Assignment, names: &BTreeMap<Uuid, String>) -> describe::Assignment {
    describe::Assignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, ps): (&Uuid, &BTreeSet<i32>)| {
                describe::TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(str_bytes(
                        names.get(id).cloned().unwrap_or_default(),
                    )))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

pub fn describe(
    broker: &Broker,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let operations = authorized_operations::group(req.include_authorized_operations);
    let names: BTreeMap<Uuid, String> = broker
        .topics()
        .into_iter()
        .map(|t| (t.id, t.name.clone()))
        .collect();
    let groups = req
        .group_ids
        .into_iter()
        .map(|id| {
            let group = DescribedGroup::default().with_group_id(id.clone());
            match broker.groups.describe_consumer_group(&id.0) {
                None => group
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(str_bytes(format!("group {} does not exist", id.0))))
                    .with_group_state(str_bytes("Dead")),
                Some(Err(())) => group
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(str_bytes(format!(
                        "group {} is not a consumer group",
                        id.0
                    )))),
                Some(Ok(v)) => group
                    .with_group_state(str_bytes(v.state))
                    .with_group_epoch(v.group_epoch)
                    .with_assignment_epoch(v.assignment_epoch)
                    .with_assignor_name(str_bytes(v.assignor))
                    .with_authorized_operations(operations)
                    .with_members(
                        v.members
                            .into_iter()
                            .map(|(m, target)| {
                                describe::Member::default()
                                    .with_member_id(str_bytes(m.id.clone()))
                                    .with_instance_id(m.instance_id.clone().map(str_bytes))
                                    .with_rack_id(m.rack_id.clone().map(str_bytes))
                                    .with_member_epoch(m.epoch)
                                    .with_client_id(str_bytes(m.client_id.clone()))
                                    .with_client_host(str_bytes(m.client_host.clone()))
                                    .with_subscribed_topic_names(
                                        m.subscribed_names
                                            .iter()
                                            .map(|n| TopicName(str_bytes(n.clone())))
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(
                                        m.subscribed_regex.clone().map(str_bytes),
                                    )
                                    .with_assignment(described(&m.assigned, &names))
                                    .with_target_assignment(described(&target, &names))
                                    // 1: a member of the consumer protocol.
                                    .with_member_type(1)
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
