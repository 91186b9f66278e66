use std::collections::BTreeMap;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::str_bytes;
use crate::broker::Broker;

/// Kafka's value for a volume size it does not know.
const UNKNOWN_BYTES: i64 = -1;

/// DescribeLogDirs: two "directories". The first is the data directory with
/// each partition's hot-tier bytes, as Kafka reports a log dir; the second is
/// the cold tier, named by the store's URL with a `remote:` prefix, with each
/// partition's bytes in the store. Offset lag is 0 (there are no future
/// replicas); volume sizes are not known (-1). `topics` null asks for all.
pub fn handle(broker: &Broker, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted: Option<BTreeMap<String, Vec<i32>>> = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect()
    });
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for topic in broker.topics() {
        let indexes: Vec<i32> = match &wanted {
            None => (0..topic.partitions.len() as i32).collect(),
            Some(w) => match w.get(&topic.name) {
                Some(p) => p.clone(),
                None => continue,
            },
        };
        let (mut l, mut r) = (Vec::new(), Vec::new());
        for i in indexes {
            let Some(p) = topic.partition(i) else {
                continue;
            };
            let entry = |size: u64| {
                DescribeLogDirsPartition::default()
                    .with_partition_index(i)
                    .with_partition_size(size as i64)
                    .with_offset_lag(0)
            };
            l.push(entry(p.log().size_bytes()));
            r.push(entry(p.remote().remote_bytes()));
        }
        let name = TopicName(str_bytes(topic.name.clone()));
        local.push(
            DescribeLogDirsTopic::default()
                .with_name(name.clone())
                .with_partitions(l),
        );
        remote.push(
            DescribeLogDirsTopic::default()
                .with_name(name)
                .with_partitions(r),
        );
    }
    let dir = |name: String, topics| {
        DescribeLogDirsResult::default()
            .with_log_dir(str_bytes(name))
            .with_topics(topics)
            .with_total_bytes(UNKNOWN_BYTES)
            .with_usable_bytes(UNKNOWN_BYTES)
    };
    DescribeLogDirsResponse::default().with_results(vec![
        dir(broker.log_dir.clone(), local),
        dir(format!("remote:{}", broker.remote_store.url), remote),
    ])
}
