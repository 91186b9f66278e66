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
    bad = ConfigResource(ResourceType.BROKER, "0", set_config={"log.cleanup.policy": "shred"})
    with pytest.raises(KafkaException) as e:
        admin.alter_configs([bad])[bad].result(10)
    assert e.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert describe(admin, ResourceType.BROKER, "0")["log.segment.bytes"].value == "300000"


# A Kafka 4.x server.properties as a KRaft quick start leaves it, and a few
# keys operators often add: copied unchanged, it starts Strata.
KAFKA_SERVER_PROPERTIES = """
# Server basics
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
default.replication.factor=1
min.insync.replicas=1
compression.type=producer
delete.topic.enable=true
message.max.bytes=1048588
log.cleaner.enable=true
log.cleaner.threads=1
log.message.timestamp.type=CreateTime
unclean.leader.election.enable=false
controlled.shutdown.enable=true
replica.lag.time.max.ms=30000
replica.fetch.max.bytes=1048576
num.replica.fetchers=1
background.threads=10
queued.max.requests=500
connections.max.idle.ms=600000
group.min.session.timeout.ms=6000
group.max.session.timeout.ms=1800000
offsets.retention.minutes=10080
transaction.max.timeout.ms=900000
auto.leader.rebalance.enable=true
leader.imbalance.check.interval.seconds=300
metadata.log.dir=/tmp/kraft-metadata
sasl.enabled.mechanisms=GSSAPI
"""


def test_a_kafka_server_properties_starts_and_reports_what_it_ignores(tmp_path):
    from conftest import Broker

    props = tmp_path / "server.properties"
    # The copied listeners replace --listen; port 0 instead of 9092 keeps the
    # test off a fixed port (the advertised port 0 becomes the bound one).
    props.write_text(KAFKA_SERVER_PROPERTIES.replace("PLAINTEXT://:9092", "PLAINTEXT://127.0.0.1:0")
                     .replace("PLAINTEXT://localhost:9092", "PLAINTEXT://localhost:0"))
    keys = [l.split("=", 1)[0] for l in KAFKA_SERVER_PROPERTIES.splitlines()
            if l and not l.startswith("#")]
    assert len(keys) >= 40
    b = Broker("--config", str(props))
    try:
        # Only the PLAINTEXT listener is bound: the controller listener has
        # no quorum to serve, and GSSAPI is named but no SASL listener needs it.
        assert b.proc.stdout.readline().decode().startswith("strata listener PLAINTEXT PLAINTEXT on 127.0.0.1:")
        with open(os.path.join(b.dir.name, "broker.log")) as f:
            assert "a controller listener" in f.read()
        a = AdminClient({"bootstrap.servers": b.addr})
        md = a.list_topics(timeout=10)
        assert [(x.host, x.port) for x in md.brokers.values()] == [("localhost", int(b.addr.rsplit(":", 1)[1]))]
        a.create_topics([NewTopic("copied", 1, 1)])["copied"].result(10)
        got = describe(a, ResourceType.BROKER, "1")
        # Strata's own keys take effect; Kafka's others are reported as set.
        assert got["group.initial.rebalance.delay.ms"].value == "0"
        assert got["num.network.threads"].value == "3"
        assert not got["num.network.threads"].is_read_only, "dynamic in Kafka"
        assert got["log.dirs"].value == "/tmp/kraft-combined-logs"
        assert got["log.dirs"].is_read_only
        # The ignored keys are logged once, at start.
        with open(os.path.join(b.dir.name, "broker.log")) as f:
            lines = [l for l in f if "without effect on a single node" in l]
        assert len(lines) == 1, lines
        for key in ["process.roles", "num.io.threads", "socket.send.buffer.bytes", "controller.quorum.voters"]:
            assert key in lines[0], key
        # A dynamic Kafka key changes at run time as Kafka allows; a static
        # one is refused as Kafka refuses it.
        alter(a, "1", ("sasl.kerberos.kinit.cmd", "/usr/bin/kinit", SET))
        assert describe(a, ResourceType.BROKER, "1")["sasl.kerberos.kinit.cmd"].value == "/usr/bin/kinit"
        with pytest.raises(KafkaException) as e:
            alter(a, "1", ("process.roles", "broker", SET))
        assert e.value.args[0].code() == KafkaError.INVALID_REQUEST
    finally:
        b.stop()


def test_a_typo_in_server_properties_names_the_key_meant(tmp_path):
    import subprocess
    from conftest import strata_bin

    props = tmp_path / "server.properties"
    props.write_text("num.netwrok.threads=3\n")
    out = subprocess.run([strata_bin(), "--config", str(props), "--listen", "127.0.0.1:0",
                          "--data-dir", str(tmp_path / "data")],
                         capture_output=True, timeout=30)
    assert out.returncode != 0
    assert 'did you mean "num.network.threads"?' in out.stderr.decode(), out.stderr


def test_describe_configs_names_the_listeners_clients_connect_to(broker):
    a = AdminClient({"bootstrap.servers": broker.addr})
    got = describe(a, ResourceType.BROKER, "0")
    assert got["listeners"].value == f"PLAINTEXT://{broker.addr}"
    assert got["advertised.listeners"].value == f"PLAINTEXT://{broker.addr}"
    assert got["listeners"].is_read_only and got["advertised.listeners"].is_read_only
