"""Compacted topics with confluent-kafka against the real binary: after the
cleaner runs, a reader from offset 0 sees exactly the latest value of every
live key at the offset its producer was given, tombstones only within
delete.retention.ms, keyless records refused, and compact,delete also
expiring by time."""

import os
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker

KEYS = 40
UPDATES = 1500


@pytest.fixture
def cleaning_broker():
    b = Broker("--set", "log.cleaner.backoff.ms=100", "--set", "log.retention.check.interval.ms=200")
    yield b
    b.stop()


def create(addr, topic, **config):
    conf = {"cleanup.policy": "compact", "segment.bytes": "16384", "min.cleanable.dirty.ratio": "0.01"}
    conf.update({k.replace("_", "."): str(v) for k, v in config.items()})
    admin = AdminClient({"bootstrap.servers": addr})
    admin.create_topics([NewTopic(topic, 1, 1, config=conf)])[topic].result(10)


def produce(addr, topic, records, codec="none"):
    """Sends (key, value) pairs in order; returns the offset each was given."""
    acked = [None] * len(records)
    errors = []

    def report(i):
        def cb(err, msg):
            if err is not None:
                errors.append(err)
            else:
                acked[i] = msg.offset()
        return cb

    p = Producer({"bootstrap.servers": addr, "compression.type": codec, "linger.ms": 5,
                  "enable.idempotence": True})
    for i, (k, v) in enumerate(records):
        p.produce(topic, key=k, value=v, partition=0, on_delivery=report(i))
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    assert not errors, errors[:3]
    return acked


def read_all(addr, topic):
    c = Consumer({"bootstrap.servers": addr, "group.id": "reader", "enable.auto.commit": False,
                  "check.crcs": True})
    end = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.time() + 30
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            out.append((m.offset(), m.key(), m.value()))
            if m.offset() == end - 1:
                break
    c.close()
    return out


def metric(broker, name, topic):
    text = urllib.request.urlopen(f"http://{broker.metrics_addr}/metrics", timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and f'topic="{topic}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_for_passes(broker, topic, passes, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if metric(broker, "strata_cleaner_passes_total", topic) >= passes:
            return
        time.sleep(0.2)
    raise AssertionError(f"the cleaner did not pass over {topic} {passes} times")


def updates():
    """UPDATES records over KEYS keys; the last one of every fifth key is a
    tombstone."""
    records = []
    for i in range(UPDATES):
        k = i % KEYS
        last_round = i >= UPDATES - KEYS
        # Random bytes, so that compressed batches still fill segments.
        value = None if (last_round and k % 5 == 0) else f"v{i}-".encode() + os.urandom(60)
        records.append((f"key-{k}".encode(), value))
    return records


def filler(n, start=0):
    # Unique keys after the updates, so that the updates end up in sealed
    # segments, which are the ones the cleaner cleans.
    return [(f"filler-{start + i}".encode(), os.urandom(100)) for i in range(n)]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_the_latest_value_of_every_key_at_its_original_offset(cleaning_broker, codec):
    b = cleaning_broker
    topic = f"compacted-{codec}"
    create(b.addr, topic, delete_retention_ms=600000)
    records = updates()
    acked = produce(b.addr, topic, records, codec)
    produce(b.addr, topic, filler(400), codec)
    latest = {}
    for (k, v), off in zip(records, acked):
        latest[k] = (off, v)
    wait_for_passes(b, topic, 1)

    got = read_all(b.addr, topic)
    offsets = [o for o, _, _ in got]
    assert offsets == sorted(set(offsets)), "offsets increase, none twice"
    mine = [(o, k, v) for o, k, v in got if k.startswith(b"key-")]
    # Exactly the latest record of every key, tombstones included (within
    # delete.retention.ms), each at the offset its producer was given.
    assert sorted((k, (o, v)) for o, k, v in mine) == sorted(latest.items())
    assert len(got) < UPDATES / 2
    assert metric(b, "strata_cleaner_records_removed_total", topic) > UPDATES / 2


def test_tombstones_go_after_delete_retention_and_keyless_records_are_refused(cleaning_broker):
    b = cleaning_broker
    topic = "compacted-tombstones"
    create(b.addr, topic, delete_retention_ms=0)
    records = updates()
    produce(b.addr, topic, records)
    produce(b.addr, topic, filler(400))
    wait_for_passes(b, topic, 1)
    # A later pass (more dirty data) finds the tombstones past their
    # horizon and removes them.
    passes = metric(b, "strata_cleaner_passes_total", topic)
    produce(b.addr, topic, filler(400, start=400))
    wait_for_passes(b, topic, passes + 1)
    got = read_all(b.addr, topic)
    keys = {k for _, k, _ in got}
    for k in range(KEYS):
        assert (f"key-{k}".encode() in keys) == (k % 5 != 0), k
    assert all(v is not None for _, _, v in got)

    # A record without a key: INVALID_RECORD (librdkafka does not show the
    # broker's message, "Compacted topic cannot accept message without key
    # in topic partition ...").
    p = Producer({"bootstrap.servers": b.addr, "retries": 0})
    errors = []
    p.produce(topic, value=b"no key", partition=0, on_delivery=lambda err, msg: errors.append(err))
    p.flush(10)
    assert errors and errors[0].code() == KafkaError.INVALID_RECORD, errors


def test_compact_delete_also_expires_by_time(cleaning_broker):
    b = cleaning_broker
    topic = "compact-delete"
    create(b.addr, topic, cleanup_policy="compact,delete", retention_ms=60000)
    # Records from two hours ago: past retention.ms as soon as their
    # segments are sealed.
    old = int(time.time() * 1000) - 2 * 3600 * 1000
    p = Producer({"bootstrap.servers": b.addr, "linger.ms": 5})
    for i in range(600):
        p.produce(topic, key=f"k{i}".encode(), value=b"v" * 100, partition=0, timestamp=old)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": b.addr, "group.id": "x"})
    deadline = time.time() + 20
    low = 0
    while time.time() < deadline and low == 0:
        low = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)[0]
        time.sleep(0.2)
    c.close()
    assert low > 0, "time retention moved the log start"


def test_a_compacted_topic_stays_local_and_refuses_the_cold_tier(cleaning_broker):
    b = cleaning_broker
    admin = AdminClient({"bootstrap.servers": b.addr})
    create(b.addr, "local-compacted")
    from confluent_kafka.admin import ConfigResource
    desc = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "local-compacted")])
    entries = list(desc.values())[0].result(10)
    assert entries["remote.storage.enable"].value == "false"
    with pytest.raises(KafkaException) as e:
        admin.create_topics([NewTopic("tiered-compacted", 1, 1, config={
            "cleanup.policy": "compact", "remote.storage.enable": "true"})])["tiered-compacted"].result(10)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert "compacted" in e.value.args[0].str()
    # A tiered topic cannot become compacted either.
    admin.create_topics([NewTopic("tiered", 1, 1)])["tiered"].result(10)
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
    res = ConfigResource(ConfigResource.Type.TOPIC, "tiered", incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as e:
        list(admin.incremental_alter_configs([res]).values())[0].result(10)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
