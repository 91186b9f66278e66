"""Kafka's topic configs through confluent-kafka's AdminClient: created,
described and altered (list configs with APPEND and SUBTRACT) as a Kafka
4.x broker takes them, and the ones a single node gives effect to:
timestamp bounds and min.insync.replicas."""

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewTopic)

# A topic config of every kind Kafka 4.x defines, as copied from a cluster.
FULL_RANGE = {
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "compression.gzip.level": "6",
    "compression.lz4.level": "9",
    "compression.zstd.level": "5",
    "delete.retention.ms": "86400000",
    "file.delete.delay.ms": "60000",
    "flush.messages": "10000",
    "flush.ms": "1000",
    "follower.replication.throttled.replicas": "",
    "index.interval.bytes": "4096",
    "leader.replication.throttled.replicas": "0:0",
    "local.retention.bytes": "-2",
    "local.retention.ms": "-2",
    "max.compaction.lag.ms": "9223372036854775807",
    "max.message.bytes": "1048588",
    "message.timestamp.after.max.ms": "3600000",
    "message.timestamp.before.max.ms": "9223372036854775807",
    "message.timestamp.type": "CreateTime",
    "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": "0",
    "min.insync.replicas": "1",
    "preallocate": "false",
    "remote.log.copy.disable": "false",
    "remote.log.delete.on.disable": "false",
    "remote.storage.enable": "true",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
    "segment.index.bytes": "10485760",
    "segment.jitter.ms": "0",
    "segment.ms": "604800000",
    "unclean.leader.election.enable": "false",
}


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.addr})


def create(a, topic, config):
    a.create_topics([NewTopic(topic, 1, 1, config=config)])[topic].result(10)


def described(a, topic):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return a.describe_configs([res])[res].result(10)


def refused_code(future):
    with pytest.raises(KafkaException) as e:
        future.result(10)
    return e.value.args[0].code()


def test_every_kafka_topic_config_is_accepted_and_described(broker):
    a = admin(broker)
    create(a, "full", FULL_RANGE)
    got = described(a, "full")
    for key, value in FULL_RANGE.items():
        assert got[key].value == value, key
        assert got[key].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, key
    # Kafka's defaults where nothing is set.
    create(a, "plain", {})
    plain = described(a, "plain")
    assert plain["compression.type"].value == "producer"
    assert plain["min.insync.replicas"].value == "1"
    assert plain["message.timestamp.after.max.ms"].value == "3600000"
    assert plain["min.cleanable.dirty.ratio"].value == "0.5"


@pytest.mark.parametrize("key,value", [
    ("compression.zstd.level", "50"),
    ("compression.gzip.level", "0"),
    ("min.cleanable.dirty.ratio", "1.5"),
    ("leader.replication.throttled.replicas", "zero:one"),
    ("min.insync.replicas", "0"),
    ("message.timestamp.after.max.ms", "-1"),
    ("cleanup.policy", "delete,nonsense"),
    ("retention.msec", "1000"),
])
def test_bad_topic_configs_are_invalid_config(broker, key, value):
    a = admin(broker)
    topic = "bad-" + key.replace(".", "-")
    code = refused_code(a.create_topics([NewTopic(topic, 1, 1, config={key: value})])[topic])
    assert code == KafkaError.INVALID_CONFIG, (key, value)


def test_list_configs_take_append_and_subtract(broker):
    a = admin(broker)
    create(a, "lists", {"leader.replication.throttled.replicas": "0:0"})
    res = ConfigResource(ConfigResource.Type.TOPIC, "lists", incremental_configs=[
        ConfigEntry("leader.replication.throttled.replicas", "1:0",
                    incremental_operation=AlterConfigOpType.APPEND)])
    a.incremental_alter_configs([res])[res].result(10)
    assert described(a, "lists")["leader.replication.throttled.replicas"].value == "0:0,1:0"
    # Appending what is there already changes nothing.
    a.incremental_alter_configs([res])[res].result(10)
    assert described(a, "lists")["leader.replication.throttled.replicas"].value == "0:0,1:0"
    res = ConfigResource(ConfigResource.Type.TOPIC, "lists", incremental_configs=[
        ConfigEntry("leader.replication.throttled.replicas", "0:0",
                    incremental_operation=AlterConfigOpType.SUBTRACT)])
    a.incremental_alter_configs([res])[res].result(10)
    assert described(a, "lists")["leader.replication.throttled.replicas"].value == "1:0"
    # cleanup.policy is a list too: APPEND of what it holds is accepted.
    res = ConfigResource(ConfigResource.Type.TOPIC, "lists", incremental_configs=[
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.APPEND)])
    a.incremental_alter_configs([res])[res].result(10)
    assert described(a, "lists")["cleanup.policy"].value == "delete"
    # APPEND to a config that is not a list is INVALID_CONFIG.
    res = ConfigResource(ConfigResource.Type.TOPIC, "lists", incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.APPEND)])
    assert refused_code(a.incremental_alter_configs([res])[res]) == KafkaError.INVALID_CONFIG


def produce_one(broker, topic, timestamp_ms, acks="all"):
    """Produces one record; returns the delivery error code or None."""
    p = Producer({"bootstrap.servers": broker.addr, "acks": acks, "retries": 0,
                  "message.timeout.ms": 5000})
    result = {}
    p.produce(topic, value=b"v", timestamp=timestamp_ms,
              on_delivery=lambda err, msg: result.setdefault("err", err))
    p.flush(10)
    err = result["err"]
    return None if err is None else err.code()


