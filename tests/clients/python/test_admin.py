"""Admin APIs with the admin clients operators use: confluent-kafka's
AdminClient and kafka-python's KafkaAdminClient."""

import os
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
from kafka import KafkaAdminClient

from conftest import fill_tiered_topic


def test_describe_cluster_names_this_node_as_broker_and_controller(broker):
    admin = AdminClient({"bootstrap.servers": broker.addr})
    cluster = admin.describe_cluster(request_timeout=10).result(10)
    host, port = broker.addr.rsplit(":", 1)
    assert cluster.cluster_id
    assert [(n.id, n.host, n.port) for n in cluster.nodes] == [(0, host, int(port))]
    assert cluster.controller.id == 0
    # The cluster id is the one the broker keeps across restarts.
    broker.kill_and_restart()
    admin = AdminClient({"bootstrap.servers": broker.addr})
    again = admin.describe_cluster(request_timeout=10).result(10)
    assert again.cluster_id == cluster.cluster_id


def test_describe_log_dirs_shows_each_tier(tiered_broker):
    topic = "dirs"
    fill_tiered_topic(tiered_broker, topic, 4000, partitions=2, config={"local.retention.bytes": "1"})

    kp = KafkaAdminClient(bootstrap_servers=tiered_broker.addr)
    try:
        def sizes():
            (answer,) = kp.describe_log_dirs({topic: [0, 1]})
            dirs = {d["log_dir"]: {p["partition_index"]: p["partition_size"]
                                   for t in d["topics"] if t["name"] == topic for p in t["partitions"]}
                    for d in answer["log_dirs"]}
            local = [v for k, v in dirs.items() if not k.startswith("remote:")]
            remote = [v for k, v in dirs.items() if k.startswith("remote:")]
            assert len(local) == 1 and len(remote) == 1, dirs
            return local[0], remote[0]

        # Partition 0's history moves to the cold tier; partition 1 is empty.
        deadline = time.time() + 30
        local, remote = sizes()
        while (remote[0] < 500_000 or local[0] >= 200_000) and time.time() < deadline:
            time.sleep(0.2)
            local, remote = sizes()
        assert remote[0] >= 500_000, remote
        assert local[0] < 200_000, local
        assert local[1] == 0 and remote[1] == 0
    finally:
        kp.close()


