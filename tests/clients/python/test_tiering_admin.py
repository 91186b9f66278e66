"""Changing the hot tier's retention at run time with confluent-kafka's
AdminClient: IncrementalAlterConfigs on local.retention.ms takes effect at
the next retention pass, and DescribeConfigs shows it as a topic config."""

import os
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from conftest import fill_tiered_topic


def local_segments(broker, topic):
    d = os.path.join(broker.dir.name, "data", f"{topic}-0")
    return sorted(f for f in os.listdir(d) if f.endswith(".log"))


def test_incremental_alter_configs_changes_local_retention(tiered_broker):
    admin = AdminClient({"bootstrap.servers": tiered_broker.addr})
    topic = "admin-tiered"
    # The hot tier keeps a day of data at first.
    fill_tiered_topic(tiered_broker, topic, 6000, config={"local.retention.ms": "86400000"})
    time.sleep(2)
    before = local_segments(tiered_broker, topic)
    assert len(before) > 5, before

    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("local.retention.ms", "0", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(10)

    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
    entries = list(described.values())[0].result(10)
    assert entries["local.retention.ms"].value == "0"
    assert entries["local.retention.ms"].source == 1  # DYNAMIC_TOPIC_CONFIG

    deadline = time.time() + 30
    while len(local_segments(tiered_broker, topic)) > 2 and time.time() < deadline:
        time.sleep(0.2)
    assert len(local_segments(tiered_broker, topic)) <= 2, "the hot tier shrank after the change"

    # Every record is still there, read back through the cold tier.
    consumer = Consumer({"bootstrap.servers": tiered_broker.addr, "group.id": "t", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    seen = 0
    while seen < 6000:
        msg = consumer.poll(10)
        assert msg is not None and msg.error() is None
        assert msg.offset() == seen and msg.key() == str(seen).encode()
        seen += 1
    consumer.close()

    # Kafka's validation: the hot tier may not keep more than the total.
    bad = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("local.retention.ms", "5000", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(Exception) as e:
        admin.incremental_alter_configs([bad])[bad].result(10)
    assert "INVALID_CONFIG" in str(e.value) or "local.retention.ms" in str(e.value)
