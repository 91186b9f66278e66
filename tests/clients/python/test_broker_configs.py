"""The broker's dynamic configs, as `kafka-configs --entity-type brokers`
changes them, through confluent-kafka's AdminClient: this broker's resource
(its id), sources and synonyms in DescribeConfigs, topics following the new
defaults at once, persistence across a crash, and Kafka's error codes for
what may not be changed. librdkafka (like kafka-python and KafkaJS) refuses
the cluster-wide default resource (an empty name), so `tests/tests/cli.rs`
drives that one with raw requests."""

import os
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewTopic, ResourceType)

SET, DELETE = AlterConfigOpType.SET, AlterConfigOpType.DELETE


def alter(admin, name, *ops, validate_only=False):
    resource = ConfigResource(ResourceType.BROKER, name, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=op) for key, value, op in ops])
    return admin.incremental_alter_configs([resource], validate_only=validate_only)[resource].result(10)


def describe(admin, resource_type, name):
    resource = ConfigResource(resource_type, name)
    return admin.describe_configs([resource])[resource].result(10)


def synonym_names(entry):
    """confluent-kafka keeps one synonym per name (a dict), so the full list
    with a key's several layers is checked with raw requests in cli.rs."""
    return set(entry.synonyms)


def segment_files(broker, topic):
    d = os.path.join(broker.dir.name, "data", f"{topic}-0")
    return [f for f in os.listdir(d) if f.endswith(".log")]


