"""confluent-kafka's idempotent producer across broker crashes: every
acknowledged record is stored exactly once, in order."""

import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def test_idempotent_producer_survives_broker_kills(broker):
    topic = "py-exactly-once"
    producer = Producer({"bootstrap.servers": broker.addr, "enable.idempotence": True, "linger.ms": 2,
                         "batch.size": 4000, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200})
    acked, failed = [], []

    def on_delivery(err, msg):
        (failed if err else acked).append(msg.value())

    n = 3000
    for i in range(n):
        producer.produce(topic, value=f"{i:06}".encode(), partition=0, on_delivery=on_delivery)
        producer.poll(0)
        if i in (n // 3, 2 * n // 3):
            time.sleep(0.05)
            broker.kill_and_restart()
    assert producer.flush(120) == 0
    assert not failed, failed[:3]
    assert len(acked) == n

    consumer = Consumer({"bootstrap.servers": broker.addr, "group.id": "check", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    idle = 0
    while idle < 10:
        m = consumer.poll(0.3)
        if m is None:
            idle += 1 if len(values) >= n else 0
            continue
        assert m.error() is None, m.error()
        values.append(m.value().decode())
    consumer.close()
    assert values == [f"{i:06}" for i in range(n)], "every record exactly once, in order"
