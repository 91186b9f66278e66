"""Transactions against the real binary with confluent-kafka (librdkafka):
commit and abort across partitions, read_committed against
read_uncommitted, fencing by a second instance, the broker's abort of a
transaction past its timeout, consume-transform-produce with offsets in the
transaction, and replay from the cold tier. kafka-python's transactional
producer too."""

import os
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, poll_records

PARTS = 3


def create(addr, topic, partitions=PARTS, config=None):
    admin = AdminClient({"bootstrap.servers": addr})
    admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})])[topic].result(10)


def txn_producer(addr, txn_id, **extra):
    conf = {"bootstrap.servers": addr, "transactional.id": txn_id, "linger.ms": 5}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(20)
    return p


def consumer(addr, isolation, group=None, **extra):
    conf = {"bootstrap.servers": addr, "group.id": group or f"g-{uuid.uuid4()}",
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "isolation.level": isolation}
    conf.update(extra)
    return Consumer(conf)


def values(addr, topic, isolation, expected, seconds=20, partitions=PARTS):
    """Every value a fresh consumer with `isolation` reads, waiting until
    `expected` have come (and a little more, to catch extras)."""
    c = consumer(addr, isolation)
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = [m.value().decode() for m in poll_records(c, expected, seconds)]
    # Anything beyond what is expected would arrive now.
    got += [m.value().decode() for m in poll_records(c, 10**9, 1.5)]
    c.close()
    return got


def test_committed_and_aborted_transactions_across_partitions(broker):
    topic = "txn-basic"
    create(broker.addr, topic)
    p = txn_producer(broker.addr, "basic")
    for round_ in range(6):
        p.begin_transaction()
        for i in range(30):
            p.produce(topic, value=f"{round_}-{i}".encode(), partition=i % PARTS)
        # Sent before the abort, which would otherwise drop them unsent.
        p.flush(10)
        if round_ % 2 == 0:
            p.commit_transaction(20)
        else:
            p.abort_transaction(20)
    committed = {f"{r}-{i}" for r in (0, 2, 4) for i in range(30)}
    everything = {f"{r}-{i}" for r in range(6) for i in range(30)}

    rc = values(broker.addr, topic, "read_committed", len(committed))
    assert sorted(rc) == sorted(committed), "read_committed sees exactly the committed records"
    ru = values(broker.addr, topic, "read_uncommitted", len(everything))
    assert sorted(ru) == sorted(everything), "read_uncommitted sees both, without control records"

    # ListOffsets: latest is the end of the log either way once nothing is open.
    c = consumer(broker.addr, "read_committed")
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    assert hi > 60  # 60 records and 6 markers on partition 0
    c.close()


def test_an_open_transaction_holds_back_read_committed_until_it_commits(broker):
    topic = "txn-open"
    create(broker.addr, topic, partitions=1)
    p = txn_producer(broker.addr, "open")
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, value=f"v{i}".encode(), partition=0)
    p.flush(10)
    plain = Producer({"bootstrap.servers": broker.addr})
    plain.produce(topic, value=b"after", partition=0)
    plain.flush(10)

    rc = consumer(broker.addr, "read_committed")
    rc.assign([TopicPartition(topic, 0, 0)])
    assert poll_records(rc, 1, 3) == [], "nothing past the open transaction's start"
    # The uncommitted reader sees the open transaction's records already.
    assert len(values(broker.addr, topic, "read_uncommitted", 11, partitions=1)) == 11
    p.commit_transaction(20)
    got = [m.value().decode() for m in poll_records(rc, 11, 20)]
    assert got == [f"v{i}" for i in range(10)] + ["after"]
    rc.close()


def test_a_second_instance_fences_the_first(broker):
    topic = "txn-fence"
    create(broker.addr, topic, partitions=1)
    first = txn_producer(broker.addr, "fenced-id")
    first.begin_transaction()
    first.produce(topic, value=b"zombie", partition=0)
    first.flush(10)
    second = txn_producer(broker.addr, "fenced-id")
    second.begin_transaction()
    second.produce(topic, value=b"live", partition=0)
    second.commit_transaction(20)
    with pytest.raises(KafkaException) as e:
        first.produce(topic, value=b"zombie-2", partition=0)
        first.commit_transaction(10)
    assert e.value.args[0].code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                      KafkaError.INVALID_PRODUCER_EPOCH), e.value
    # The zombie's open transaction was aborted when the second started.
    assert values(broker.addr, topic, "read_committed", 1, partitions=1) == ["live"]


def test_a_transaction_past_its_timeout_is_aborted_by_the_broker():
    b = Broker("--set", "transaction.abort.timed.out.transaction.cleanup.interval.ms=200")
    try:
        topic = "txn-timeout"
        create(b.addr, topic, partitions=1)
        p = txn_producer(b.addr, "slow", **{"transaction.timeout.ms": 1500})
        p.begin_transaction()
        for i in range(5):
            p.produce(topic, value=f"late{i}".encode(), partition=0)
        p.flush(10)
        rc = consumer(b.addr, "read_committed")
        rc.assign([TopicPartition(topic, 0, 0)])
        time.sleep(3)
        with pytest.raises(KafkaException):
            p.commit_transaction(10)
        # The abort marker makes the records readable by no committed reader,
        # and the partition is stable again: a later record comes through.
        plain = Producer({"bootstrap.servers": b.addr})
        plain.produce(topic, value=b"next", partition=0)
        plain.flush(10)
        got = [m.value().decode() for m in poll_records(rc, 1, 15)]
        assert got == ["next"]
        rc.close()
        # The records were written, and only the abort hides them.
        ru = values(b.addr, topic, "read_uncommitted", 6, partitions=1)
        assert sorted(ru) == sorted([f"late{i}" for i in range(5)] + ["next"])
    finally:
        b.stop()


