//! The classic group protocol and committed offsets: FindCoordinator,
//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
//! ListGroups and DescribeGroups. The state machine is in `crate::group`.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use strata_storage::Offset;

use super::{authorized_operations, blocking, str_bytes};
use crate::broker::Broker;
use crate::group::{Committed, JoinArgs};

/// Who sent a request, for DescribeGroups.
pub struct Client {
    pub id: String,
    pub host: String,
}

pub fn find_coordinator(
    broker: &Broker,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let host = str_bytes(broker.advertised_host.clone());
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                CoordinatorEntry::default()
                    .with_key(key)
                    .with_node_id(BrokerId(broker.node_id))
                    .with_host(host.clone())
                    .with_port(broker.advertised_port)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    FindCoordinatorResponse::default()
        .with_node_id(BrokerId(broker.node_id))
        .with_host(host)
        .with_port(broker.advertised_port)
}

pub async fn join(
    broker: &Broker,
    req: JoinGroupRequest,
    version: i16,
    client: &Client,
) -> JoinGroupResponse {
    let args = JoinArgs {
        group: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|s| s.to_string()),
        client_id: client.id.clone(),
        client_host: client.host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_member_id: version >= 4,
    };
    let r = broker.groups.join(args).await;
    let members = r
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(id))
                .with_group_instance_id(instance.map(str_bytes))
                .with_metadata(metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation)
        .with_protocol_type(r.protocol_type.map(str_bytes))
        .with_protocol_name(r.protocol.map(str_bytes))
        .with_leader(str_bytes(r.leader))
        .with_member_id(str_bytes(r.member_id))
        .with_members(members)
}

pub async fn sync(broker: &Broker, req: SyncGroupRequest) -> SyncGroupResponse {
    // v5 names the protocol the member thinks it runs: it must be the group's.
    if let Some(Ok((_, protocol_type, protocol, _))) = broker.groups.describe(&req.group_id.0) {
        let mismatch = req
            .protocol_type
            .as_ref()
            .is_some_and(|t| **t != *protocol_type)
            || req.protocol_name.as_ref().is_some_and(|n| **n != *protocol);
        if mismatch {
            return SyncGroupResponse::default()
                .with_error_code(ResponseError::InconsistentGroupProtocol.code());
        }
    }
    let assignments = req
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let (error, protocol_type, protocol, assignment) = broker
        .groups
        .sync(
            &req.group_id.0,
            req.generation_id,
            &req.member_id,
            assignments,
        )
        .await;
    SyncGroupResponse::default()
        .with_error_code(error)
        .with_protocol_type(protocol_type.map(str_bytes))
        .with_protocol_name(protocol.map(str_bytes))
        .with_assignment(assignment)
}

pub fn heartbeat(broker: &Broker, req: HeartbeatRequest) -> HeartbeatResponse {
    HeartbeatResponse::default().with_error_code(broker.groups.heartbeat(
        &req.group_id.0,
        req.generation_id,
        &req.member_id,
    ))
}

pub fn leave(broker: &Broker, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    if version < 3 {
        let (code, _) = broker
            .groups
            .leave(&req.group_id.0, &[(req.member_id.to_string(), None)]);
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let members: Vec<(String, Option<String>)> = req
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_ref().map(|s| s.to_string()),
            )
        })
        .collect();
    let (_, codes) = broker.groups.leave(&req.group_id.0, &members);
    LeaveGroupResponse::default().with_members(
        req.members
            .into_iter()
            .zip(codes)
            .map(|(m, code)| {
                MemberResponse::default()
                    .with_member_id(m.member_id)
                    .with_group_instance_id(m.group_instance_id)
                    .with_error_code(code)
            })
            .collect(),
    )
}

