"""aiokafka (asyncio) against the real broker."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from records import CODECS, COUNT, LOOKUPS, expected, normalize_headers


async def round_trip(addr, codec):
    topic = f"aio-{codec}"
    producer = AIOKafkaProducer(bootstrap_servers=addr, acks="all", linger_ms=20,
                                compression_type=None if codec == "none" else codec)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=r["key"], value=r["value"], headers=r["headers"], partition=0,
                                timestamp_ms=r["timestamp"])
            for r in expected()
        ]
        offsets = [(await f).offset for f in futures]
    finally:
        await producer.stop()
    assert offsets == list(range(COUNT))

    consumer = AIOKafkaConsumer(bootstrap_servers=addr, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        got = []
        for _ in range(100):
            for records in (await consumer.getmany(timeout_ms=500)).values():
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
            found = (await consumer.offsets_for_times({tp: ts}))[tp]
            if offset is None:
                assert found is None, (ts, found)
            else:
                assert found.offset == offset, (ts, found)
    finally:
        await consumer.stop()


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_every_codec(broker, codec):
    asyncio.run(round_trip(broker.addr, codec))
