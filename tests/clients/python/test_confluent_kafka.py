"""confluent-kafka (librdkafka 2.16) against the real broker."""

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from records import CODECS, COUNT, LOOKUPS, expected, normalize_headers


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_every_codec(broker, codec):
    topic = f"ck-{codec}"
    producer = Producer({"bootstrap.servers": broker.addr, "compression.type": codec, "linger.ms": 20, "acks": "all"})
    acked = []

    errors = []

    def on_delivery(err, msg):
        # An exception raised in a librdkafka callback is lost: collect.
        if err is not None:
            errors.append(str(err))
        else:
            acked.append(msg.offset())

    for i, r in enumerate(expected()):
        producer.produce(topic, key=r["key"], value=r["value"], headers=r["headers"], timestamp=r["timestamp"],
                         partition=0, on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert errors == []
    # One partition, one producer: delivery reports come back in order.
    assert acked == list(range(COUNT))

    consumer = Consumer({"bootstrap.servers": broker.addr, "group.id": "ck", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    while len(got) < COUNT:
        msg = consumer.poll(10)
        assert msg is not None, f"timed out after {len(got)} records"
        assert msg.error() is None, msg.error()
        got.append(msg)
    for i, (msg, r) in enumerate(zip(got, expected())):
        assert msg.offset() == i
        assert msg.key() == r["key"]
        assert msg.value() == r["value"]
        assert normalize_headers(msg.headers()) == r["headers"]
        assert msg.timestamp()[1] == r["timestamp"]

    for ts, offset in LOOKUPS:
        [tp] = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
        assert tp.offset == (offset if offset is not None else -1), (ts, tp)
    consumer.close()
