//! The authorizer's checks of every API, as Kafka's request handlers make
//! them, with Kafka's error codes.
//!
//! A check runs before the API's handler and may refuse the whole request,
//! or take out the parts the principal may not touch and leave a patch
//! that puts their errors into the handler's response. Read-only answers
//! are instead filtered after the handler ran. The decisions themselves
//! are the authorizer's (`crate::security::authorizer`); this module only
//! says which operation on which resource each API needs.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::security::acl::{Operation::*, ResourceType};
use crate::security::Access;

const TOPIC_AUTH: i16 = 29;
const GROUP_AUTH: i16 = 30;
const CLUSTER_AUTH: i16 = 31;
const TXN_AUTH: i16 = 53;
/// DescribeConfigs and AlterConfigs resource types.
const CONFIG_TOPIC: i8 = 2;
const CONFIG_BROKER: i8 = 4;
const CONFIG_BROKER_LOGGER: i8 = 8;

/// Changes a handler's response after it ran.
pub type Patch = Box<dyn FnOnce(&mut ResponseKind, &Access<'_>) + Send>;

/// The outcome of a check.
pub enum Checked {
    /// Answer with this instead of running the handler.
    Refuse(ResponseKind),
    /// Close the connection (a refused Produce with acks=0, which has no
    /// answer to carry the error, as Kafka does).
    Close,
    /// Run the handler with this request, then apply the patch.
    Pass(RequestKind, Option<Patch>),
}

fn pass(r: RequestKind) -> Checked {
    Checked::Pass(r, None)
}

fn patched(
    r: RequestKind,
    p: impl FnOnce(&mut ResponseKind, &Access<'_>) + Send + 'static,
) -> Checked {
    Checked::Pass(r, Some(Box::new(p)))
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

/// Checks a request of a principal with an authorizer in force.
pub fn check(access: &Access<'_>, broker: &Broker, req: RequestKind, version: i16) -> Checked {
    match req {
        RequestKind::Produce(mut r) => {
            if let Some(t) = &r.transactional_id {
                if !access.transactional_id(Write, t) {
                    if r.acks == 0 {
                        return Checked::Close;
                    }
                    let all = std::mem::take(&mut r.topic_data);
                    return Checked::Refuse(ResponseKind::Produce(
                        ProduceResponse::default().with_responses(produce_errors(all, TXN_AUTH)),
                    ));
                }
            }
            let topic_name = |t: &produce_request::TopicProduceData| {
                if version >= 13 {
                    broker
                        .topic_by_id(t.topic_id)
                        .map(|t| t.name.clone())
                        .unwrap_or_default()
                } else {
                    t.name.0.to_string()
                }
            };
            let (ok, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut r.topic_data)
                .into_iter()
                .partition(|t| access.topic(Write, &topic_name(t)));
            r.topic_data = ok;
            if denied.is_empty() {
                return pass(RequestKind::Produce(r));
            }
            if r.acks == 0 {
                return Checked::Close;
            }
            patched(RequestKind::Produce(r), move |resp, _| {
                if let ResponseKind::Produce(p) = resp {
                    p.responses.extend(produce_errors(denied, TOPIC_AUTH));
                }
            })
        }
        RequestKind::Fetch(mut r) => {
            let replica = if version >= 15 {
                r.replica_state.replica_id.0
            } else {
                r.replica_id.0
            };
            if replica >= 0 {
                if !access.cluster(ClusterAction) {
                    return Checked::Refuse(ResponseKind::Fetch(
                        FetchResponse::default().with_error_code(CLUSTER_AUTH),
                    ));
                }
                return pass(RequestKind::Fetch(r));
            }
            let name = |t: &fetch_request::FetchTopic| {
                if version >= 13 {
                    broker.topic_by_id(t.topic_id).map(|t| t.name.clone())
                } else {
                    Some(t.topic.0.to_string())
                }
            };
            // An unknown topic id goes on to the handler's UNKNOWN_TOPIC_ID.
            let (ok, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut r.topics)
                .into_iter()
                .partition(|t| name(t).is_none_or(|n| access.topic(Read, &n)));
            r.topics = ok;
            if denied.is_empty() {
                return pass(RequestKind::Fetch(r));
            }
            patched(RequestKind::Fetch(r), move |resp, _| {
                if let ResponseKind::Fetch(f) = resp {
                    f.responses.extend(denied.into_iter().map(|t| {
                        fetch_response::FetchableTopicResponse::default()
                            .with_topic(t.topic)
                            .with_topic_id(t.topic_id)
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        fetch_response::PartitionData::default()
                                            .with_partition_index(p.partition)
                                            .with_error_code(TOPIC_AUTH)
                                            .with_high_watermark(-1)
                                            .with_last_stable_offset(-1)
                                            .with_log_start_offset(-1)
                                    })
                                    .collect(),
                            )
                    }));
                }
            })
        }
        RequestKind::ListOffsets(r) => patched(RequestKind::ListOffsets(r), |resp, a| {
            if let ResponseKind::ListOffsets(l) = resp {
                for t in &mut l.topics {
                    if !a.topic(Describe, &t.name) {
                        for p in &mut t.partitions {
                            *p = list_offsets_response::ListOffsetsPartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(TOPIC_AUTH)
                                .with_timestamp(-1)
                                .with_offset(-1);
                        }
                    }
                }
            }
        }),
        RequestKind::OffsetForLeaderEpoch(r) => {
            if r.replica_id.0 >= 0 && !access.cluster(ClusterAction) {
                return Checked::Refuse(ResponseKind::OffsetForLeaderEpoch(
                    OffsetForLeaderEpochResponse::default(),
                ));
            }
            patched(RequestKind::OffsetForLeaderEpoch(r), |resp, a| {
                if let ResponseKind::OffsetForLeaderEpoch(o) = resp {
                    for t in &mut o.topics {
                        if !a.topic(Describe, &t.topic) {
                            for p in &mut t.partitions {
                                p.error_code = TOPIC_AUTH;
                                p.end_offset = -1;
                                p.leader_epoch = -1;
                            }
                        }
                    }
                }
            })
        }
        RequestKind::Metadata(r) => metadata(access, broker, r, version),
        RequestKind::DescribeTopicPartitions(r) => {
            patched(RequestKind::DescribeTopicPartitions(r), |resp, a| {
                if let ResponseKind::DescribeTopicPartitions(d) = resp {
                    for t in &mut d.topics {
                        let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                        if !a.topic(Describe, &name) {
                            t.error_code = TOPIC_AUTH;
                            t.partitions.clear();
                        } else if t.topic_authorized_operations != i32::MIN {
                            t.topic_authorized_operations =
                                a.operations(ResourceType::Topic, &name);
                        }
                    }
                }
            })
        }
        RequestKind::CreateTopics(mut r) => {
            let cluster = access.cluster(Create);
            let (ok, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut r.topics)
                .into_iter()
                .partition(|t| cluster || access.topic(Create, &t.name));
            r.topics = ok;
            if denied.is_empty() {
                return pass(RequestKind::CreateTopics(r));
            }
            patched(RequestKind::CreateTopics(r), move |resp, _| {
                if let ResponseKind::CreateTopics(c) = resp {
                    c.topics.extend(denied.into_iter().map(|t| {
                        create_topics_response::CreatableTopicResult::default()
                            .with_name(t.name)
                            .with_error_code(TOPIC_AUTH)
                            .with_error_message(Some(s("Authorization failed.")))
                            .with_num_partitions(-1)
                            .with_replication_factor(-1)
                    }));
                }
            })
        }
        RequestKind::DeleteTopics(mut r) => {
            let allowed = |name: &str| access.topic(Delete, name);
            let (ok, denied_names): (Vec<_>, Vec<_>) = std::mem::take(&mut r.topic_names)
                .into_iter()
                .partition(|n| allowed(n));
            r.topic_names = ok;
            let (ok, denied_states): (Vec<_>, Vec<_>) =
                std::mem::take(&mut r.topics).into_iter().partition(|t| {
                    let name = match &t.name {
                        Some(n) => Some(n.0.to_string()),
                        None => broker.topic_by_id(t.topic_id).map(|t| t.name.clone()),
                    };
                    name.is_none_or(|n| allowed(&n))
                });
            r.topics = ok;
            if denied_names.is_empty() && denied_states.is_empty() {
                return pass(RequestKind::DeleteTopics(r));
            }
            patched(RequestKind::DeleteTopics(r), move |resp, _| {
                if let ResponseKind::DeleteTopics(d) = resp {
                    let entry = |name: Option<TopicName>, id| {
                        delete_topics_response::DeletableTopicResult::default()
                            .with_name(name)
                            .with_topic_id(id)
                            .with_error_code(TOPIC_AUTH)
                    };
                    d.responses.extend(
                        denied_names
                            .into_iter()
                            .map(|n| entry(Some(n), uuid::Uuid::nil())),
                    );
                    d.responses
                        .extend(denied_states.into_iter().map(|t| entry(t.name, t.topic_id)));
                }
            })
        }
        RequestKind::DeleteRecords(mut r) => {
            let (ok, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut r.topics)
                .into_iter()
                .partition(|t| access.topic(Delete, &t.name));
            r.topics = ok;
            if denied.is_empty() {
                return pass(RequestKind::DeleteRecords(r));
            }
            patched(RequestKind::DeleteRecords(r), move |resp, _| {
                if let ResponseKind::DeleteRecords(d) = resp {
                    d.topics.extend(denied.into_iter().map(|t| {
                        delete_records_response::DeleteRecordsTopicResult::default()
                            .with_name(t.name)
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        delete_records_response::DeleteRecordsPartitionResult::default()
                                            .with_partition_index(p.partition_index)
                                            .with_low_watermark(-1)
                                            .with_error_code(TOPIC_AUTH)
                                    })
                                    .collect(),
                            )
                    }));
                }
            })
        }
        RequestKind::CreatePartitions(mut r) => {
            let (ok, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut r.topics)
                .into_iter()
                .partition(|t| access.topic(Alter, &t.name));
            r.topics = ok;
            if denied.is_empty() {
                return pass(RequestKind::CreatePartitions(r));
            }
            patched(RequestKind::CreatePartitions(r), move |resp, _| {
                if let ResponseKind::CreatePartitions(c) = resp {
                    c.results.extend(denied.into_iter().map(|t| {
                        create_partitions_response::CreatePartitionsTopicResult::default()
                            .with_name(t.name)
                            .with_error_code(TOPIC_AUTH)
                    }));
                }
            })
        }
        RequestKind::DescribeConfigs(r) => patched(RequestKind::DescribeConfigs(r), |resp, a| {
            if let ResponseKind::DescribeConfigs(d) = resp {
                for res in &mut d.results {
                    if let Some(code) =
                        config_denied(a, res.resource_type, &res.resource_name, DescribeConfigs)
                    {
                        res.error_code = code;
                        res.error_message = None;
                        res.configs.clear();
                    }
                }
            }
        }),
        RequestKind::AlterConfigs(mut r) => {
            let (ok, denied): (Vec<_>, Vec<_>) =
                std::mem::take(&mut r.resources).into_iter().partition(|x| {
                    config_denied(access, x.resource_type, &x.resource_name, AlterConfigs).is_none()
                });
            r.resources = ok;
            if denied.is_empty() {
                return pass(RequestKind::AlterConfigs(r));
            }
            patched(RequestKind::AlterConfigs(r), move |resp, a| {
                if let ResponseKind::AlterConfigs(c) = resp {
                    c.responses.extend(denied.into_iter().map(|x| {
                        let code =
                            config_denied(a, x.resource_type, &x.resource_name, AlterConfigs);
                        alter_configs_response::AlterConfigsResourceResponse::default()
                            .with_error_code(code.unwrap_or(CLUSTER_AUTH))
                            .with_resource_type(x.resource_type)
                            .with_resource_name(x.resource_name)
                    }));
                }
            })
        }
        RequestKind::IncrementalAlterConfigs(mut r) => {
            let (ok, denied): (Vec<_>, Vec<_>) =
                std::mem::take(&mut r.resources).into_iter().partition(|x| {
                    config_denied(access, x.resource_type, &x.resource_name, AlterConfigs).is_none()
                });
            r.resources = ok;
            if denied.is_empty() {
                return pass(RequestKind::IncrementalAlterConfigs(r));
            }
            patched(RequestKind::IncrementalAlterConfigs(r), move |resp, a| {
                if let ResponseKind::IncrementalAlterConfigs(c) = resp {
                    c.responses.extend(denied.into_iter().map(|x| {
                        let code =
                            config_denied(a, x.resource_type, &x.resource_name, AlterConfigs);
                        incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                            .with_error_code(code.unwrap_or(CLUSTER_AUTH))
                            .with_resource_type(x.resource_type)
                            .with_resource_name(x.resource_name)
                    }));
                }
            })
        }
        RequestKind::FindCoordinator(r) => {
            let code = if r.key_type == 1 {
                TXN_AUTH
            } else {
                GROUP_AUTH
            };
            if version < 4 {
                if !coordinator_key_visible(access, r.key_type, &r.key) {
                    return Checked::Refuse(ResponseKind::FindCoordinator(
                        FindCoordinatorResponse::default()
                            .with_error_code(code)
                            .with_node_id(BrokerId(-1))
                            .with_port(-1),
                    ));
                }
                return pass(RequestKind::FindCoordinator(r));
            }
            let key_type = r.key_type;
            patched(RequestKind::FindCoordinator(r), move |resp, a| {
                if let ResponseKind::FindCoordinator(f) = resp {
                    for c in &mut f.coordinators {
                        if !coordinator_key_visible(a, key_type, &c.key) {
                            c.error_code = code;
                            c.node_id = BrokerId(-1);
                            c.host = s("");
                            c.port = -1;
                        }
                    }
                }
            })
        }
        RequestKind::JoinGroup(r) => {
            if !access.group(Read, &r.group_id) {
                return Checked::Refuse(ResponseKind::JoinGroup(
                    JoinGroupResponse::default()
                        .with_error_code(GROUP_AUTH)
                        .with_generation_id(-1)
                        .with_member_id(r.member_id),
                ));
            }
            pass(RequestKind::JoinGroup(r))
        }
        RequestKind::SyncGroup(r) => {
            if !access.group(Read, &r.group_id) {
                return Checked::Refuse(ResponseKind::SyncGroup(
                    SyncGroupResponse::default().with_error_code(GROUP_AUTH),
                ));
            }
            pass(RequestKind::SyncGroup(r))
        }
        RequestKind::Heartbeat(r) => {
            if !access.group(Read, &r.group_id) {
                return Checked::Refuse(ResponseKind::Heartbeat(
                    HeartbeatResponse::default().with_error_code(GROUP_AUTH),
                ));
            }
            pass(RequestKind::Heartbeat(r))
        }
        RequestKind::LeaveGroup(r) => {
            if !access.group(Read, &r.group_id) {
                return Checked::Refuse(ResponseKind::LeaveGroup(
                    LeaveGroupResponse::default().with_error_code(GROUP_AUTH),
                ));
            }
            pass(RequestKind::LeaveGroup(r))
        }
        RequestKind::ConsumerGroupHeartbeat(r) => {
            if !access.group(Read, &r.group_id) {
                return Checked::Refuse(ResponseKind::ConsumerGroupHeartbeat(
                    ConsumerGroupHeartbeatResponse::default()
                        .with_error_code(GROUP_AUTH)
                        .with_error_message(Some(s("Group authorization failed."))),
                ));
            }
            pass(RequestKind::ConsumerGroupHeartbeat(r))
        }
        RequestKind::OffsetCommit(mut r) => {
            if !access.group(Read, &r.group_id) {
                let topics = std::mem::take(&mut r.topics);
                return Checked::Refuse(ResponseKind::OffsetCommit(
                    OffsetCommitResponse::default().with_topics(commit_errors(topics, GROUP_AUTH)),
                ));
            }
            let (ok, denied): (Vec<_>, Vec<_>) =
                std::mem::take(&mut r.topics).into_iter().partition(|t| {
                    let name = if version >= 10 {
                        broker
                            .topic_by_id(t.topic_id)
                            .map(|t| t.name.clone())
                            .unwrap_or_default()
                    } else {
                        t.name.0.to_string()
                    };
                    access.topic(Read, &name)
                });
            r.topics = ok;
            if denied.is_empty() {
                return pass(RequestKind::OffsetCommit(r));
            }
            patched(RequestKind::OffsetCommit(r), move |resp, _| {
                if let ResponseKind::OffsetCommit(c) = resp {
                    c.topics.extend(commit_errors(denied, TOPIC_AUTH));
                }
            })
        }
        RequestKind::OffsetFetch(r) => {
            // Up to v7 the response does not name its one group.
            if version < 8 && !access.group(Describe, &r.group_id) {
                return Checked::Refuse(ResponseKind::OffsetFetch(
                    OffsetFetchResponse::default().with_error_code(GROUP_AUTH),
                ));
            }
            let explicit_v7 = r.topics.is_some();
            let explicit_v8: Vec<bool> = r.groups.iter().map(|g| g.topics.is_some()).collect();
            patched(RequestKind::OffsetFetch(r), move |resp, a| {
                if let ResponseKind::OffsetFetch(o) = resp {
                    if version < 8 {
                        filter_fetch_topics_v7(&mut o.topics, explicit_v7, a);
                    }
                    for (i, g) in o.groups.iter_mut().enumerate() {
                        if !a.group(Describe, &g.group_id) {
                            g.error_code = GROUP_AUTH;
                            g.topics.clear();
                            continue;
                        }
                        let explicit = explicit_v8.get(i).copied().unwrap_or(false);
                        if explicit {
                            for t in &mut g.topics {
                                if !a.topic(Describe, &t.name) {
                                    for p in &mut t.partitions {
                                        p.error_code = TOPIC_AUTH;
                                        p.committed_offset = -1;
                                        p.metadata = None;
                                    }
                                }
                            }
                        } else {
                            g.topics.retain(|t| a.topic(Describe, &t.name));
                        }
                    }
                }
            })
        }
        RequestKind::DescribeGroups(r) => patched(RequestKind::DescribeGroups(r), |resp, a| {
            if let ResponseKind::DescribeGroups(d) = resp {
                for g in &mut d.groups {
                    if !a.group(Describe, &g.group_id) {
                        let id = std::mem::take(&mut g.group_id);
                        *g = describe_groups_response::DescribedGroup::default()
                            .with_group_id(id)
                            .with_error_code(GROUP_AUTH)
                            .with_authorized_operations(i32::MIN);
                    } else if g.authorized_operations != i32::MIN {
                        g.authorized_operations = a.operations(ResourceType::Group, &g.group_id);
                    }
                }
            }
        }),
        RequestKind::ConsumerGroupDescribe(r) => {
            patched(RequestKind::ConsumerGroupDescribe(r), |resp, a| {
                if let ResponseKind::ConsumerGroupDescribe(d) = resp {
                    for g in &mut d.groups {
                        if !a.group(Describe, &g.group_id) {
                            let id = std::mem::take(&mut g.group_id);
                            *g = consumer_group_describe_response::DescribedGroup::default()
                                .with_group_id(id)
                                .with_error_code(GROUP_AUTH)
                                .with_authorized_operations(i32::MIN);
                        } else if g.authorized_operations != i32::MIN {
                            g.authorized_operations =
                                a.operations(ResourceType::Group, &g.group_id);
                        }
                    }
                }
            })
        }
        RequestKind::ListGroups(r) => patched(RequestKind::ListGroups(r), |resp, a| {
            if let ResponseKind::ListGroups(l) = resp {
                if !a.cluster(Describe) {
                    l.groups.retain(|g| a.group(Describe, &g.group_id));
                }
            }
        }),
        RequestKind::DeleteGroups(mut r) => {
            let (ok, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut r.groups_names)
                .into_iter()
                .partition(|g| access.group(Delete, g));
            r.groups_names = ok;
            if denied.is_empty() {
                return pass(RequestKind::DeleteGroups(r));
            }
            patched(RequestKind::DeleteGroups(r), move |resp, _| {
                if let ResponseKind::DeleteGroups(d) = resp {
                    d.results.extend(denied.into_iter().map(|g| {
                        delete_groups_response::DeletableGroupResult::default()
                            .with_group_id(g)
                            .with_error_code(GROUP_AUTH)
                    }));
                }
            })
        }
        RequestKind::OffsetDelete(mut r) => {
            if !access.group(Delete, &r.group_id) {
                return Checked::Refuse(ResponseKind::OffsetDelete(
                    OffsetDeleteResponse::default().with_error_code(GROUP_AUTH),
                ));
            }
            let (ok, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut r.topics)
                .into_iter()
                .partition(|t| access.topic(Read, &t.name));
            r.topics = ok;
            if denied.is_empty() {
                return pass(RequestKind::OffsetDelete(r));
            }
            patched(RequestKind::OffsetDelete(r), move |resp, _| {
                if let ResponseKind::OffsetDelete(d) = resp {
                    d.topics.extend(denied.into_iter().map(|t| {
                        offset_delete_response::OffsetDeleteResponseTopic::default()
                            .with_name(t.name)
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        offset_delete_response::OffsetDeleteResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(TOPIC_AUTH)
                                    })
                                    .collect(),
                            )
                    }));
                }
            })
        }
        RequestKind::InitProducerId(r) => {
            let refused = match &r.transactional_id {
                Some(t) => (!access.transactional_id(Write, t)).then_some(TXN_AUTH),
                None => (!access.cluster(IdempotentWrite)
                    && !access.writes_any_topic(broker.topics().iter().map(|t| t.name.clone())))
                .then_some(CLUSTER_AUTH),
            };
            if let Some(code) = refused {
                return Checked::Refuse(ResponseKind::InitProducerId(
                    InitProducerIdResponse::default()
                        .with_error_code(code)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1),
                ));
            }
            pass(RequestKind::InitProducerId(r))
        }
        RequestKind::AddPartitionsToTxn(mut r) => {
            if version >= 4 {
                // Broker-to-broker verification (KIP-890).
                if !access.cluster(ClusterAction) {
                    return Checked::Refuse(ResponseKind::AddPartitionsToTxn(
                        AddPartitionsToTxnResponse::default().with_error_code(CLUSTER_AUTH),
                    ));
                }
                return pass(RequestKind::AddPartitionsToTxn(r));
            }
            let txn_ok = access.transactional_id(Write, &r.v3_and_below_transactional_id);
            let denied_topic = r
                .v3_and_below_topics
                .iter()
                .any(|t| !access.topic(Write, &t.name));
            if txn_ok && !denied_topic {
                return pass(RequestKind::AddPartitionsToTxn(r));
            }
            // Kafka fails the whole request: the denied partitions with their
            // error, the others with OPERATION_NOT_ATTEMPTED.
            let topics = std::mem::take(&mut r.v3_and_below_topics);
            let results = topics
                .into_iter()
                .map(|t| {
                    let code = if !txn_ok {
                        TXN_AUTH
                    } else if !access.topic(Write, &t.name) {
                        TOPIC_AUTH
                    } else {
                        ResponseError::OperationNotAttempted.code()
                    };
                    add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default()
                        .with_name(t.name)
                        .with_results_by_partition(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default()
                                        .with_partition_index(*p)
                                        .with_partition_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect();
            Checked::Refuse(ResponseKind::AddPartitionsToTxn(
                AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results),
            ))
        }
        RequestKind::AddOffsetsToTxn(r) => {
            let code = if !access.transactional_id(Write, &r.transactional_id) {
                Some(TXN_AUTH)
            } else if !access.group(Read, &r.group_id) {
                Some(GROUP_AUTH)
            } else {
                None
            };
            match code {
                Some(c) => Checked::Refuse(ResponseKind::AddOffsetsToTxn(
                    AddOffsetsToTxnResponse::default().with_error_code(c),
                )),
                None => pass(RequestKind::AddOffsetsToTxn(r)),
            }
        }
        RequestKind::EndTxn(r) => {
            if !access.transactional_id(Write, &r.transactional_id) {
                return Checked::Refuse(ResponseKind::EndTxn(
                    EndTxnResponse::default()
                        .with_error_code(TXN_AUTH)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1),
                ));
            }
            pass(RequestKind::EndTxn(r))
        }
        RequestKind::TxnOffsetCommit(mut r) => {
            let code = if !access.transactional_id(Write, &r.transactional_id) {
                Some(TXN_AUTH)
            } else if !access.group(Read, &r.group_id) {
                Some(GROUP_AUTH)
            } else {
                None
            };
            if let Some(code) = code {
                let topics = std::mem::take(&mut r.topics);
                return Checked::Refuse(ResponseKind::TxnOffsetCommit(
                    TxnOffsetCommitResponse::default().with_topics(txn_commit_errors(topics, code)),
                ));
            }
            let (ok, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut r.topics)
                .into_iter()
                .partition(|t| access.topic(Read, &t.name));
            r.topics = ok;
            if denied.is_empty() {
                return pass(RequestKind::TxnOffsetCommit(r));
            }
            patched(RequestKind::TxnOffsetCommit(r), move |resp, _| {
                if let ResponseKind::TxnOffsetCommit(c) = resp {
                    c.topics.extend(txn_commit_errors(denied, TOPIC_AUTH));
                }
            })
        }
        RequestKind::DescribeTransactions(r) => {
            patched(RequestKind::DescribeTransactions(r), |resp, a| {
                if let ResponseKind::DescribeTransactions(d) = resp {
                    for t in &mut d.transaction_states {
                        if !a.transactional_id(Describe, &t.transactional_id) {
                            let id = std::mem::take(&mut t.transactional_id);
                            *t = describe_transactions_response::TransactionState::default()
                                .with_transactional_id(id)
                                .with_error_code(TXN_AUTH);
                        }
                    }
                }
            })
        }
        RequestKind::ListTransactions(r) => patched(RequestKind::ListTransactions(r), |resp, a| {
            if let ResponseKind::ListTransactions(l) = resp {
                l.transaction_states
                    .retain(|t| a.transactional_id(Describe, &t.transactional_id));
            }
        }),
        RequestKind::DescribeProducers(r) => {
            patched(RequestKind::DescribeProducers(r), |resp, a| {
                if let ResponseKind::DescribeProducers(d) = resp {
                    for t in &mut d.topics {
                        if !a.topic(Read, &t.name) {
                            for p in &mut t.partitions {
                                p.error_code = TOPIC_AUTH;
                                p.error_message = None;
                                p.active_producers.clear();
                            }
                        }
                    }
                }
            })
        }
        RequestKind::DescribeCluster(r) => {
            if !access.cluster(Describe) {
                return Checked::Refuse(ResponseKind::DescribeCluster(
                    DescribeClusterResponse::default()
                        .with_error_code(CLUSTER_AUTH)
                        .with_error_message(Some(s("Cluster authorization failed."))),
                ));
            }
            patched(RequestKind::DescribeCluster(r), |resp, a| {
                if let ResponseKind::DescribeCluster(d) = resp {
                    if d.cluster_authorized_operations != i32::MIN {
                        d.cluster_authorized_operations =
                            a.operations(ResourceType::Cluster, crate::security::acl::CLUSTER_NAME);
                    }
                }
            })
        }
        RequestKind::DescribeLogDirs(r) => {
            if !access.cluster(Describe) {
                return Checked::Refuse(ResponseKind::DescribeLogDirs(
                    DescribeLogDirsResponse::default().with_error_code(CLUSTER_AUTH),
                ));
            }
            pass(RequestKind::DescribeLogDirs(r))
        }
        RequestKind::ListPartitionReassignments(r) => {
            if !access.cluster(Describe) {
                return Checked::Refuse(ResponseKind::ListPartitionReassignments(
                    ListPartitionReassignmentsResponse::default().with_error_code(CLUSTER_AUTH),
                ));
            }
            pass(RequestKind::ListPartitionReassignments(r))
        }
        RequestKind::AlterPartitionReassignments(r) => {
            if !access.cluster(Alter) {
                return Checked::Refuse(ResponseKind::AlterPartitionReassignments(
                    AlterPartitionReassignmentsResponse::default().with_error_code(CLUSTER_AUTH),
                ));
            }
            pass(RequestKind::AlterPartitionReassignments(r))
        }
        RequestKind::ElectLeaders(r) => {
            if !access.cluster(Alter) {
                return Checked::Refuse(ResponseKind::ElectLeaders(
                    ElectLeadersResponse::default().with_error_code(CLUSTER_AUTH),
                ));
            }
            pass(RequestKind::ElectLeaders(r))
        }
        RequestKind::AlterReplicaLogDirs(r) => {
            if !access.cluster(Alter) {
                let results = r
                    .dirs
                    .iter()
                    .flat_map(|d| d.topics.iter())
                    .map(|t| {
                        alter_replica_log_dirs_response::AlterReplicaLogDirTopicResult::default()
                            .with_topic_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        alter_replica_log_dirs_response::AlterReplicaLogDirPartitionResult::default()
                                            .with_partition_index(*p)
                                            .with_error_code(CLUSTER_AUTH)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                return Checked::Refuse(ResponseKind::AlterReplicaLogDirs(
                    AlterReplicaLogDirsResponse::default().with_results(results),
                ));
            }
            pass(RequestKind::AlterReplicaLogDirs(r))
        }
        // ApiVersions, SASL, and the ACL and SCRAM admin APIs (whose
        // handlers check the cluster themselves).
        other => pass(other),
    }
}

/// Up to OffsetFetch v7, the one group's topics.
fn filter_fetch_topics_v7(
    topics: &mut Vec<offset_fetch_response::OffsetFetchResponseTopic>,
    explicit: bool,
    a: &Access<'_>,
) {
    if explicit {
        for t in topics.iter_mut() {
            if !a.topic(Describe, &t.name) {
                for p in &mut t.partitions {
                    p.error_code = TOPIC_AUTH;
                    p.committed_offset = -1;
                    p.metadata = None;
                }
            }
        }
    } else {
        topics.retain(|t| a.topic(Describe, &t.name));
    }
}

/// Whether a FindCoordinator key (type 1: a transactional id; otherwise a
/// group) may be described.
fn coordinator_key_visible(access: &Access<'_>, key_type: i8, key: &str) -> bool {
    match key_type {
        1 => access.transactional_id(Describe, key),
        _ => access.group(Describe, key),
    }
}

/// The error code a config resource is refused with, if it is.
fn config_denied(
    a: &Access<'_>,
    kind: i8,
    name: &str,
    op: crate::security::acl::Operation,
) -> Option<i16> {
    match kind {
        CONFIG_TOPIC => (!a.topic(op, name)).then_some(TOPIC_AUTH),
        CONFIG_BROKER | CONFIG_BROKER_LOGGER => (!a.cluster(op)).then_some(CLUSTER_AUTH),
        _ => None,
    }
}

fn produce_errors(
    topics: Vec<produce_request::TopicProduceData>,
    code: i16,
) -> Vec<produce_response::TopicProduceResponse> {
    topics
        .into_iter()
        .map(|t| {
            produce_response::TopicProduceResponse::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partition_responses(
                    t.partition_data
                        .iter()
                        .map(|p| {
                            produce_response::PartitionProduceResponse::default()
                                .with_index(p.index)
                                .with_error_code(code)
                                .with_base_offset(-1)
                                .with_log_append_time_ms(-1)
                                .with_log_start_offset(-1)
                        })
                        .collect(),
                )
        })
        .collect()
}

fn commit_errors(
    topics: Vec<offset_commit_request::OffsetCommitRequestTopic>,
    code: i16,
) -> Vec<offset_commit_response::OffsetCommitResponseTopic> {
    topics
        .into_iter()
        .map(|t| {
            offset_commit_response::OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            offset_commit_response::OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect()
}

fn txn_commit_errors(
    topics: Vec<txn_offset_commit_request::TxnOffsetCommitRequestTopic>,
    code: i16,
) -> Vec<txn_offset_commit_response::TxnOffsetCommitResponseTopic> {
    topics
        .into_iter()
        .map(|t| {
            txn_offset_commit_response::TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            txn_offset_commit_response::TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect()
}

/// Metadata: topics the principal may not describe are left out of a
/// listing of all topics and answered TOPIC_AUTHORIZATION_FAILED when named;
/// an unknown topic is created automatically only with CREATE on the
/// cluster or on the topic.
fn metadata(access: &Access<'_>, broker: &Broker, mut r: MetadataRequest, version: i16) -> Checked {
    let listed_all = match &r.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    let mut denied: Vec<metadata_request::MetadataRequestTopic> = Vec::new();
    if !listed_all {
        let auto = (version < 4 || r.allow_auto_topic_creation)
            && broker.config().bool("auto.create.topics.enable");
        let cluster_create = access.cluster(Create);
        let topics = r.topics.take().unwrap_or_default();
        let (ok, no): (Vec<_>, Vec<_>) = topics.into_iter().partition(|t| match &t.name {
            // A topic that does not exist and would be created needs CREATE
            // too; without it the principal learns nothing, as in Kafka.
            Some(n) => {
                access.topic(Describe, n)
                    && (broker.topic(n).is_some()
                        || !auto
                        || cluster_create
                        || access.topic(Create, n))
            }
            None => broker
                .topic_by_id(t.topic_id)
                .is_none_or(|topic| access.topic(Describe, &topic.name)),
        });
        denied = no;
        // A v0 request that named only denied topics must not become a
        // request for all topics; an empty name stands in and is dropped.
        r.topics = Some(if ok.is_empty() && version == 0 {
            vec![metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s(""))))]
        } else {
            ok
        });
    }
    patched(RequestKind::Metadata(r), move |resp, a| {
        if let ResponseKind::Metadata(m) = resp {
            if version == 0 {
                m.topics
                    .retain(|t| t.name.as_ref().is_none_or(|n| !n.0.is_empty()));
            }
            if listed_all {
                m.topics
                    .retain(|t| t.name.as_ref().is_some_and(|n| a.topic(Describe, n)));
            }
            for t in &mut m.topics {
                if t.error_code == 0 && t.topic_authorized_operations != i32::MIN {
                    let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                    t.topic_authorized_operations = a.operations(ResourceType::Topic, &name);
                }
            }
            m.topics.extend(denied.into_iter().map(|t| {
                metadata_response::MetadataResponseTopic::default()
                    .with_error_code(TOPIC_AUTH)
                    .with_name(t.name)
                    .with_topic_id(t.topic_id)
                    .with_topic_authorized_operations(i32::MIN)
            }));
            if m.cluster_authorized_operations != i32::MIN {
                m.cluster_authorized_operations =
                    a.operations(ResourceType::Cluster, crate::security::acl::CLUSTER_NAME);
            }
        }
    })
}
