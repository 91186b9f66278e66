"""kafka-python (pure Python) against the real broker."""

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from records import CODECS, COUNT, LOOKUPS, expected, normalize_headers


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_every_codec(broker, codec):
    topic = f"kp-{codec}"
    # Idempotence needs InitProducerId, which is not served yet.
    producer = KafkaProducer(bootstrap_servers=broker.addr, acks="all", linger_ms=20, enable_idempotence=False,
                             compression_type=None if codec == "none" else codec)
    futures = [
        producer.send(topic, key=r["key"], value=r["value"], headers=r["headers"], partition=0,
                      timestamp_ms=r["timestamp"])
        for r in expected()
    ]
    offsets = [f.get(timeout=30).offset for f in futures]
    assert offsets == list(range(COUNT))
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=broker.addr, enable_auto_commit=False, group_id=None)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    got = []
    for _ in range(100):
        for records in consumer.poll(timeout_ms=500).values():
            got.extend(records)
        if len(got) >= COUNT:
            break
    assert len(got) == COUNT
    for i, (msg, r) in enumerate(zip(got, expected())):
        assert msg.offset == i
        assert msg.key == r["key"]
        assert msg.value == r["value"]
        assert normalize_headers(msg.headers) == r["headers"]
        assert msg.timestamp == r["timestamp"]

    for ts, offset in LOOKUPS:
        found = consumer.offsets_for_times({tp: ts})[tp]
        if offset is None:
            assert found is None, (ts, found)
        else:
            assert found.offset == offset, (ts, found)
    consumer.close()
