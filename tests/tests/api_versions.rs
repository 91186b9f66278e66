//! Every API version Strata advertises, exercised over the wire: the
//! advertised ranges are exactly what is implemented and tested.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strata_tests::raw::{batch, topic_name as name, Conn};
use strata_tests::Broker;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

#[test]
fn every_advertised_version_answers() {
    let broker = Broker::start(&["--set", "group.initial.rebalance.delay.ms=0"]);
    let mut c = Conn::connect(&broker.addr());

    let mut advertised = BTreeMap::new();
    for v in 0..=4 {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(s("strata-tests"))
            .with_client_software_version(s("1.0"));
        let r = c.request(v, &req);
        assert_eq!(r.error_code, 0, "ApiVersions v{v}");
        advertised = r
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
    }
    let expected: BTreeMap<i16, (i16, i16)> = [
        (0, (3, 13)),
        (1, (4, 18)),
        (2, (1, 10)),
        (3, (0, 13)),
        (18, (0, 4)),
        (19, (2, 7)),
        (20, (1, 6)),
        (32, (1, 4)),
        (33, (0, 2)),
        (37, (0, 3)),
        (44, (0, 1)),
        (8, (2, 9)),
        (9, (1, 9)),
        (10, (0, 6)),
        (11, (0, 9)),
        (12, (0, 4)),
        (13, (0, 5)),
        (14, (0, 5)),
        (15, (0, 6)),
        (16, (0, 5)),
        (22, (0, 5)),
        (42, (0, 2)),
        (47, (0, 0)),
        (23, (2, 4)),
        (35, (1, 4)),
        (21, (0, 2)),
        (60, (0, 2)),
        (43, (0, 2)),
        (34, (1, 2)),
        (45, (0, 1)),
        (46, (0, 0)),
        (68, (0, 1)),
        (69, (0, 1)),
        (75, (0, 0)),
        (24, (0, 5)),
        (25, (0, 4)),
        (26, (0, 5)),
        (28, (0, 5)),
        (61, (0, 0)),
        (65, (0, 0)),
        (66, (0, 2)),
        (17, (0, 1)),
        (36, (0, 2)),
        (29, (1, 3)),
        (30, (1, 3)),
        (31, (1, 3)),
        (50, (0, 0)),
        (51, (0, 0)),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        advertised, expected,
        "a new API or version needs its case in this test"
    );

    // CreateTopics, one topic per version.
    for v in 2..=7 {
        let t = CreatableTopic::default()
            .with_name(name(&format!("ct-{v}")))
            .with_num_partitions(1)
            .with_replication_factor(1);
        let r = c.request(
            v,
            &CreateTopicsRequest::default()
                .with_topics(vec![t])
                .with_timeout_ms(5000),
        );
        assert_eq!(r.topics[0].error_code, 0, "CreateTopics v{v}");
        if v >= 5 {
            assert_eq!(r.topics[0].num_partitions, 1);
            assert!(r.topics[0]
                .configs
                .as_ref()
                .unwrap()
                .iter()
                .any(|c| &*c.name == "retention.ms"));
        }
    }

    // Metadata for one of them, every version; v10+ carries topic ids.
    let mut topic_id = uuid::Uuid::nil();
    for v in 0..=12 {
        let topic = MetadataRequestTopic::default().with_name(Some(name("ct-2")));
        let r = c.request(
            v,
            &MetadataRequest::default().with_topics(Some(vec![topic])),
        );
        assert_eq!(r.brokers.len(), 1, "Metadata v{v}");
        assert_eq!(
            r.brokers[0].port.to_string(),
            broker.addr().rsplit(':').next().unwrap()
        );
        assert_eq!(r.topics.len(), 1);
        assert_eq!(r.topics[0].error_code, 0);
        assert_eq!(r.topics[0].partitions.len(), 1);
        if v >= 10 {
            topic_id = r.topics[0].topic_id;
            assert!(!topic_id.is_nil());
        }
    }
    // Metadata for all topics: v0 with an empty list, v1+ with null.
    assert_eq!(
        c.request(0, &MetadataRequest::default().with_topics(Some(vec![])))
            .topics
            .len(),
        6
    );
    assert_eq!(
        c.request(1, &MetadataRequest::default().with_topics(None))
            .topics
            .len(),
        6
    );

    // Produce, every version: two records each.
    for v in 3..=11 {
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name("ct-2"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(2, 10, 1000 * v as i64)))])]);
        let r = c.request(v, &req);
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "Produce v{v}");
        assert_eq!(p.base_offset, 2 * (v as i64 - 3));
    }

    // Fetch, every version; v13+ names topics by id.
    for v in 4..=17 {
        let topic = if v >= 13 {
            FetchTopic::default().with_topic_id(topic_id)
        } else {
            FetchTopic::default().with_topic(name("ct-2"))
        };
        let req = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_topics(vec![topic.with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(4)
                .with_partition_max_bytes(1 << 20)])]);
        let r = c.request(v, &req);
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "Fetch v{v}");
        assert_eq!(p.high_watermark, 18);
        let records = p.records.clone().unwrap();
        let mut buf = records.clone();
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf).unwrap();
        let offsets: Vec<i64> = sets
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.offset))
            .collect();
        assert_eq!(offsets, (4..18).collect::<Vec<_>>(), "Fetch v{v}");
    }

    // ListOffsets, every version: latest, earliest, and by timestamp (the
    // Produce v5 batch has timestamps 5000 and 5001 at offsets 4 and 5).
    for v in 1..=9 {
        let parts = [-1i64, -2, 5001, 99_999]
            .into_iter()
            .map(|ts| {
                ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(ts)
            })
            .collect();
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("ct-2"))
                .with_partitions(parts)]);
        let r = c.request(v, &req);
        let offsets: Vec<i64> = r.topics[0].partitions.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, vec![18, 0, 5, -1], "ListOffsets v{v}");
        assert_eq!(r.topics[0].partitions[2].timestamp, 5001);
        if v >= 7 {
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(name("ct-2"))
                    .with_partitions(vec![
                        ListOffsetsPartition::default().with_timestamp(-3)
                    ])]);
            let p = &c.request(v, &req).topics[0].partitions[0];
            assert_eq!(
                (p.offset, p.timestamp),
                (17, 11001),
                "max timestamp, ListOffsets v{v}"
            );
        }
    }

    // The newest versions, Kafka 4.1's: Metadata v13 (a top-level error
    // code), Produce v12, Fetch v18 (a follower's high watermark, which
    // consumers leave unset) and ListOffsets v10 (a timeout).
    {
        let topic = MetadataRequestTopic::default().with_name(Some(name("ct-2")));
        let r = c.request(
            13,
            &MetadataRequest::default().with_topics(Some(vec![topic])),
        );
        assert_eq!(
            (r.error_code, r.topics[0].error_code),
            (0, 0),
            "Metadata v13"
        );
        assert_eq!(r.topics[0].topic_id, topic_id);
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name("ct-2"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(2, 10, 12_000)))])]);
        let p = c.request(12, &req).responses[0].partition_responses[0].clone();
        assert_eq!((p.error_code, p.base_offset), (0, 18), "Produce v12");
        let req = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_topics(vec![FetchTopic::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(18)
                    .with_partition_max_bytes(1 << 20)])]);
        let r = c.request(18, &req);
        let p = &r.responses[0].partitions[0];
        assert_eq!((p.error_code, p.high_watermark), (0, 20), "Fetch v18");
        let mut buf = p.records.clone().unwrap();
        let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf).unwrap();
        assert_eq!(sets[0].records[0].offset, 18, "Fetch v18");
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_timeout_ms(5000)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("ct-2"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])]);
        let p = &c.request(10, &req).topics[0].partitions[0];
        assert_eq!((p.error_code, p.offset), (0, 20), "ListOffsets v10");
        // Produce v13 names the topic by id; an id no topic has is
        // UNKNOWN_TOPIC_ID.
        let by_id = |id| {
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_topic_id(id)
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(2, 10, 13_000)))])])
        };
        let r = c.request(13, &by_id(topic_id));
        assert_eq!(r.responses[0].topic_id, topic_id, "Produce v13");
        let p = &r.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, 20), "Produce v13");
        let r = c.request(13, &by_id(uuid::Uuid::from_u128(7)));
        assert_eq!(
            r.responses[0].partition_responses[0].error_code, 100,
            "Produce v13, unknown topic id"
        );
    }

    // DescribeConfigs, every version, for a topic and for the broker.
    for v in 1..=4 {
        let req = DescribeConfigsRequest::default()
            .with_include_synonyms(true)
            .with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("ct-2")),
                DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(s("0")),
            ]);
        let r = c.request(v, &req);
        assert_eq!(r.results[0].error_code, 0, "DescribeConfigs v{v}");
        let retention = r.results[0]
            .configs
            .iter()
            .find(|c| &*c.name == "retention.ms")
            .unwrap();
        assert_eq!(retention.value.as_deref(), Some("-1"));
        assert_eq!(retention.config_source, 5);
        assert!(r.results[1]
            .configs
            .iter()
            .any(|c| &*c.name == "log.segment.bytes"));
    }

    // AlterConfigs (replaces the overrides) and IncrementalAlterConfigs
    // (changes one key), every version; the last write of each wins.
    for v in 0..=2 {
        let req =
            AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("ct-2"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s(&format!("{}", 100_000 + v as i64))))])]);
        let r = c.request(v, &req);
        assert_eq!(r.responses[0].error_code, 0, "AlterConfigs v{v}");
    }
    for v in 0..=1 {
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("ct-2"))
                .with_configs(vec![kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s("segment.ms"))
                    .with_config_operation(0)
                    .with_value(Some(s(&format!("{}", 200_000 + v as i64))))]),
        ]);
        let r = c.request(v, &req);
        assert_eq!(r.responses[0].error_code, 0, "IncrementalAlterConfigs v{v}");
    }
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("ct-2"))]);
    let r = c.request(4, &req);
    let value = |k: &str| {
        r.results[0]
            .configs
            .iter()
            .find(|c| &*c.name == k)
            .unwrap()
            .value
            .clone()
            .unwrap()
            .to_string()
    };
    assert_eq!(value("retention.ms"), "100002");
    assert_eq!(value("segment.ms"), "200001");

    // CreatePartitions, every version.
    for v in 0..=3 {
        let req = CreatePartitionsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(name("ct-3"))
                .with_count(v as i32 + 2)]);
        let r = c.request(v, &req);
        assert_eq!(r.results[0].error_code, 0, "CreatePartitions v{v}");
    }

    // DeleteTopics, every version; v6 by id.
    for v in 1..=6 {
        let topic = format!("ct-{}", v + 1);
        let req = if v >= 6 {
            let md = c.request(
                12,
                &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default(
                )
                .with_name(Some(name(&topic)))])),
            );
            DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_topic_id(md.topics[0].topic_id)
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name(&topic)])
        };
        let r = c.request(v, &req.with_timeout_ms(5000));
        assert_eq!(r.responses[0].error_code, 0, "DeleteTopics v{v}");
    }
    assert_eq!(
        c.request(1, &MetadataRequest::default().with_topics(None))
            .topics
            .len(),
        0
    );

    groups_every_version(&mut c);

    // OffsetForLeaderEpoch: epoch 0 ends at the log end; other epochs are
    // undefined; the current-epoch check fences older and refuses newer.
    assert_eq!(c.create_topic("epochs", 1, &[]).error_code, 0);
    c.produce("epochs", 0, batch(3, 10, 1_000));
    for v in 2..=4 {
        use kafka_protocol::messages::offset_for_leader_epoch_request::{
            OffsetForLeaderPartition, OffsetForLeaderTopic,
        };
        let ask = |current: i32, epoch: i32| {
            OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(current)
                .with_leader_epoch(epoch)
        };
        let req = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(name("epochs"))
                    .with_partitions(vec![
                        ask(-1, 0),
                        ask(0, 0),
                        ask(-1, 5),
                        ask(-2, 0),
                        ask(3, 0),
                    ]),
                OffsetForLeaderTopic::default()
                    .with_topic(name("no-such-topic"))
                    .with_partitions(vec![ask(-1, 0)]),
            ]);
        let r = c.request(v, &req);
        let got: Vec<(i16, i32, i64)> = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, 3),
                (0, 0, 3),
                (0, -1, -1),
                (74, -1, -1),
                (75, -1, -1),
                (3, -1, -1)
            ],
            "OffsetForLeaderEpoch v{v}"
        );
    }

    // DescribeLogDirs: the data directory with hot-tier sizes, then the
    // cold tier; all topics when null, the named partitions otherwise.
    for v in 1..=4 {
        use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
        let all = c.request(v, &DescribeLogDirsRequest::default().with_topics(None));
        assert_eq!(all.results.len(), 2, "DescribeLogDirs v{v}");
        assert!(
            all.results[1].log_dir.starts_with("remote:"),
            "DescribeLogDirs v{v}"
        );
        let sizes = |r: &DescribeLogDirsResponse, dir: usize| -> Vec<(String, i32, i64)> {
            r.results[dir]
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (t.name.0.to_string(), p.partition_index, p.partition_size))
                })
                .collect()
        };
        assert!(
            sizes(&all, 0)
                .iter()
                .any(|(t, p, size)| t == "epochs" && *p == 0 && *size > 0),
            "DescribeLogDirs v{v}: {:?}",
            sizes(&all, 0)
        );
        let one = c.request(
            v,
            &DescribeLogDirsRequest::default().with_topics(Some(vec![
                DescribableLogDirTopic::default()
                    .with_topic(name("epochs"))
                    .with_partitions(vec![0]),
            ])),
        );
        let local = sizes(&one, 0);
        assert_eq!(local.len(), 1, "DescribeLogDirs v{v}");
        assert_eq!((local[0].0.as_str(), local[0].1), ("epochs", 0));
        assert_eq!(sizes(&one, 1), vec![("epochs".to_string(), 0, 0)]);
    }

    // DeleteRecords: the log start moves to the offset (-1: the high
    // watermark); past the high watermark is OFFSET_OUT_OF_RANGE.
    assert_eq!(c.create_topic("trim", 1, &[]).error_code, 0);
    for _ in 0..3 {
        c.produce("trim", 0, batch(2, 10, 1_000));
    }
    for (v, offset, want) in [
        (0, 2, (0, 2)),
        (1, 5, (0, 5)),
        (2, 7, (1, -1)),
        (2, -1, (0, 6)),
    ] {
        use kafka_protocol::messages::delete_records_request::{
            DeleteRecordsPartition, DeleteRecordsTopic,
        };
        let req = DeleteRecordsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(name("trim"))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(offset)])]);
        let r = c.request(v, &req);
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.low_watermark),
            want,
            "DeleteRecords v{v} to {offset}"
        );
        if want.0 == 0 {
            assert_eq!(
                c.list_offset("trim", 0, -2).offset,
                want.1,
                "earliest after v{v}"
            );
        }
    }

    // DescribeCluster: this node, as broker and controller; a request for
    // controller endpoints (v1+) is refused as Kafka's brokers refuse it.
    for v in 0..=2 {
        let r = c.request(v, &DescribeClusterRequest::default());
        assert_eq!(r.error_code, 0, "DescribeCluster v{v}");
        assert_eq!(r.controller_id, BrokerId(0), "DescribeCluster v{v}");
        assert_eq!(r.brokers.len(), 1, "DescribeCluster v{v}");
        assert_eq!(
            format!("{}:{}", r.brokers[0].host, r.brokers[0].port),
            broker.addr(),
            "DescribeCluster v{v}"
        );
        assert!(!r.cluster_id.is_empty(), "DescribeCluster v{v}");
        if v >= 1 {
            let r = c.request(v, &DescribeClusterRequest::default().with_endpoint_type(2));
            assert_eq!(r.error_code, 114, "DescribeCluster v{v} for controllers");
        }
    }

    // AlterReplicaLogDirs v1-v2: the data directory is the one log dir.
    for v in 1..=2 {
        use kafka_protocol::messages::alter_replica_log_dirs_request::{
            AlterReplicaLogDir, AlterReplicaLogDirTopic,
        };
        let here = c
            .request(1, &DescribeLogDirsRequest::default().with_topics(None))
            .results[0]
            .log_dir
            .to_string();
        let move_to = |path: &str, partitions: Vec<i32>| {
            AlterReplicaLogDir::default()
                .with_path(s(path))
                .with_topics(vec![AlterReplicaLogDirTopic::default()
                    .with_name(name("trim"))
                    .with_partitions(partitions)])
        };
        let req = AlterReplicaLogDirsRequest::default().with_dirs(vec![
            move_to(&here, vec![0, 7]),
            move_to("/elsewhere", vec![0]),
        ]);
        let r = c.request(v, &req);
        let codes: Vec<i16> = r
            .results
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect();
        assert_eq!(codes, vec![0, 3, 57], "AlterReplicaLogDirs v{v}");
    }
    // ElectLeaders, every version: the one replica already leads.
    for v in 0..=2 {
        use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
        let req = ElectLeadersRequest::default()
            .with_timeout_ms(5000)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(name("trim"))
                .with_partitions(vec![0, 7])]));
        let r = c.request(v, &req);
        let codes: Vec<i16> = r.replica_election_results[0]
            .partition_result
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(codes, vec![84, 3], "ElectLeaders v{v}");
    }
    // Partition reassignments v0: staying put succeeds, another broker is
    // refused, cancelling finds nothing to cancel, and none is listed.
    {
        use kafka_protocol::messages::alter_partition_reassignments_request::{
            ReassignablePartition, ReassignableTopic,
        };
        let to = |replicas: Option<Vec<i32>>| {
            ReassignablePartition::default()
                .with_partition_index(0)
                .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))
        };
        for v in 0..=1 {
            let req = AlterPartitionReassignmentsRequest::default()
                .with_timeout_ms(5000)
                .with_allow_replication_factor_change(v == 0)
                .with_topics(vec![ReassignableTopic::default()
                    .with_name(name("trim"))
                    .with_partitions(vec![
                        to(Some(vec![0])),
                        to(Some(vec![1])),
                        to(None),
                    ])]);
            let r = c.request(v, &req);
            let codes: Vec<i16> = r.responses[0]
                .partitions
                .iter()
                .map(|p| p.error_code)
                .collect();
            assert_eq!(codes, vec![0, 39, 85], "AlterPartitionReassignments v{v}");
            assert_eq!(r.allow_replication_factor_change, v == 0);
        }
        let r = c.request(
            0,
            &ListPartitionReassignmentsRequest::default().with_timeout_ms(5000),
        );
        assert_eq!(
            (r.error_code, r.topics.len()),
            (0, 0),
            "ListPartitionReassignments v0"
        );
    }

    // DescribeTopicPartitions v0: pages of two partitions through the
    // topics asked for, in name order, with an unknown one named as such.
    {
        use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
        assert_eq!(c.create_topic("dtp-a", 3, &[]).error_code, 0);
        assert_eq!(c.create_topic("dtp-b", 2, &[]).error_code, 0);
        let ask = |cursor: Option<(&str, i32)>| {
            DescribeTopicPartitionsRequest::default()
                .with_topics(
                    ["dtp-b", "dtp-a", "dtp-none"]
                        .iter()
                        .map(|t| TopicRequest::default().with_name(name(t)))
                        .collect(),
                )
                .with_response_partition_limit(2)
                .with_cursor(cursor.map(|(t, p)| {
                    Cursor::default()
                        .with_topic_name(name(t))
                        .with_partition_index(p)
                }))
        };
        let page = |r: &DescribeTopicPartitionsResponse| {
            let topics: Vec<(String, i16, Vec<i32>)> = r
                .topics
                .iter()
                .map(|t| {
                    (
                        t.name.as_ref().unwrap().0.to_string(),
                        t.error_code,
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    )
                })
                .collect();
            let next = r
                .next_cursor
                .as_ref()
                .map(|c| (c.topic_name.0.to_string(), c.partition_index));
            (topics, next)
        };
        let r = c.request(0, &ask(None));
        assert_eq!(
            page(&r),
            (
                vec![("dtp-a".into(), 0, vec![0, 1])],
                Some(("dtp-a".into(), 2))
            )
        );
        let r = c.request(0, &ask(Some(("dtp-a", 2))));
        assert_eq!(
            page(&r),
            (
                vec![("dtp-a".into(), 0, vec![2]), ("dtp-b".into(), 0, vec![0])],
                Some(("dtp-b".into(), 1))
            )
        );
        let r = c.request(0, &ask(Some(("dtp-b", 1))));
        assert_eq!(
            page(&r),
            (
                vec![("dtp-b".into(), 0, vec![1]), ("dtp-none".into(), 3, vec![])],
                None
            )
        );
        // A cursor outside the topics asked for is INVALID_REQUEST.
        let r = c.request(0, &ask(Some(("zzz", 0))));
        assert!(r.topics.iter().all(|t| t.error_code == 42), "{r:?}");
    }

    // KIP-848 consumer groups, every version: a member joins with epoch 0,
    // gets the topic's partition at epoch 1, is described, and leaves.
    for v in 0..=1i16 {
        let group = format!("kip848-v{v}");
        let member = format!("member-v{v}");
        let req = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_member_id(s(&member))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![name("trim")]))
            .with_topic_partitions(Some(vec![]));
        let r = c.request(v, &req);
        assert_eq!(
            (r.error_code, r.member_epoch),
            (0, 1),
            "ConsumerGroupHeartbeat v{v}: {r:?}"
        );
        let assigned: Vec<i32> = r
            .assignment
            .expect("an assignment")
            .topic_partitions
            .iter()
            .flat_map(|tp| tp.partitions.clone())
            .collect();
        assert!(!assigned.is_empty(), "ConsumerGroupHeartbeat v{v}");
        let r = c.request(
            v,
            &ConsumerGroupDescribeRequest::default()
                .with_group_ids(vec![GroupId(s(&group)), GroupId(s("no-such-group"))])
                .with_include_authorized_operations(true),
        );
        let g = &r.groups[0];
        assert_eq!(
            (g.error_code, g.group_state.as_str(), g.members.len()),
            (0, "Stable", 1),
            "ConsumerGroupDescribe v{v}"
        );
        assert_eq!(g.members[0].subscribed_topic_names, vec![name("trim")]);
        assert_eq!(r.groups[1].error_code, 69, "ConsumerGroupDescribe v{v}");
        let leave = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_member_id(s(&member))
            .with_member_epoch(-1);
        let r = c.request(v, &leave);
        assert_eq!(
            (r.error_code, r.member_epoch),
            (0, -1),
            "ConsumerGroupHeartbeat leave v{v}"
        );
    }

    let mut ids = std::collections::BTreeSet::new();
    for v in 0..=5 {
        let req = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000);
        let req = if v >= 3 {
            req.with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
        } else {
            req
        };
        let r = c.request(v, &req);
        assert_eq!(
            (r.error_code, r.producer_epoch),
            (0, 0),
            "InitProducerId v{v}"
        );
        assert!(ids.insert(r.producer_id.0), "a new producer id each time");
    }
    transactions_every_version(&mut c);
    security_every_version(&mut c);
}

