"""KIP-848's consumer group protocol with confluent-kafka
(`group.protocol=consumer`): broker-side assignment, partitions that move
without ever being owned twice, regex subscriptions, commits that survive a
SIGKILL, and a classic group served by the same broker meanwhile."""

import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, poll_records
from test_groups import poll_all

PARTITIONS = 6


def fast_broker():
    # Members are told to heartbeat every 300 ms, so that reconciliation
    # steps follow each other quickly.
    return Broker("--set", "group.consumer.heartbeat.interval.ms=300",
                  "--set", "group.initial.rebalance.delay.ms=0")


def create_and_fill(addr, topic, per_partition, partitions=PARTITIONS):
    admin = AdminClient({"bootstrap.servers": addr})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(10)
    producer = Producer({"bootstrap.servers": addr, "linger.ms": 5})
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, key=f"{p}-{i}".encode(), value=f"{p}-{i}".encode(), partition=p)
    assert producer.flush(30) == 0


class Ledger:
    """Who owns which partition, as the members' own rebalance callbacks
    report it. A partition handed to a member while another still owns it
    is recorded as a violation."""

    def __init__(self):
        self.owner = {}
        self.violations = []

    def member(self, name):
        def on_assign(consumer, partitions):
            for tp in partitions:
                key = (tp.topic, tp.partition)
                other = self.owner.get(key)
                if other is not None and other != name:
                    self.violations.append((key, other, name))
                self.owner[key] = name

        def on_revoke(consumer, partitions):
            for tp in partitions:
                key = (tp.topic, tp.partition)
                if self.owner.get(key) == name:
                    del self.owner[key]

        return {"on_assign": on_assign, "on_revoke": on_revoke, "on_lost": on_revoke}

    def owned_by(self, name):
        return {p for (_, p), n in self.owner.items() if n == name}


