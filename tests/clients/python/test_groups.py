"""Consumer groups with real clients: assignments, leaving and taking over,
and committed offsets that survive a broker crash."""

import asyncio
import threading
import time

import pytest

from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka.errors import InvalidSessionTimeoutError

from conftest import Broker, poll_records

PARTITIONS = 6


def create_and_fill(addr, topic, per_partition):
    admin = AdminClient({"bootstrap.servers": addr})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(10)
    producer = Producer({"bootstrap.servers": addr, "linger.ms": 5})
    for p in range(PARTITIONS):
        for i in range(per_partition):
            producer.produce(topic, key=f"{p}-{i}".encode(), value=f"{p}-{i}".encode(), partition=p)
    assert producer.flush(30) == 0


def consumer(addr, group, **extra):
    conf = {"bootstrap.servers": addr, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 10000, "heartbeat.interval.ms": 500}
    conf.update(extra)
    return Consumer(conf)


def poll_all(consumers, seconds):
    """Polls each consumer in turn; returns the messages each got."""
    got = {id(c): [] for c in consumers}
    deadline = time.time() + seconds
    while time.time() < deadline:
        for c in consumers:
            m = c.poll(0.05)
            if m is not None and m.error() is None:
                got[id(c)].append(m)
    return got


def assigned(c):
    return {tp.partition for tp in c.assignment()}


def test_three_confluent_consumers_share_and_take_over(broker):
    topic = "grp-topic"
    create_and_fill(broker.addr, topic, 50)
    consumers = [consumer(broker.addr, "g3") for _ in range(3)]
    for c in consumers:
        c.subscribe([topic])
    deadline = time.time() + 30
    while time.time() < deadline and not all(assigned(c) for c in consumers):
        poll_all(consumers, 0.5)
    parts = [assigned(c) for c in consumers]
    assert all(parts), parts
    assert set().union(*parts) == set(range(PARTITIONS)), parts
    assert sum(len(p) for p in parts) == PARTITIONS, f"assignments overlap: {parts}"

    # One leaves; the other two take over its partitions.
    consumers[2].close()
    rest = consumers[:2]
    deadline = time.time() + 30
    while time.time() < deadline and set().union(*[assigned(c) for c in rest]) != set(range(PARTITIONS)):
        poll_all(rest, 0.5)
    parts = [assigned(c) for c in rest]
    assert set().union(*parts) == set(range(PARTITIONS)) and not (parts[0] & parts[1]), parts
    for c in rest:
        c.close()


def test_commits_survive_a_broker_crash(broker):
    topic = "commit-topic"
    create_and_fill(broker.addr, topic, 20)
    c = consumer(broker.addr, "durable")
    c.subscribe([topic])
    seen = 0
    deadline = time.time() + 30
    while seen < 60 and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            seen += 1
    c.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], 10)}
    c.close()
    assert sum(max(o, 0) for o in committed.values()) == 60

    broker.kill_and_restart()

    c = consumer(broker.addr, "durable")
    after = {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], 10)}
    assert after == committed
    c.subscribe([topic])
    rest = poll_records(c, 60)
    c.close()
    # The group resumed exactly at the committed offsets: the remaining
    # 60 records, none of the first 60 again.
    assert len(rest) == 60
    for m in rest:
        assert m.offset() >= max(committed[m.partition()], 0)


def test_kafka_python_group_resumes_at_commits(broker):
    topic = "kp-group"
    create_and_fill(broker.addr, topic, 10)
    first = KafkaConsumer(topic, bootstrap_servers=broker.addr, group_id="kp", enable_auto_commit=False,
                          auto_offset_reset="earliest", consumer_timeout_ms=15000)
    got = []
    for m in first:
        got.append(m)
        if len(got) == 30:
            break
    first.commit()
    first.close()
    second = KafkaConsumer(topic, bootstrap_servers=broker.addr, group_id="kp", enable_auto_commit=False,
                           auto_offset_reset="earliest", consumer_timeout_ms=8000)
    rest = list(second)
    second.close()
    assert len(got) + len(rest) == 60
    assert not ({(m.partition, m.offset) for m in got} & {(m.partition, m.offset) for m in rest})


def test_aiokafka_group_resumes_at_commits(broker):
    topic = "aio-group"
    create_and_fill(broker.addr, topic, 10)

    async def run():
        c = AIOKafkaConsumer(topic, bootstrap_servers=broker.addr, group_id="aio", enable_auto_commit=False,
                             auto_offset_reset="earliest")
        await c.start()
        got = []
        try:
            while len(got) < 30:
                for records in (await c.getmany(timeout_ms=1000, max_records=30 - len(got))).values():
                    got.extend(records)
            await c.commit()
        finally:
            await c.stop()
        c = AIOKafkaConsumer(topic, bootstrap_servers=broker.addr, group_id="aio", enable_auto_commit=False,
                             auto_offset_reset="earliest")
        await c.start()
        rest = []
        try:
            deadline = time.time() + 20
            while len(rest) < 30 and time.time() < deadline:
                for records in (await c.getmany(timeout_ms=1000)).values():
                    rest.extend(records)
        finally:
            await c.stop()
        return got, rest

    got, rest = asyncio.run(run())
    assert len(got) == 30 and len(rest) == 30
    assert not ({(m.partition, m.offset) for m in got} & {(m.partition, m.offset) for m in rest})