/// One transaction per version of the transactional APIs, on a topic of its own:
/// InitProducerId with a transactional id, AddPartitionsToTxn (batched and
/// verify-only from v4), AddOffsetsToTxn, TxnOffsetCommit and EndTxn; then
/// the operators' DescribeTransactions, ListTransactions and
/// DescribeProducers.
/// The SASL, ACL and SCRAM APIs on a PLAINTEXT listener without an
/// authorizer: SASL is out of place, ACLs are disabled, SCRAM users are
/// managed.
fn security_every_version(c: &mut Conn) {
    for v in 0..=1 {
        let r = c.request(
            v,
            &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
        );
        assert_eq!(r.error_code, 34, "SaslHandshake v{v}: ILLEGAL_SASL_STATE");
    }
    for v in 0..=2 {
        let r = c.request(v, &SaslAuthenticateRequest::default());
        assert_eq!(
            r.error_code, 34,
            "SaslAuthenticate v{v}: ILLEGAL_SASL_STATE"
        );
    }
    for v in 1..=3 {
        let r = c.request(
            v,
            &CreateAclsRequest::default().with_creations(vec![Default::default()]),
        );
        assert_eq!(
            r.results[0].error_code, 54,
            "CreateAcls v{v}: SECURITY_DISABLED"
        );
        let r = c.request(
            v,
            &DescribeAclsRequest::default().with_resource_type_filter(1),
        );
        assert_eq!(r.error_code, 54, "DescribeAcls v{v}");
        let r = c.request(
            v,
            &DeleteAclsRequest::default().with_filters(vec![Default::default()]),
        );
        assert_eq!(r.filter_results[0].error_code, 54, "DeleteAcls v{v}");
    }
    use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
    let r = c.request(
        0,
        &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            ScramCredentialUpsertion::default()
                .with_name(s("versions"))
                .with_mechanism(2)
                .with_iterations(4096)
                .with_salt(bytes::Bytes::from_static(b"salt"))
                .with_salted_password(bytes::Bytes::from_static(&[7; 64])),
        ]),
    );
    assert_eq!(r.results[0].error_code, 0, "AlterUserScramCredentials v0");
    let r = c.request(0, &DescribeUserScramCredentialsRequest::default());
    assert_eq!(r.error_code, 0);
    assert_eq!(&*r.results[0].user, "versions");
    assert_eq!(r.results[0].credential_infos[0].iterations, 4096);
}