def consumer(addr, group, **extra):
    conf = {"bootstrap.servers": addr, "group.id": group, "group.protocol": "consumer",
            "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    conf.update(extra)
    return Consumer(conf)


def test_three_members_share_and_one_leaves_without_double_ownership():
    b = fast_broker()
    try:
        topic = "kip848-topic"
        create_and_fill(b.addr, topic, 20)
        ledger = Ledger()
        names = ["m0", "m1", "m2"]
        consumers = [consumer(b.addr, "kip848") for _ in names]
        for c, n in zip(consumers, names):
            c.subscribe([topic], **ledger.member(n))
        # Every record m0 and m1 are given, all test long. While the group
        # forms, a partition can pass through m0 or m1 before it settles on
        # m2, so a record may reach them twice; what is asserted is that none
        # is missed and that m2's partitions are re-read once after it leaves.
        delivered = []

        def poll(cs, seconds):
            got = poll_all(cs, seconds)
            for c in cs[:2] if len(cs) == 3 else cs:
                delivered.extend((m.partition(), m.offset()) for m in got[id(c)])

        deadline = time.time() + 30
        while time.time() < deadline and not all(len(ledger.owned_by(n)) == 2 for n in names):
            poll(consumers, 0.3)
        parts = [ledger.owned_by(n) for n in names]
        assert [len(p) for p in parts] == [2, 2, 2], parts
        assert set().union(*parts) == set(range(PARTITIONS)), parts
        # What the client itself reports matches the callbacks.
        for c, p in zip(consumers, parts):
            assert {tp.partition for tp in c.assignment()} == p

        # The broker describes the group as KIP-848 defines it.
        admin = AdminClient({"bootstrap.servers": b.addr})
        desc = admin.describe_consumer_groups(["kip848"])["kip848"].result(10)
        assert len(desc.members) == 3
        assert str(desc.type) in ("ConsumerGroupType.CONSUMER", "CONSUMER"), desc.type

        # m2 leaves: its partitions move to m0 and m1, never owned twice.
        given_up = set(parts[2])
        after_leave = len(delivered)
        consumers[2].close()
        rest = consumers[:2]
        deadline = time.time() + 30
        while time.time() < deadline and set().union(*[ledger.owned_by(n) for n in names[:2]]) != set(range(PARTITIONS)):
            poll(rest, 0.3)
        parts = [ledger.owned_by(n) for n in names[:2]]
        assert set().union(*parts) == set(range(PARTITIONS)), parts
        assert not (parts[0] & parts[1]), parts
        assert ledger.violations == [], ledger.violations
        # Nothing was committed, so the partitions m2 gave up are read again
        # from their start by their new owner, each record once; and between
        # them, m0 and m1 have by then been given every record of the topic.
        everything = {(p, o) for p in range(PARTITIONS) for o in range(20)}
        wanted = sorted((p, o) for p in given_up for o in range(20))

        def reread():
            return sorted(r for r in delivered[after_leave:] if r[0] in given_up)

        deadline = time.time() + 30
        while time.time() < deadline and (len(reread()) < len(wanted) or set(delivered) != everything):
            poll(rest, 0.3)
        assert reread() == wanted
        assert set(delivered) == everything
        for c in rest:
            c.close()
    finally:
        b.stop()


def test_regex_subscription_picks_up_a_topic_created_later():
    b = fast_broker()
    try:
        create_and_fill(b.addr, "kre-first", 5, partitions=2)
        c = consumer(b.addr, "kip848-regex")
        c.subscribe(["^kre-.*"])
        seen = set()
        deadline = time.time() + 30
        while time.time() < deadline and len(seen) < 10:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                seen.add((m.topic(), m.partition(), m.offset()))
        assert {t for t, _, _ in seen} == {"kre-first"}, seen
        assert len(seen) == 10

        # A topic created later that matches joins the assignment.
        create_and_fill(b.addr, "kre-later", 4, partitions=3)
        create_and_fill(b.addr, "other-topic", 1, partitions=1)
        deadline = time.time() + 30
        while time.time() < deadline and len(seen) < 22:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                seen.add((m.topic(), m.partition(), m.offset()))
        assert {t for t, _, _ in seen} == {"kre-first", "kre-later"}, seen
        assert len(seen) == 22
        assert {tp.topic for tp in c.assignment()} == {"kre-first", "kre-later"}
        c.close()
    finally:
        b.stop()


def test_commits_survive_sigkill_beside_a_classic_group():
    b = fast_broker()
    try:
        topic = "kip848-commits"
        create_and_fill(b.addr, topic, 20)
        c = consumer(b.addr, "kip848-durable")
        c.subscribe([topic])
        # A classic group on the same broker at the same time.
        classic = Consumer({"bootstrap.servers": b.addr, "group.id": "classic-beside",
                            "auto.offset.reset": "earliest", "enable.auto.commit": False,
                            "session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
        classic.subscribe([topic])
        seen = 0
        classic_seen = 0
        deadline = time.time() + 40
        while (seen < 60 or classic_seen < 120) and time.time() < deadline:
            if seen < 60:
                m = c.poll(0.05)
                if m is not None and m.error() is None:
                    seen += 1
            m = classic.poll(0.05)
            if m is not None and m.error() is None:
                classic_seen += 1
        assert seen == 60
        assert classic_seen == 120
        c.commit(asynchronous=False)
        wanted = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = {tp.partition: tp.offset for tp in c.committed(wanted, 10)}
        assert sum(max(o, 0) for o in committed.values()) == 60

        admin = AdminClient({"bootstrap.servers": b.addr})
        listed = {g.group_id: g for g in admin.list_consumer_groups().result(10).valid}
        assert str(listed["kip848-durable"].type).endswith("CONSUMER"), listed
        assert str(listed["classic-beside"].type).endswith("CLASSIC"), listed
        c.close()
        classic.close()

        b.kill_and_restart()

        c = consumer(b.addr, "kip848-durable")
        assert {tp.partition: tp.offset for tp in c.committed(wanted, 10)} == committed
        c.subscribe([topic])
        rest = poll_records(c, 60)
        c.close()
        assert len(rest) == 60
        for m in rest:
            assert m.offset() >= max(committed[m.partition()], 0)
    finally:
        b.stop()


def test_an_empty_classic_group_is_taken_over_with_its_offsets():
    b = fast_broker()
    try:
        topic = "kip848-takeover"
        create_and_fill(b.addr, topic, 10)
        classic = Consumer({"bootstrap.servers": b.addr, "group.id": "takeover",
                            "auto.offset.reset": "earliest", "enable.auto.commit": False,
                            "session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
        classic.subscribe([topic])
        seen = 0
        deadline = time.time() + 30
        while seen < 30 and time.time() < deadline:
            m = classic.poll(0.2)
            if m is not None and m.error() is None:
                seen += 1
        classic.commit(asynchronous=False)
        wanted = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = {tp.partition: tp.offset for tp in classic.committed(wanted, 10)}
        classic.close()

        # The classic group is empty now; consumer-protocol members take it
        # over and resume at its commits.
        c = consumer(b.addr, "takeover")
        c.subscribe([topic])
        rest = poll_records(c, 30)
        assert len(rest) == 30
        for m in rest:
            assert m.offset() >= max(committed[m.partition()], 0)
        admin = AdminClient({"bootstrap.servers": b.addr})
        desc = admin.describe_consumer_groups(["takeover"])["takeover"].result(10)
        assert str(desc.type).endswith("CONSUMER") and len(desc.members) == 1
        c.close()
    finally:
        b.stop()


def test_a_static_member_restarts_into_its_own_partitions():
    b = fast_broker()
    try:
        topic = "kip848-static"
        create_and_fill(b.addr, topic, 2)
        a = consumer(b.addr, "kip848-static", **{"group.instance.id": "inst-a"})
        other = consumer(b.addr, "kip848-static", **{"group.instance.id": "inst-b"})
        a.subscribe([topic])
        other.subscribe([topic])

        def owned(c):
            return {tp.partition for tp in c.assignment()}

        deadline = time.time() + 30
        while time.time() < deadline and not (len(owned(a)) == 3 and len(owned(other)) == 3):
            poll_all([a, other], 0.3)
        before_a, before_b = owned(a), owned(other)
        assert len(before_a) == 3 and len(before_b) == 3 and not (before_a & before_b)

        # inst-a restarts: it leaves as a static member and comes back with
        # a new member id to the same partitions; inst-b keeps its own.
        a.close()
        poll_all([other], 1.0)
        assert owned(other) == before_b
        a2 = consumer(b.addr, "kip848-static", **{"group.instance.id": "inst-a"})
        a2.subscribe([topic])
        deadline = time.time() + 30
        while time.time() < deadline and owned(a2) != before_a:
            poll_all([a2, other], 0.3)
        assert owned(a2) == before_a
        assert owned(other) == before_b
        a2.close()
        other.close()
    finally:
        b.stop()
