//! The transactional producer's requests: AddPartitionsToTxn (with the
//! verify-only form of KIP-890), AddOffsetsToTxn, EndTxn and
//! TxnOffsetCommit. The decisions are the transaction coordinator's
//! (`crate::txn`) and the group coordinator's.

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};
use kafka_protocol::ResponseError;
use strata_storage::Offset;

use super::blocking;
use crate::broker::Broker;
use crate::group::Committed;

/// One transaction's AddPartitionsToTxn: every partition's code. Unknown
/// partitions fail and the others are not attempted, as in Kafka.
fn add_one(
    broker: &Broker,
    id: &str,
    producer_id: i64,
    epoch: i16,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let wanted: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    let unknown: Vec<bool> = wanted
        .iter()
        .map(|(t, p)| {
            broker
                .topic(t)
                .and_then(|t| t.partition(*p).cloned())
                .is_none()
        })
        .collect();
    let codes: Vec<i16> = if unknown.iter().any(|u| *u) {
        unknown
            .iter()
            .map(|u| {
                if *u {
                    ResponseError::UnknownTopicOrPartition.code()
                } else {
                    ResponseError::OperationNotAttempted.code()
                }
            })
            .collect()
    } else if verify_only {
        match broker.txns.verify(id, producer_id, epoch, &wanted) {
            Ok(ok) => ok
                .into_iter()
                .map(|ok| {
                    if ok {
                        0
                    } else {
                        ResponseError::InvalidTxnState.code()
                    }
                })
                .collect(),
            Err(e) => vec![e.code(); wanted.len()],
        }
    } else {
        let code = match broker.txns.add(id, producer_id, epoch, &wanted, None) {
            Ok(()) => 0,
            Err(e) => e.code(),
        };
        vec![code; wanted.len()]
    };
    let mut out: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    let mut codes = codes.into_iter();
    for t in topics {
        let results = t
            .partitions
            .iter()
            .map(|p| {
                AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(*p)
                    .with_partition_error_code(codes.next().unwrap_or(0))
            })
            .collect();
        out.push(
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results),
        );
    }
    out
}

pub async fn add_partitions(
    broker: &Arc<Broker>,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let b = Arc::clone(broker);
    blocking(move || {
        if version <= 3 {
            let results = add_one(
                &b,
                &req.v3_and_below_transactional_id.0,
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
                false,
                &req.v3_and_below_topics,
            );
            return AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(results);
        }
        // v4+ is the batched, broker-to-coordinator form.
        let results = req
            .transactions
            .iter()
            .map(|t| {
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(t.transactional_id.clone())
                    .with_topic_results(add_one(
                        &b,
                        &t.transactional_id.0,
                        t.producer_id.0,
                        t.producer_epoch,
                        t.verify_only,
                        &t.topics,
                    ))
            })
            .collect();
        AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
    })
    .await
}

pub async fn add_offsets(
    broker: &Arc<Broker>,
    req: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let b = Arc::clone(broker);
    let code = blocking(move || {
        match b.txns.add(
            &req.transactional_id.0,
            req.producer_id.0,
            req.producer_epoch,
            &[],
            Some(&req.group_id.0),
        ) {
            Ok(()) => 0,
            Err(e) => e.code(),
        }
    })
    .await;
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

pub async fn end(broker: &Arc<Broker>, req: EndTxnRequest) -> EndTxnResponse {
    let b = Arc::clone(broker);
    let (producer_id, epoch) = (req.producer_id, req.producer_epoch);
    let code = blocking(move || {
        match b.txns.end(
            &req.transactional_id.0,
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            &*b,
        ) {
            Ok(()) => 0,
            Err(e) => e.code(),
        }
    })
    .await;
    EndTxnResponse::default()
        .with_error_code(code)
        .with_producer_id(producer_id)
        .with_producer_epoch(epoch)
}

pub async fn txn_offset_commit(
    broker: &Arc<Broker>,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let b = Arc::clone(broker);
    blocking(move || {
        let group = req.group_id.0.to_string();
        let check = b.txns.check_offsets(
            &req.transactional_id.0,
            req.producer_id.0,
            req.producer_epoch,
            &group,
        );
        let mut offsets = Vec::new();
        let mut unknown = Vec::new();
        for t in &req.topics {
            for p in &t.partitions {
                let exists = b
                    .topic(&t.name.0)
                    .and_then(|topic| topic.partition(p.partition_index).cloned())
                    .is_some();
                if exists {
                    offsets.push((
                        t.name.0.to_string(),
                        p.partition_index,
                        Committed {
                            offset: Offset(p.committed_offset),
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        },
                    ));
                } else {
                    unknown.push((t.name.0.to_string(), p.partition_index));
                }
            }
        }
        let code = match check {
            Err(e) => e.code(),
            Ok(()) => {
                let member = req.member_id.to_string();
                match b.groups.txn_commit(
                    &group,
                    req.producer_id.0,
                    req.generation_id,
                    &member,
                    offsets,
                ) {
                    Ok(code) => code,
                    Err(_) => ResponseError::CoordinatorNotAvailable.code(),
                }
            }
        };
        let topics = req
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let missing = unknown.contains(&(t.name.0.to_string(), p.partition_index));
                        TxnOffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(if missing {
                                ResponseError::UnknownTopicOrPartition.code()
                            } else {
                                code
                            })
                    })
                    .collect();
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        TxnOffsetCommitResponse::default().with_topics(topics)
    })
    .await
}