fn transactions_every_version(c: &mut Conn) {
    use kafka_protocol::messages::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
    };
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    assert_eq!(c.create_topic("txn-sweep", 1, &[]).error_code, 0);
    for v in 0..=5i16 {
        let id = TransactionalId(s(&format!("txn-v{v}")));
        let r = c.request(
            v,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(id.clone()))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        );
        assert_eq!(
            r.error_code, 0,
            "InitProducerId v{v} with a transactional id"
        );
        let (pid, epoch) = (r.producer_id, r.producer_epoch);
        let topics = vec![AddPartitionsToTxnTopic::default()
            .with_name(name("txn-sweep"))
            .with_partitions(vec![0])];
        let code = if v <= 3 {
            let r = c.request(
                v,
                &AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(id.clone())
                    .with_v3_and_below_producer_id(pid)
                    .with_v3_and_below_producer_epoch(epoch)
                    .with_v3_and_below_topics(topics),
            );
            r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
        } else {
            let txn = |verify| {
                AddPartitionsToTxnRequest::default().with_transactions(vec![
                    AddPartitionsToTxnTransaction::default()
                        .with_transactional_id(id.clone())
                        .with_producer_id(pid)
                        .with_producer_epoch(epoch)
                        .with_verify_only(verify)
                        .with_topics(topics.clone()),
                ])
            };
            let code = |r: AddPartitionsToTxnResponse| {
                r.results_by_transaction[0].topic_results[0].results_by_partition[0]
                    .partition_error_code
            };
            // Verify-only before the partition is added: not part of it.
            assert_eq!(code(c.request(v, &txn(true))), 48, "verify-only v{v}");
            assert_eq!(code(c.request(v, &txn(false))), 0);
            code(c.request(v, &txn(true)))
        };
        assert_eq!(code, 0, "AddPartitionsToTxn v{v}");
        let commit = |id: &TransactionalId| {
            EndTxnRequest::default()
                .with_transactional_id(id.clone())
                .with_producer_id(pid)
                .with_producer_epoch(epoch)
                .with_committed(true)
        };
        let group = GroupId(s(&format!("txn-group-{v}")));
        let r = c.request(
            v.min(4),
            &AddOffsetsToTxnRequest::default()
                .with_transactional_id(id.clone())
                .with_producer_id(pid)
                .with_producer_epoch(epoch)
                .with_group_id(group.clone()),
        );
        assert_eq!(r.error_code, 0, "AddOffsetsToTxn v{}", v.min(4));
        let r = c.request(
            v,
            &TxnOffsetCommitRequest::default()
                .with_transactional_id(id.clone())
                .with_group_id(group.clone())
                .with_producer_id(pid)
                .with_producer_epoch(epoch)
                .with_generation_id(-1)
                .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                    .with_name(name("txn-sweep"))
                    .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1)])]),
        );
        assert_eq!(
            r.topics[0].partitions[0].error_code, 0,
            "TxnOffsetCommit v{v}"
        );
        let r = c.request(v, &commit(&id));
        assert_eq!(r.error_code, 0, "EndTxn v{v}");
        // The transaction's offset is now the group's.
        let r = c.request(
            1,
            &OffsetFetchRequest::default()
                .with_group_id(group)
                .with_topics(Some(vec![
                kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(name("txn-sweep"))
                    .with_partition_indexes(vec![0]),
            ])),
        );
        assert_eq!(
            r.topics[0].partitions[0].committed_offset, 1,
            "offset committed by EndTxn v{v}"
        );
        // A retried EndTxn is answered again; an unknown id is not.
        let again = c.request(v, &commit(&id));
        assert_eq!(again.error_code, 0);
        let unknown = c.request(v, &commit(&TransactionalId(s("nobody"))));
        assert_eq!(unknown.error_code, 49, "INVALID_PRODUCER_ID_MAPPING");
    }
    let r = c.request(
        0,
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![
            TransactionalId(s("txn-v0")),
            TransactionalId(s("nobody")),
        ]),
    );
    assert_eq!(
        &*r.transaction_states[0].transaction_state,
        "CompleteCommit"
    );
    assert_eq!(
        r.transaction_states[1].error_code, 105,
        "TRANSACTIONAL_ID_NOT_FOUND"
    );
    for v in 0..=2 {
        let r = c.request(
            v,
            &ListTransactionsRequest::default().with_duration_filter(-1),
        );
        assert_eq!(r.transaction_states.len(), 6, "ListTransactions v{v}");
    }
    let r = c.request(
        0,
        &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(name("txn-sweep"))
            .with_partition_indexes(vec![0])]),
    );
    assert_eq!(
        r.topics[0].partitions[0].error_code, 0,
        "DescribeProducers v0"
    );
    // Six transactions each left a COMMIT marker with their producer id.
    assert_eq!(r.topics[0].partitions[0].active_producers.len(), 6);
}