def test_delete_records_moves_the_log_start_across_both_tiers(tiered_broker):
    admin = AdminClient({"bootstrap.servers": tiered_broker.addr})
    topic = "trimmed"
    fill_tiered_topic(tiered_broker, topic, 4000, config={"local.retention.bytes": "1"})
    remote_dir = os.path.join(tiered_broker.dir.name, "data", "remote")

    def remote_segments():
        return sum(f.endswith(".log") for _, _, files in os.walk(remote_dir) for f in files)

    def local_start():
        d = os.path.join(tiered_broker.dir.name, "data", f"{topic}-0")
        return min(int(f[:-4]) for f in os.listdir(d) if f.endswith(".log"))

    # Wait until most of the history is only in the cold tier.
    deadline = time.time() + 30
    while local_start() < 2000 and time.time() < deadline:
        time.sleep(0.2)
    assert local_start() >= 2000
    before = remote_segments()

    # Into the cold tier first, then into the hot tier.
    for cut in (1234, local_start() + 10):
        tp = TopicPartition(topic, 0, cut)
        deleted = admin.delete_records([tp], request_timeout=10)[tp].result(10)
        assert deleted.low_watermark == cut
        # ListOffsets: the special timestamps, and a lookup by timestamp that
        # would land in a batch straddling the cut, answer from the cut on.
        part = TopicPartition(topic, 0)
        for spec, want in [(OffsetSpec.earliest(), cut), (OffsetSpec.latest(), 4000),
                           (OffsetSpec.for_timestamp(0), cut)]:
            got = admin.list_offsets({part: spec}, request_timeout=10)[part].result(10)
            assert got.offset == want, (spec, got)
        newest = admin.list_offsets({part: OffsetSpec.max_timestamp()}, request_timeout=10)[part].result(10)
        assert cut <= newest.offset < 4000

        consumer = Consumer({"bootstrap.servers": tiered_broker.addr, "group.id": f"trim-{cut}",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (cut, 4000)
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        first = None
        deadline = time.time() + 20
        while first is None and time.time() < deadline:
            m = consumer.poll(0.5)
            if m is not None and m.error() is None:
                first = m
        consumer.close()
        # A batch can start below the cut; the client skips to the records at or after it.
        assert first is not None and first.offset() == cut and first.key() == str(cut).encode()

    # Remote segments wholly below the cut are deleted by the next retention pass.
    deadline = time.time() + 30
    while remote_segments() >= before and time.time() < deadline:
        time.sleep(0.2)
    assert remote_segments() < before

    # The new start survives a crash.
    tiered_broker.kill_and_restart()
    consumer = Consumer({"bootstrap.servers": tiered_broker.addr, "group.id": "after", "enable.auto.commit": False})
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.close()
    assert (low, high) == (cut, 4000)

    # Past the high watermark is refused as Kafka refuses it.
    tp = TopicPartition(topic, 0, 5000)
    with pytest.raises(KafkaException) as e:
        admin = AdminClient({"bootstrap.servers": tiered_broker.addr})
        admin.delete_records([tp], request_timeout=10)[tp].result(10)
    assert e.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE


def test_create_partitions_checks_replica_assignments(broker):
    from confluent_kafka.admin import NewPartitions
    a = AdminClient({"bootstrap.servers": broker.addr})
    a.create_topics([NewTopic("assigned", 1, 1)])["assigned"].result(10)

    def code(new):
        try:
            a.create_partitions([new])["assigned"].result(10)
            return None
        except KafkaException as e:
            return e.args[0].code()

    # Two partitions added, one assignment given.
    assert code(NewPartitions("assigned", 3, replica_assignment=[[0]])) == \
        KafkaError.INVALID_REPLICA_ASSIGNMENT
    # Two replicas where the topic has one.
    assert code(NewPartitions("assigned", 2, replica_assignment=[[0, 0]])) == \
        KafkaError.INVALID_REPLICA_ASSIGNMENT
    # A broker that is not this one.
    assert code(NewPartitions("assigned", 2, replica_assignment=[[7]])) == \
        KafkaError.INVALID_REPLICA_ASSIGNMENT
    assert code(NewPartitions("assigned", 3, replica_assignment=[[0], [0]])) is None
    md = a.list_topics("assigned", timeout=10)
    assert len(md.topics["assigned"].partitions) == 3


def test_an_admin_offset_commit_to_a_group_with_members_is_unknown_member(broker):
    from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
    a = AdminClient({"bootstrap.servers": broker.addr})
    a.create_topics([NewTopic("admin-commit", 1, 1)])["admin-commit"].result(10)
    member = Consumer({"bootstrap.servers": broker.addr, "group.id": "busy",
                       "session.timeout.ms": 10000, "enable.auto.commit": False})
    member.subscribe(["admin-commit"])
    deadline = time.time() + 20
    while time.time() < deadline and not member.assignment():
        member.poll(0.2)
    assert member.assignment()
    request = ConsumerGroupTopicPartitions("busy", [TopicPartition("admin-commit", 0, 5)])
    try:
        refused = a.alter_consumer_group_offsets([request])["busy"].result(10).topic_partitions[0]
        code = refused.error.code() if refused.error else None
    except KafkaException as e:
        code = e.args[0].code()
    assert code == KafkaError.UNKNOWN_MEMBER_ID
    member.close()
    # Once the group is empty, the same commit is accepted.
    result = a.alter_consumer_group_offsets([request])["busy"].result(10)
    assert result.topic_partitions[0].offset == 5


def test_leader_election_and_reassignments_as_a_one_broker_kafka_answers(broker):
    from kafka import TopicPartition as KTP
    from kafka.errors import (InvalidReplicationAssignmentError, NoReassignmentInProgressError,
                              UnknownTopicOrPartitionError)
    creator = AdminClient({"bootstrap.servers": broker.addr})
    creator.create_topics([NewTopic("placed", 2, 1)])["placed"].result(10)
    a = KafkaAdminClient(bootstrap_servers=broker.addr)
    try:
        # Every partition already has its preferred leader: nothing to do,
        # which kafka-python takes as success.
        r = a.elect_leaders(0, {"placed": [0, 1]})
        codes = [p.error_code for t in r.replica_election_results for p in t.partition_result]
        assert codes == [84, 84]
        with pytest.raises(UnknownTopicOrPartitionError):
            a.elect_leaders(0, {"placed": [9]})
        # The one replica can stay where it is; nowhere else.
        got = a.alter_partition_reassignments({
            KTP("placed", 0): [0],
            KTP("placed", 1): [1],
        })
        assert got[KTP("placed", 0)] is None
        assert got[KTP("placed", 1)] is InvalidReplicationAssignmentError
        got = a.alter_partition_reassignments({KTP("placed", 0): None})
        assert got[KTP("placed", 0)] is NoReassignmentInProgressError
        assert a.list_partition_reassignments() == {}
    finally:
        a.close()


def test_describe_topic_partitions_pages_with_a_cursor(broker):
    """KIP-966 through kafka-python: pages of at most the limit, in topic
    name order, each with the cursor of the next."""
    creator = AdminClient({"bootstrap.servers": broker.addr})
    for name, n in [("pages-b", 3), ("pages-a", 4)]:
        creator.create_topics([NewTopic(name, n, 1)])[name].result(10)
    a = KafkaAdminClient(bootstrap_servers=broker.addr)
    try:
        seen = []
        cursor = None
        pages = 0
        while True:
            r = a.describe_topic_partitions(["pages-b", "pages-a", "pages-none"],
                                            response_partition_limit=3, cursor=cursor)
            pages += 1
            for t in r["topics"]:
                if t["name"] == "pages-none":
                    assert t["error_code"] == 3 and not t["partitions"]
                    continue
                assert t["error_code"] == 0 and t["topic_id"] is not None
                for p in t["partitions"]:
                    assert (p["leader_id"], p["replica_nodes"], p["isr_nodes"]) == (0, [0], [0])
                    seen.append((t["name"], p["partition_index"]))
            assert sum(len(t["partitions"]) for t in r["topics"]) <= 3
            cursor = r["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert seen == [("pages-a", p) for p in range(4)] + [("pages-b", p) for p in range(3)]
    finally:
        a.close()


def test_replicas_stay_in_the_one_log_directory(broker):
    import kafka.errors as Errors
    creator = AdminClient({"bootstrap.servers": broker.addr})
    creator.create_topics([NewTopic("dirs-moved", 1, 1)])["dirs-moved"].result(10)
    a = KafkaAdminClient(bootstrap_servers=broker.addr)
    try:
        here = os.path.realpath(os.path.join(broker.dir.name, "data"))
        got = a.alter_replica_log_dirs({("dirs-moved", 0, 0): here})
        assert list(got.values()) == [Errors.NoError]
        got = a.alter_replica_log_dirs({("dirs-moved", 0, 0): "/somewhere/else"})
        assert list(got.values()) == [Errors.LogDirNotFoundError]
    finally:
        a.close()


def test_authorized_operations_are_every_operation_when_asked_for(broker):
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AclOperation
    a = AdminClient({"bootstrap.servers": broker.addr})
    a.create_topics([NewTopic("ops", 1, 1)])["ops"].result(10)

    topic = a.describe_topics(TopicCollection(["ops"]), include_authorized_operations=True)["ops"].result(10)
    assert set(topic.authorized_operations) == {
        AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE,
        AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS}
    plain = a.describe_topics(TopicCollection(["ops"]))["ops"].result(10)
    assert not plain.authorized_operations

    cluster = a.describe_cluster(include_authorized_operations=True).result(10)
    assert set(cluster.authorized_operations) == {
        AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE,
        AclOperation.CLUSTER_ACTION, AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS,
        AclOperation.IDEMPOTENT_WRITE}

    member = Consumer({"bootstrap.servers": broker.addr, "group.id": "ops-group",
                       "session.timeout.ms": 10000})
    member.subscribe(["ops"])
    deadline = time.time() + 20
    while time.time() < deadline and not member.assignment():
        member.poll(0.2)
    group = a.describe_consumer_groups(["ops-group"], include_authorized_operations=True)["ops-group"].result(10)
    assert set(group.authorized_operations) == {
        AclOperation.READ, AclOperation.DELETE, AclOperation.DESCRIBE}
    member.close()