def test_timestamps_outside_the_topic_bounds_are_invalid_timestamp(broker):
    a = admin(broker)
    create(a, "bounded", {"message.timestamp.before.max.ms": "3600000",
                          "message.timestamp.after.max.ms": "60000"})
    now = int(time.time() * 1000)
    assert produce_one(broker, "bounded", now) is None
    assert produce_one(broker, "bounded", now - 7_200_000) == KafkaError.INVALID_TIMESTAMP
    assert produce_one(broker, "bounded", now + 600_000) == KafkaError.INVALID_TIMESTAMP
    # Kafka 4's default keeps records at most an hour ahead of the broker.
    create(a, "default-bounds", {})
    assert produce_one(broker, "default-bounds", now - 30 * 86_400_000) is None
    assert produce_one(broker, "default-bounds", now + 7_200_000) == KafkaError.INVALID_TIMESTAMP
    # LogAppendTime topics stamp the broker's time instead.
    create(a, "append-time", {"message.timestamp.type": "LogAppendTime",
                              "message.timestamp.after.max.ms": "0"})
    assert produce_one(broker, "append-time", now + 7_200_000) is None


def test_min_insync_replicas_above_one_refuses_acks_all_on_a_single_node(broker):
    a = admin(broker)
    create(a, "isr2", {"min.insync.replicas": "2"})
    now = int(time.time() * 1000)
    assert produce_one(broker, "isr2", now, acks="all") == KafkaError.NOT_ENOUGH_REPLICAS
    assert produce_one(broker, "isr2", now, acks="1") is None


def stored_codecs(broker, topic):
    """The codec of every batch in the topic's partition-0 segments on disk,
    read from each batch header's attributes (FORMAT.md)."""
    import glob
    import os
    import struct
    codecs = []
    for path in sorted(glob.glob(os.path.join(broker.dir.name, "data", f"{topic}-0", "*.log"))):
        data = open(path, "rb").read()
        pos = 0
        while pos + 61 <= len(data):
            length, = struct.unpack(">i", data[pos + 8:pos + 12])
            if length <= 0:
                break
            attributes, = struct.unpack(">h", data[pos + 21:pos + 23])
            codecs.append(attributes & 7)
            pos += 12 + length
    return codecs


CODEC_IDS = {"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.mark.parametrize("topic_codec,producer_codec", [
    ("zstd", "none"), ("zstd", "gzip"), ("gzip", "none"), ("lz4", "zstd"), ("snappy", "lz4"),
    ("uncompressed", "zstd"),
])
def test_the_broker_recompresses_to_the_topics_codec(broker, topic_codec, producer_codec):
    from aiokafka import AIOKafkaConsumer
    from confluent_kafka import Consumer, TopicPartition as CTopicPartition
    from kafka import KafkaConsumer, TopicPartition
    import asyncio

    from records import COUNT, expected, normalize_headers

    topic = f"recompress-{topic_codec}-{producer_codec}"
    admin = AdminClient({"bootstrap.servers": broker.addr})
    admin.create_topics([NewTopic(topic, 1, 1, config={"compression.type": topic_codec})])[topic].result(10)
    # An idempotent producer: the rewritten batches keep its producer id and
    # sequence numbers, or its next batches would be refused.
    producer = Producer({"bootstrap.servers": broker.addr, "compression.type": producer_codec,
                         "enable.idempotence": True, "linger.ms": 20, "batch.num.messages": 15})
    for r in expected():
        producer.produce(topic, key=r["key"], value=r["value"], headers=r["headers"], partition=0,
                         timestamp=r["timestamp"])
    assert producer.flush(30) == 0

    codecs = stored_codecs(broker, topic)
    assert codecs and set(codecs) == {CODEC_IDS[topic_codec]}, codecs

    def check(got):
        assert len(got) == COUNT
        for i, ((offset, key, value, headers, ts), r) in enumerate(zip(got, expected())):
            assert (offset, key, value, ts) == (i, r["key"], r["value"], r["timestamp"])
            assert normalize_headers(headers) == r["headers"]

    # librdkafka, with CRC checks.
    c = Consumer({"bootstrap.servers": broker.addr, "group.id": "rc", "check.crcs": True,
                  "enable.auto.commit": False})
    c.assign([CTopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 20
    while len(got) < COUNT and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.append((m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]))
    c.close()
    check(got)

    # kafka-python, with CRC checks.
    kc = KafkaConsumer(bootstrap_servers=broker.addr, enable_auto_commit=False, group_id=None, check_crcs=True)
    tp = TopicPartition(topic, 0)
    kc.assign([tp])
    kc.seek(tp, 0)
    got = []
    for _ in range(60):
        for records in kc.poll(timeout_ms=300).values():
            got.extend((m.offset, m.key, m.value, m.headers, m.timestamp) for m in records)
        if len(got) >= COUNT:
            break
    kc.close()
    check(got)

    # aiokafka.
    async def read():
        ac = AIOKafkaConsumer(bootstrap_servers=broker.addr, enable_auto_commit=False, check_crcs=True)
        await ac.start()
        try:
            tp = TopicPartition(topic, 0)
            from aiokafka import TopicPartition as ATP
            atp = ATP(topic, 0)
            ac.assign([atp])
            ac.seek(atp, 0)
            out = []
            while len(out) < COUNT:
                batch = await asyncio.wait_for(ac.getmany(timeout_ms=300), 20)
                for records in batch.values():
                    out.extend((m.offset, m.key, m.value, m.headers, m.timestamp) for m in records)
            return out
        finally:
            await ac.stop()
    check(asyncio.run(read()))