def test_consume_transform_produce_commits_offsets_in_the_transaction(broker):
    src, dst = "ctp-in", "ctp-out"
    create(broker.addr, src, partitions=2)
    create(broker.addr, dst, partitions=2)
    plain = Producer({"bootstrap.servers": broker.addr})
    for i in range(100):
        plain.produce(src, value=str(i).encode(), partition=i % 2)
    plain.flush(10)

    def run(limit, commit):
        c = consumer(broker.addr, "read_committed", group="ctp")
        c.subscribe([src])
        p = txn_producer(broker.addr, "ctp-app")
        done = 0
        deadline = time.time() + 30
        while done < limit and time.time() < deadline:
            msgs = c.consume(10, 0.5)
            msgs = [m for m in msgs if m.error() is None]
            if not msgs:
                continue
            p.begin_transaction()
            for m in msgs:
                p.produce(dst, value=(m.value().decode() + "!").encode(), partition=m.partition())
            p.send_offsets_to_transaction(c.position(c.assignment()),
                                          c.consumer_group_metadata(), 10)
            if commit:
                p.commit_transaction(20)
            else:
                p.abort_transaction(20)
                break
            done += len(msgs)
        c.close()
        return done

    # A first run aborts its only transaction: neither output nor offsets stay.
    run(10**9, commit=False)
    assert values(broker.addr, dst, "read_committed", 0, seconds=2, partitions=2) == []
    run(100, commit=True)
    out = values(broker.addr, dst, "read_committed", 100, partitions=2)
    assert sorted(out) == sorted(f"{i}!" for i in range(100))
    c = consumer(broker.addr, "read_committed", group="ctp")
    committed = c.committed([TopicPartition(src, 0), TopicPartition(src, 1)], 10)
    assert sorted(tp.offset for tp in committed) == [50, 50]
    c.close()


def test_read_committed_replay_from_the_cold_tier(tiered_broker):
    b = tiered_broker
    topic = "txn-cold"
    create(b.addr, topic, partitions=1)
    p = txn_producer(b.addr, "cold", **{"batch.size": 16384})
    expected = []
    for round_ in range(40):
        p.begin_transaction()
        for i in range(20):
            v = f"{round_}-{i}-" + "x" * 200
            p.produce(topic, value=v.encode(), partition=0)
            if round_ % 3 != 1:
                expected.append(v)
        p.flush(10)
        if round_ % 3 == 1:
            p.abort_transaction(20)
        else:
            p.commit_transaction(20)
    # Wait until history is in the cold tier and gone from local disk.
    admin = AdminClient({"bootstrap.servers": b.addr})
    from confluent_kafka.admin import ConfigResource, AlterConfigOpType, ConfigEntry
    res = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("local.retention.bytes", "1", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(10)
    # Uploaded segments leave local disk: the first local segment no
    # longer starts at offset 0.
    d = os.path.join(b.dir.name, "data", f"{topic}-0")
    deadline = time.time() + 30
    while time.time() < deadline:
        logs = sorted(f for f in os.listdir(d) if f.endswith(".log"))
        if len(logs) >= 1 and int(logs[0].split(".")[0]) > 0:
            break
        time.sleep(0.3)
    logs = sorted(f for f in os.listdir(d) if f.endswith(".log"))
    assert int(logs[0].split(".")[0]) > 0, f"history left local disk for the cold tier: {logs}"
    # The aborted transactions of uploaded segments went with them.
    remote = [f for _, _, fs in os.walk(os.path.join(b.dir.name, "data", "remote")) for f in fs]
    assert any(f.endswith(".txnindex") for f in remote), remote
    got = values(b.addr, topic, "read_committed", len(expected), seconds=40, partitions=1)
    assert got == expected
    everything = values(b.addr, topic, "read_uncommitted", 800, seconds=40, partitions=1)
    assert len(everything) == 800


def test_kafka_python_transactional_producer(broker):
    from kafka import KafkaProducer
    topic = "txn-kafka-python"
    create(broker.addr, topic, partitions=1)
    p = KafkaProducer(bootstrap_servers=broker.addr, transactional_id="kp-txn")
    p.init_transactions()
    p.begin_transaction()
    p.send(topic, b"kept", partition=0)
    p.commit_transaction()
    p.begin_transaction()
    p.send(topic, b"dropped", partition=0)
    p.flush()
    p.abort_transaction()
    p.close()
    assert values(broker.addr, topic, "read_committed", 1, partitions=1) == ["kept"]
    assert sorted(values(broker.addr, topic, "read_uncommitted", 2, partitions=1)) == ["dropped", "kept"]