class KafkaPythonMember:
    """One kafka-python consumer polling in its own thread, as applications run it.

    kafka-python 3.0 keeps its JoinGroup/SyncGroup round trip as a task that a
    poll awaits; if the task completes while no poll is waiting for it, the next
    poll discards the result and joins again. Several consumers polled in turn
    from one thread hit that constantly (a leader's rejoin starts a new
    rebalance, in Kafka as here), so each member gets a thread that is always
    inside poll().
    """

    def __init__(self, addr, topic, group):
        self.consumer = KafkaConsumer(topic, bootstrap_servers=addr, group_id=group, enable_auto_commit=False,
                                      auto_offset_reset="earliest", session_timeout_ms=10000,
                                      heartbeat_interval_ms=500)
        self.assignment = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            self.consumer.poll(timeout_ms=500)
            self.assignment = {tp.partition for tp in self.consumer.assignment()}
        self.consumer.close()

    def close(self):
        self.stop.set()
        self.thread.join(30)


def wait_for_balanced(members, seconds):
    deadline = time.time() + seconds
    while True:
        parts = [m.assignment for m in members]
        balanced = all(parts) and set().union(*parts) == set(range(PARTITIONS)) \
            and sum(map(len, parts)) == PARTITIONS
        if balanced or time.time() > deadline:
            return parts
        time.sleep(0.2)


def test_kafka_python_three_consumers_share_and_take_over(broker):
    topic = "kp-three"
    create_and_fill(broker.addr, topic, 5)
    members = [KafkaPythonMember(broker.addr, topic, "kp3") for _ in range(3)]
    try:
        p = wait_for_balanced(members, 40)
        assert all(p) and set().union(*p) == set(range(PARTITIONS)) and sum(map(len, p)) == PARTITIONS, p

        # One leaves; the other two take over its partitions.
        members[2].close()
        p = wait_for_balanced(members[:2], 40)
        assert set().union(*p) == set(range(PARTITIONS)) and sum(map(len, p)) == PARTITIONS, p
    finally:
        for m in members:
            m.close()


def test_aiokafka_three_consumers_share_and_take_over(broker):
    topic = "aio-three"
    create_and_fill(broker.addr, topic, 5)

    async def run():
        consumers = [AIOKafkaConsumer(topic, bootstrap_servers=broker.addr, group_id="aio3", enable_auto_commit=False,
                                      auto_offset_reset="earliest", session_timeout_ms=10000,
                                      heartbeat_interval_ms=500) for _ in range(3)]
        await asyncio.gather(*(c.start() for c in consumers))

        def parts(cs):
            return [{tp.partition for tp in c.assignment()} for c in cs]

        async def settle(cs):
            deadline = time.time() + 40
            while time.time() < deadline:
                await asyncio.gather(*(c.getmany(timeout_ms=100) for c in cs))
                p = parts(cs)
                if all(p) and set().union(*p) == set(range(PARTITIONS)) and sum(map(len, p)) == PARTITIONS:
                    return p
            return parts(cs)

        first = await settle(consumers)
        await consumers[2].stop()
        second = await settle(consumers[:2])
        await asyncio.gather(*(c.stop() for c in consumers[:2]))
        return first, second

    first, second = asyncio.run(run())
    for p in (first, second):
        assert all(p) and set().union(*p) == set(range(PARTITIONS)) and sum(map(len, p)) == PARTITIONS, p
    assert len(first) == 3 and len(second) == 2


def test_session_timeout_bounds_follow_the_broker_configs():
    """group.min.session.timeout.ms: kafka-python with a 3 s session joins a
    broker configured to allow it, and gets INVALID_SESSION_TIMEOUT from one
    at Kafka's default minimum of 6 s."""
    def join(addr, group):
        return KafkaConsumer("short", bootstrap_servers=addr, group_id=group,
                             session_timeout_ms=3000, heartbeat_interval_ms=1000,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=20000)

    allowing = Broker("--set", "group.min.session.timeout.ms=3000")
    try:
        create_and_fill(allowing.addr, "short", 5)
        c = join(allowing.addr, "short-session")
        got = []
        for m in c:
            got.append(m)
            if len(got) == 5 * PARTITIONS:
                break
        assert len(got) == 5 * PARTITIONS
        c.close()
    finally:
        allowing.stop()

    default = Broker()
    try:
        create_and_fill(default.addr, "short", 1)
        c = join(default.addr, "short-session")
        with pytest.raises(InvalidSessionTimeoutError):
            c.poll(timeout_ms=10000)
        c.close()
    finally:
        default.stop()