/// OffsetCommit: the coordinator checks the member's generation and
/// writes the offsets as one step (see `Coordinator::commit`); partitions
/// of unknown topics are answered UNKNOWN_TOPIC_OR_PARTITION.
pub async fn offset_commit(broker: &Arc<Broker>, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let mut accepted = Vec::new();
    let mut known = Vec::new();
    for t in &req.topics {
        let topic = broker.topic(&t.name.0);
        for p in &t.partitions {
            let exists = topic
                .as_ref()
                .and_then(|tp| tp.partition(p.partition_index))
                .is_some();
            known.push(exists);
            if exists {
                accepted.push((
                    t.name.0.to_string(),
                    p.partition_index,
                    Committed {
                        offset: Offset(p.committed_offset),
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                    },
                ));
            }
        }
    }
    let (b, generation, member) = (
        Arc::clone(broker),
        req.generation_id_or_member_epoch,
        req.member_id.to_string(),
    );
    let stored = blocking(move || b.groups.commit(&group, generation, &member, accepted)).await;
    // A membership error answers every partition; otherwise unknown
    // partitions are named as such and the rest share the write's outcome.
    let (check, written) = match stored {
        Ok(check) => (check, 0),
        Err(e) => {
            tracing::warn!(error = %e, "could not store committed offsets");
            (0, ResponseError::KafkaStorageError.code())
        }
    };
    let mut known = known.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let exists = known.next().unwrap_or(false);
                    let code = if check != 0 {
                        check
                    } else if !exists {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else {
                        written
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Per topic, (partition, offset, leader epoch, metadata, error code)
/// committed by `group`: for the partitions asked, or for every committed
/// one when the request names none. Kafka's "none" is offset -1. With
/// `require_stable` (v7+), a partition an open transaction has committed an
/// offset for answers UNSTABLE_OFFSET_COMMIT, which clients retry.
type CommittedByTopic = Vec<(TopicName, Vec<(i32, i64, i32, Option<StrBytes>, i16)>)>;

fn committed_offsets(
    broker: &Broker,
    group: &str,
    wanted: Option<Vec<(TopicName, Vec<i32>)>>,
    require_stable: bool,
) -> CommittedByTopic {
    let wanted = wanted.unwrap_or_else(|| {
        let mut by_topic: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
        for (t, p, _) in broker.groups.committed_partitions(group) {
            by_topic.entry(t).or_default().push(p);
        }
        by_topic
            .into_iter()
            .map(|(t, ps)| (TopicName(str_bytes(t)), ps))
            .collect()
    });
    wanted
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .into_iter()
                .map(|p| {
                    if require_stable && broker.groups.has_pending(group, &name.0, p) {
                        return (
                            p,
                            -1,
                            -1,
                            Some(str_bytes("")),
                            ResponseError::UnstableOffsetCommit.code(),
                        );
                    }
                    match broker.groups.committed(group, &name.0, p) {
                        Some(c) => (
                            p,
                            c.offset.0,
                            c.leader_epoch,
                            Some(str_bytes(c.metadata.unwrap_or_default())),
                            0,
                        ),
                        None => (p, -1, -1, Some(str_bytes("")), 0),
                    }
                })
                .collect();
            (name, partitions)
        })
        .collect()
}

pub fn offset_fetch(broker: &Broker, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let check = broker.groups.check_fetch(
                    &g.group_id.0,
                    g.member_id.as_deref(),
                    g.member_epoch,
                );
                if check != 0 {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(check);
                }
                let wanted = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                let topics = committed_offsets(broker, &g.group_id.0, wanted, req.require_stable)
                    .into_iter()
                    .map(|(name, parts)| {
                        let partitions = parts
                            .into_iter()
                            .map(|(p, offset, epoch, metadata, code)| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_error_code(code)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(metadata)
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(name)
                            .with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    let stable = version >= 7 && req.require_stable;
    let topics = committed_offsets(broker, &req.group_id.0, wanted, stable)
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(p, offset, epoch, metadata, code)| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(code)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(epoch)
                        .with_metadata(metadata)
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

pub fn list_groups(broker: &Broker, req: ListGroupsRequest) -> ListGroupsResponse {
    let groups = broker
        .groups
        .list()
        .into_iter()
        .filter(|(_, _, state, _)| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(state))
        })
        .filter(|(_, _, _, kind)| {
            req.types_filter.is_empty()
                || req
                    .types_filter
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(kind.name()))
        })
        .map(|(g, protocol_type, state, kind)| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g)))
                .with_protocol_type(str_bytes(protocol_type))
                .with_group_state(str_bytes(state))
                .with_group_type(str_bytes(kind.name()))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub fn describe_groups(broker: &Broker, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    // v3+: every group operation when asked for, while there is no authorizer.
    let operations = authorized_operations::group(req.include_authorized_operations);
    let groups = req
        .groups
        .into_iter()
        .map(|g| match broker.groups.describe(&g.0) {
            // Kafka answers DescribeGroups for a consumer-protocol group so;
            // ConsumerGroupDescribe describes it.
            Some(Err(())) => DescribedGroup::default()
                .with_group_id(g)
                .with_error_code(ResponseError::GroupIdNotFound.code())
                .with_error_message(Some(str_bytes("the group is not a classic group"))),
            Some(Ok((state, protocol_type, protocol, members))) => DescribedGroup::default()
                .with_group_id(g)
                .with_authorized_operations(operations)
                .with_group_state(str_bytes(state.name()))
                .with_protocol_type(str_bytes(protocol_type))
                .with_protocol_data(str_bytes(protocol.clone()))
                .with_members(
                    members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_metadata(m.metadata(&protocol))
                                .with_member_id(str_bytes(m.id))
                                .with_group_instance_id(m.instance_id.map(str_bytes))
                                .with_client_id(str_bytes(m.client_id))
                                .with_client_host(str_bytes(m.client_host))
                                .with_member_assignment(m.assignment)
                        })
                        .collect(),
                ),
            // Kafka describes an unknown group as a dead, empty one.
            None => DescribedGroup::default()
                .with_group_id(g)
                .with_group_state(str_bytes("Dead")),
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub async fn delete_groups(broker: &Arc<Broker>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let b = Arc::clone(broker);
    let results = blocking(move || {
        req.groups_names
            .into_iter()
            .map(|g| {
                let code = b.groups.delete_group(&g.0);
                delete_groups_response::DeletableGroupResult::default()
                    .with_group_id(g)
                    .with_error_code(code)
            })
            .collect()
    })
    .await;
    DeleteGroupsResponse::default().with_results(results)
}

pub async fn offset_delete(broker: &Arc<Broker>, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let b = Arc::clone(broker);
    blocking(move || {
        let wanted: Vec<(String, i32)> = req
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.partition_index))
            })
            .collect();
        let (code, mut codes) = b.groups.delete_offsets(&req.group_id.0, &wanted);
        if code != 0 {
            return OffsetDeleteResponse::default().with_error_code(code);
        }
        let mut codes = codes.drain(..);
        let topics = req
            .topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        offset_delete_response::OffsetDeleteResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(codes.next().unwrap_or(0))
                    })
                    .collect();
                offset_delete_response::OffsetDeleteResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        OffsetDeleteResponse::default().with_topics(topics)
    })
    .await
}
