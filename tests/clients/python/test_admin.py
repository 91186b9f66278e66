"""Admin APIs with confluent-kafka's AdminClient, as operators use them."""

import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient

from conftest import Broker


@pytest.fixture
def tiered_broker():
    b = Broker("--set", "log.segment.bytes=65536", "--set", "remote.log.manager.task.interval.ms=200",
               "--set", "log.retention.check.interval.ms=200")
    yield b
    b.stop()


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
    admin = AdminClient({"bootstrap.servers": tiered_broker.addr})
    topic = "dirs"
    admin.create_topics([NewTopic(topic, 2, 1, config={"local.retention.bytes": "1"})])[topic].result(10)
    # Small batches, so that the 64 KiB segments roll.
    producer = Producer({"bootstrap.servers": tiered_broker.addr, "linger.ms": 5, "batch.size": 16384})
    for i in range(4000):
        producer.produce(topic, value=b"x" * 200, partition=0)
    assert producer.flush(30) == 0

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
