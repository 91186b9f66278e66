//! The operator's view of transactions: DescribeTransactions and
//! ListTransactions from the transaction coordinator, DescribeProducers
//! from each partition's producer state (`kafka-transactions.sh`).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::list_transactions_response::TransactionState as Listed;
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::txn::TxnState;

const STATES: [TxnState; 6] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
];

pub fn describe(broker: &Broker, req: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    let ids: Vec<String> = req
        .transactional_ids
        .iter()
        .map(|i| i.0.to_string())
        .collect();
    let states = broker
        .txns
        .describe(&ids)
        .into_iter()
        .zip(&req.transactional_ids)
        .map(|(view, id)| {
            let Some(v) = view else {
                return TransactionState::default()
                    .with_error_code(ResponseError::TransactionalIdNotFound.code())
                    .with_transactional_id(id.clone())
                    .with_transaction_state(str_bytes(""))
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .with_transaction_start_time_ms(-1);
            };
            let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (t, p) in &v.meta.partitions {
                topics.entry(t.clone()).or_default().push(*p);
            }
            TransactionState::default()
                .with_transactional_id(id.clone())
                .with_transaction_state(str_bytes(v.meta.state.name()))
                .with_transaction_timeout_ms(v.meta.timeout_ms)
                .with_transaction_start_time_ms(v.meta.start_ms)
                .with_producer_id(ProducerId(v.meta.producer_id))
                .with_producer_epoch(v.meta.epoch)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            TopicData::default()
                                .with_topic(TopicName(str_bytes(t)))
                                .with_partitions(ps)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

pub fn list(broker: &Broker, req: ListTransactionsRequest) -> ListTransactionsResponse {
    let unknown: Vec<_> = req
        .state_filters
        .iter()
        .filter(|f| !STATES.iter().any(|s| s.name() == f.as_str()))
        .cloned()
        .collect();
    let pattern = match req
        .transactional_id_pattern
        .as_ref()
        .filter(|p| !p.is_empty())
    {
        Some(p) => match regex::Regex::new(&format!("^(?:{})$", p.as_str())) {
            Ok(r) => Some(r),
            Err(_) => {
                return ListTransactionsResponse::default()
                    .with_error_code(ResponseError::InvalidRegularExpression.code())
            }
        },
        None => None,
    };
    let now = now_ms();
    let states = broker
        .txns
        .list()
        .into_iter()
        .filter(|v| {
            req.state_filters.is_empty()
                || req
                    .state_filters
                    .iter()
                    .any(|f| f.as_str() == v.meta.state.name())
        })
        .filter(|v| {
            req.producer_id_filters.is_empty()
                || req
                    .producer_id_filters
                    .contains(&ProducerId(v.meta.producer_id))
        })
        // v1: only transactions open for at least this long.
        .filter(|v| {
            req.duration_filter < 0
                || (v.meta.start_ms >= 0 && now - v.meta.start_ms >= req.duration_filter)
        })
        .filter(|v| pattern.as_ref().is_none_or(|r| r.is_match(&v.id)))
        .map(|v| {
            Listed::default()
                .with_transactional_id(TransactionalId(str_bytes(v.id)))
                .with_producer_id(ProducerId(v.meta.producer_id))
                .with_transaction_state(str_bytes(v.meta.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}

pub fn describe_producers(
    broker: &Arc<Broker>,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = broker.topic(&t.name.0);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    let Some(part) = topic.as_ref().and_then(|t| t.partition(p)) else {
                        return PartitionResponse::default()
                            .with_partition_index(p)
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let producers = part
                        .log()
                        .producers()
                        .into_iter()
                        .map(|s| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(s.producer_id))
                                .with_producer_epoch(s.epoch as i32)
                                .with_last_sequence(s.last_sequence)
                                .with_last_timestamp(s.last_append_ms)
                                .with_coordinator_epoch(0)
                                .with_current_txn_start_offset(
                                    s.txn_first_offset.map_or(-1, |o| o.0),
                                )
                        })
                        .collect();
                    PartitionResponse::default()
                        .with_partition_index(p)
                        .with_active_producers(producers)
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