/// Joins `group` at JoinGroup `version` (with the MEMBER_ID_REQUIRED step
/// from v4) and returns (member id, generation).
fn join(c: &mut Conn, group: &str, version: i16) -> (StrBytes, i32) {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    let req = |member: StrBytes| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(member)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(bytes::Bytes::from_static(b"meta"))])
    };
    let mut r = c.request(version, &req(s("")));
    if version >= 4 {
        assert_eq!(
            r.error_code, 79,
            "JoinGroup v{version}: MEMBER_ID_REQUIRED first"
        );
        r = c.request(version, &req(r.member_id.clone()));
    }
    assert_eq!(r.error_code, 0, "JoinGroup v{version}");
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 1);
    (r.member_id, r.generation_id)
}

fn groups_every_version(c: &mut Conn) {
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;

    assert_eq!(c.create_topic("offsets-sweep", 1, &[]).error_code, 0);
    let port = c
        .request(0, &FindCoordinatorRequest::default().with_key(s("x")))
        .port;
    for v in 0..=6 {
        let req = if v >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g")])
        } else {
            FindCoordinatorRequest::default().with_key(s("g"))
        };
        let r = c.request(v, &req);
        let p = if v >= 4 {
            r.coordinators[0].port
        } else {
            r.port
        };
        assert_eq!(p, port, "FindCoordinator v{v}");
    }
    for v in 0..=9 {
        join(c, &format!("join-{v}"), v);
    }
    let (member, generation) = join(c, "sweep", 9);
    for v in 0..=5 {
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(s("sweep")))
            .with_generation_id(generation)
            .with_member_id(member.clone())
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(member.clone())
                .with_assignment(bytes::Bytes::from_static(b"asg"))]);
        let r = c.request(v, &req);
        assert_eq!(
            (r.error_code, &r.assignment[..]),
            (0, &b"asg"[..]),
            "SyncGroup v{v}"
        );
    }
    for v in 0..=4 {
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(s("sweep")))
            .with_generation_id(generation)
            .with_member_id(member.clone());
        assert_eq!(c.request(v, &req).error_code, 0, "Heartbeat v{v}");
    }
    for v in 2..=9 {
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(s("sweep")))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(member.clone())
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(name("offsets-sweep"))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(100 + v as i64)])]);
        assert_eq!(
            c.request(v, &req).topics[0].partitions[0].error_code,
            0,
            "OffsetCommit v{v}"
        );
    }
    for v in 1..=9 {
        let offset = if v >= 8 {
            let req =
                OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s("sweep")))
                    .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                        .with_name(name("offsets-sweep"))
                        .with_partition_indexes(vec![0])]))]);
            c.request(v, &req).groups[0].topics[0].partitions[0].committed_offset
        } else {
            let req = OffsetFetchRequest::default()
                .with_group_id(GroupId(s("sweep")))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(name("offsets-sweep"))
                    .with_partition_indexes(vec![0])]));
            c.request(v, &req).topics[0].partitions[0].committed_offset
        };
        assert_eq!(offset, 109, "OffsetFetch v{v}");
    }
    // OffsetDelete v0: the sweep group's member subscribes to nothing the
    // broker can read, so the offset goes.
    {
        use kafka_protocol::messages::offset_delete_request::{
            OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
        };
        let req = OffsetDeleteRequest::default()
            .with_group_id(GroupId(s("sweep")))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(name("offsets-sweep"))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0)
                ])]);
        let r = c.request(0, &req);
        assert_eq!(
            (r.error_code, r.topics[0].partitions[0].error_code),
            (0, 0),
            "OffsetDelete v0"
        );
    }
    // DeleteGroups, every version: a group that only has offsets goes; a
    // group with members and an unknown one do not.
    for v in 0..=2 {
        let group = format!("del-{v}");
        let commit = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(name("offsets-sweep"))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(1)])]);
        assert_eq!(c.request(8, &commit).topics[0].partitions[0].error_code, 0);
        let req = DeleteGroupsRequest::default().with_groups_names(vec![
            GroupId(s(&group)),
            GroupId(s("sweep")),
            GroupId(s("nope")),
        ]);
        let codes: Vec<i16> = c
            .request(v, &req)
            .results
            .iter()
            .map(|r| r.error_code)
            .collect();
        assert_eq!(codes, vec![0, 68, 69], "DeleteGroups v{v}");
    }
    for v in 0..=5 {
        let groups = c.request(v, &ListGroupsRequest::default()).groups;
        assert!(
            groups.iter().any(|g| &*g.group_id.0 == "sweep"),
            "ListGroups v{v}"
        );
    }
    for v in 0..=6 {
        let r = c.request(
            v,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("sweep"))]),
        );
        assert_eq!(
            (&*r.groups[0].group_state, r.groups[0].members.len()),
            ("Stable", 1),
            "DescribeGroups v{v}"
        );
    }
    for v in 0..=5 {
        let (m, _) = join(c, &format!("leave-{v}"), 9);
        let req = if v >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s(&format!("leave-{v}"))))
                .with_members(vec![MemberIdentity::default().with_member_id(m)])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s(&format!("leave-{v}"))))
                .with_member_id(m)
        };
        let r = c.request(v, &req);
        let code = if v >= 3 {
            r.members[0].error_code
        } else {
            r.error_code
        };
        assert_eq!(code, 0, "LeaveGroup v{v}");
    }
}