def test_dynamic_broker_defaults_apply_to_topics_and_persist(broker):
    admin = AdminClient({"bootstrap.servers": broker.addr})
    created = admin.create_topics(
        [NewTopic("follows", 1, 1), NewTopic("own", 1, 1, config={"retention.ms": "5000000"})])
    for f in created.values():
        f.result(10)

    alter(admin, "0", ("log.retention.ms", "3600000", SET), ("log.segment.bytes", "200000", SET))

    topic = describe(admin, ResourceType.TOPIC, "follows")
    retention = topic["retention.ms"]
    assert retention.value == "3600000"
    assert ConfigSource(retention.source) == ConfigSource.DYNAMIC_BROKER_CONFIG
    assert synonym_names(retention) == {"log.retention.ms"}
    segment = topic["segment.bytes"]
    assert (segment.value, ConfigSource(segment.source)) == (
        "200000", ConfigSource.DYNAMIC_BROKER_CONFIG)
    # A topic's own value wins, with the broker's values behind it.
    own = describe(admin, ResourceType.TOPIC, "own")["retention.ms"]
    assert (own.value, ConfigSource(own.source)) == ("5000000", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert synonym_names(own) == {"retention.ms", "log.retention.ms"}

    # The broker resource shows the value in force, where it comes from, and
    # that it can be changed; the default resource shows what is set on it.
    this = describe(admin, ResourceType.BROKER, "0")
    assert (this["log.retention.ms"].value, ConfigSource(this["log.retention.ms"].source)) == (
        "3600000", ConfigSource.DYNAMIC_BROKER_CONFIG)
    assert not this["log.retention.ms"].is_read_only
    assert this["num.partitions"].is_read_only
    assert ConfigSource(this["num.partitions"].source) == ConfigSource.DEFAULT_CONFIG

    # The existing topic rolls at the new default segment size at once.
    producer = Producer({"bootstrap.servers": broker.addr, "linger.ms": 5, "batch.size": 16384})
    for i in range(3000):
        producer.produce("follows", value=b"x" * 200, partition=0)
    assert producer.flush(30) == 0
    assert len(segment_files(broker, "follows")) >= 3

    # Kept across a crash.
    broker.kill_and_restart()
    admin = AdminClient({"bootstrap.servers": broker.addr})
    again = describe(admin, ResourceType.TOPIC, "follows")
    assert (again["retention.ms"].value, ConfigSource(again["retention.ms"].source)) == (
        "3600000", ConfigSource.DYNAMIC_BROKER_CONFIG)
    assert again["segment.bytes"].value == "200000"

    # Deleting the dynamic value uncovers the one set at start-up, or the
    # default.
    alter(admin, "0", ("log.retention.ms", None, DELETE))
    after = describe(admin, ResourceType.TOPIC, "follows")["retention.ms"]
    assert (after.value, ConfigSource(after.source)) == ("-1", ConfigSource.DEFAULT_CONFIG)


def refusal(admin, name, *ops):
    with pytest.raises(KafkaException) as e:
        alter(admin, name, *ops)
    return e.value.args[0]


def test_what_may_not_change_is_refused_with_kafkas_codes(broker):
    admin = AdminClient({"bootstrap.servers": broker.addr})
    # A static broker config.
    err = refusal(admin, "0", ("num.partitions", "3", SET))
    assert err.code() == KafkaError.INVALID_REQUEST
    assert "Cannot update these configs dynamically" in err.str() and "num.partitions" in err.str()
    # A bad value, an unknown key, a topic key on the broker.
    err = refusal(admin, "0", ("log.segment.bytes", "lots", SET))
    assert err.code() == KafkaError.INVALID_REQUEST and "log.segment.bytes" in err.str()
    err = refusal(admin, "0", ("log.segment.bytes", "3", SET))
    assert err.code() == KafkaError.INVALID_REQUEST and "at least" in err.str()
    err = refusal(admin, "0", ("no.such.config", "1", SET))
    assert err.code() == KafkaError.INVALID_REQUEST and "no.such.config" in err.str()
    err = refusal(admin, "0", ("retention.ms", "1", SET))
    assert err.code() == KafkaError.INVALID_REQUEST and "log.retention.ms" in err.str()
    # validate_only checks without changing anything.
    alter(admin, "0", ("log.retention.ms", "1000", SET), validate_only=True)
    assert ConfigSource(describe(admin, ResourceType.BROKER, "0")["log.retention.ms"].source) == \
        ConfigSource.DEFAULT_CONFIG
    # Nothing refused was kept.
    assert ConfigSource(describe(admin, ResourceType.BROKER, "0")["log.segment.bytes"].source) == \
        ConfigSource.DEFAULT_CONFIG

    # Topic configs: a bad value and an unknown key are INVALID_CONFIG.
    admin.create_topics([NewTopic("t", 1, 1)])["t"].result(10)
    for key, value in [("retention.ms", "soon"), ("segment.bytes", "1"), ("no.such.config", "1"),
                       ("message.timestamp.type", "Whenever")]:
        resource = ConfigResource(ResourceType.TOPIC, "t", incremental_configs=[
            ConfigEntry(key, value, incremental_operation=SET)])
        with pytest.raises(KafkaException) as e:
            admin.incremental_alter_configs([resource])[resource].result(10)
        assert e.value.args[0].code() == KafkaError.INVALID_CONFIG, (key, e.value)
    # An unknown topic.
    resource = ConfigResource(ResourceType.TOPIC, "nope", incremental_configs=[
        ConfigEntry("retention.ms", "1", incremental_operation=SET)])
    with pytest.raises(KafkaException) as e:
        admin.incremental_alter_configs([resource])[resource].result(10)
    assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_legacy_alter_configs_replaces_the_brokers_dynamic_set(broker):
    admin = AdminClient({"bootstrap.servers": broker.addr})
    alter(admin, "0", ("log.retention.ms", "3600000", SET), ("log.roll.ms", "600000", SET))
    # AlterConfigs (not incremental) replaces everything set on the resource.
    resource = ConfigResource(ResourceType.BROKER, "0", set_config={"log.segment.bytes": "300000"})
    admin.alter_configs([resource])[resource].result(10)
    this = describe(admin, ResourceType.BROKER, "0")
    dynamic = {k for k, e in this.items() if ConfigSource(e.source) == ConfigSource.DYNAMIC_BROKER_CONFIG}
    assert dynamic == {"log.segment.bytes"}
    bad = ConfigResource(ResourceType.BROKER, "0", set_config={"log.cleanup.policy": "compact"})
    with pytest.raises(KafkaException) as e:
        admin.alter_configs([bad])[bad].result(10)
    assert e.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert describe(admin, ResourceType.BROKER, "0")["log.segment.bytes"].value == "300000"
