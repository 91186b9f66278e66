"""KIP-392 with a read replica: a primary configured with
remote.log.read.replica names the replica as the preferred read replica of
fetches that reach into the cold tier, for consumers that set client.rack.
Each client below is bootstrapped to the primary, reads a topic whose
history is all in the bucket from offset 0, and must get every record; the
test then says which broker served the history, from the two brokers'
byte counters. Without client.rack the primary serves everything."""

import asyncio
import socket
import time

from conftest import Broker, fill_tiered_topic

RECORDS = 3000
TOPIC = "history"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gauge(broker, name, topic):
    for (n, labels), v in broker.metrics().items():
        if n == name and ("topic", topic) in labels:
            return v
    return 0.0


def bytes_out(broker):
    return gauge(broker, "strata_topic_bytes_out_total", TOPIC)


def wait_for(what, done, timeout=30):
    deadline = time.time() + timeout
    while not done():
        assert time.time() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def setup(started):
    port = free_port()
    primary = Broker(
        "--set", "log.segment.bytes=65536",
        "--set", "log.roll.ms=1000",
        "--set", "log.flush.scheduler.interval.ms=200",
        "--set", "remote.log.manager.task.interval.ms=200",
        "--set", "log.retention.check.interval.ms=200",
        "--set", "log.local.retention.ms=0",
        "--set", f"remote.log.read.replica=2@127.0.0.1:{port}",
    )
    started.append(primary)
    fill_tiered_topic(primary, TOPIC, RECORDS)
    wait_for("the history is in the cold tier", lambda: (
        gauge(primary, "strata_partition_local_start_offset", TOPIC) == RECORDS))
    replica = Broker(
        "--read-replica",
        "--remote", f"file://{primary.data_dir}/remote",
        "--set", "node.id=2",
        "--set", "remote.log.replica.refresh.ms=200",
        listen=f"127.0.0.1:{port}",
    )
    started.append(replica)
    wait_for("the replica has the history", lambda: (
        gauge(replica, "strata_partition_high_watermark", TOPIC) == RECORDS))
    return primary, replica


def read_confluent(addr, rack):
    from confluent_kafka import Consumer, TopicPartition
    conf = {"bootstrap.servers": addr, "group.id": "kip392", "enable.auto.commit": False}
    if rack:
        conf["client.rack"] = rack
    c = Consumer(conf)
    c.assign([TopicPartition(TOPIC, 0, 0)])
    got = []
    deadline = time.time() + 60
    while len(got) < RECORDS and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append((m.offset(), m.key()))
    c.close()
    return got


def read_kafka_python(addr, rack):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=addr, enable_auto_commit=False,
                      client_rack=rack or "", fetch_max_wait_ms=200)
    tp = TopicPartition(TOPIC, 0)
    c.assign([tp])
    c.seek(tp, 0)
    got = []
    deadline = time.time() + 60
    while len(got) < RECORDS and time.time() < deadline:
        for records in c.poll(timeout_ms=500).values():
            got.extend((r.offset, r.key) for r in records)
    c.close()
    return got


def read_aiokafka(addr, rack):
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run():
        c = AIOKafkaConsumer(bootstrap_servers=addr, enable_auto_commit=False,
                             client_rack=rack, fetch_max_wait_ms=200)
        await c.start()
        tp = TopicPartition(TOPIC, 0)
        c.assign([tp])
        c.seek(tp, 0)
        got = []
        deadline = time.time() + 60
        try:
            while len(got) < RECORDS and time.time() < deadline:
                for records in (await c.getmany(timeout_ms=500)).values():
                    got.extend((r.offset, r.key) for r in records)
        finally:
            await c.stop()
        return got

    return asyncio.run(run())


CLIENTS = {
    "librdkafka (confluent-kafka)": read_confluent,
    "kafka-python": read_kafka_python,
    "aiokafka": read_aiokafka,
}


def test_clients_with_a_rack_read_history_from_the_read_replica():
    started = []
    try:
        primary, replica = setup(started)
        expected = [(i, str(i).encode()) for i in range(RECORDS)]
        report = {}
        for name, read in CLIENTS.items():
            for rack in ("rack-a", None):
                p0, r0 = bytes_out(primary), bytes_out(replica)
                got = read(primary.addr, rack)
                assert got == expected, f"{name} (client.rack={rack}) read every record once"
                p1, r1 = bytes_out(primary), bytes_out(replica)
                report[(name, rack)] = (p1 - p0, r1 - r0)
        for (name, rack), (from_primary, from_replica) in report.items():
            print(f"{name:30} client.rack={rack!s:7} primary served {from_primary:>9.0f} B, "
                  f"replica served {from_replica:>9.0f} B")
        for name in CLIENTS:
            from_primary, from_replica = report[(name, "rack-a")]
            assert from_replica > 0 and from_primary == 0, (
                f"{name} with client.rack read the history from the replica: {report}")
            from_primary, from_replica = report[(name, None)]
            assert from_replica == 0 and from_primary > 0, (
                f"{name} without client.rack read from the primary: {report}")
    finally:
        for b in reversed(started):
            b.stop()
