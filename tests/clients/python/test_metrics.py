"""The Prometheus endpoint, scraped as Prometheus would, after real client
traffic: a produce, the history moving to the cold tier, and a replay."""

import time
import urllib.error
import urllib.request

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from conftest import fill_tiered_topic


def value(samples, name, **labels):
    """The sample `name` with exactly these labels, 0 when absent."""
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())), 0.0)


def test_metrics_move_with_produce_tiering_and_replay(tiered_broker):
    topic = "scraped"
    records = 4000
    before = tiered_broker.metrics()
    assert value(before, "strata_topic_bytes_in_total", topic=topic) == 0

    fill_tiered_topic(tiered_broker, topic, records, config={"local.retention.bytes": "1"})

    # The hot tier empties into the store; the gauges follow at each scrape.
    part = {"topic": topic, "partition": 0}
    deadline = time.time() + 30
    while True:
        m = tiered_broker.metrics()
        local_start = value(m, "strata_partition_local_start_offset", **part)
        if local_start > records / 2 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert local_start > records / 2, "history did not reach the cold tier"
    assert value(m, "strata_partition_high_watermark", **part) == records
    assert value(m, "strata_partition_log_start_offset", **part) == 0
    remote_bytes = value(m, "strata_partition_bytes", tier="remote", **part)
    local_bytes = value(m, "strata_partition_bytes", tier="local", **part)
    bytes_in = value(m, "strata_topic_bytes_in_total", topic=topic)
    assert value(m, "strata_topic_records_in_total", topic=topic) == records
    assert bytes_in > records * 200
    # Every appended byte is in exactly one tier (nothing was deleted in
    # total), or sealed and still waiting for its upload.
    assert remote_bytes > 0 and remote_bytes + local_bytes >= bytes_in, m
    assert value(m, "strata_remote_upload_segments_total") >= 1
    assert value(m, "strata_remote_upload_bytes_total") >= remote_bytes
    for gauge in ("strata_partition_upload_lag_segments", "strata_partition_upload_lag_bytes"):
        assert (gauge, frozenset((k, str(v)) for k, v in part.items())) in m, gauge
    assert value(m, "strata_requests_total", api="Produce") >= 1
    assert value(m, "strata_request_duration_seconds_count", api="Produce") >= 1
    assert value(m, "strata_request_duration_seconds_bucket", api="Produce", le="+Inf") >= 1

    # A replay from offset 0 reads the history from the store.
    consumer = Consumer({"bootstrap.servers": tiered_broker.addr, "group.id": "replay",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        seen = 0
        deadline = time.time() + 30
        while seen < records and time.time() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                seen += 1
        assert seen == records
        during = tiered_broker.metrics()
        assert value(during, "strata_connections_open") >= 1
    finally:
        consumer.close()

    after = tiered_broker.metrics()
    read = value(after, "strata_remote_read_bytes_total") - value(m, "strata_remote_read_bytes_total")
    assert read >= remote_bytes, (read, remote_bytes)
    assert value(after, "strata_remote_read_duration_seconds_count") >= 1
    # The default cold tier is a local directory, read in place: each chunk
    # is a miss once, and the fetches that follow hit the chunks in memory.
    assert value(after, "strata_remote_cache_misses_total") >= 1
    assert value(after, "strata_remote_cache_hits_total", level="memory") >= 1
    assert value(after, "strata_topic_bytes_out_total", topic=topic) >= bytes_in
    assert value(after, "strata_requests_total", api="Fetch") > value(m, "strata_requests_total", api="Fetch")
    assert value(after, "strata_object_store_errors_total", op="read") == 0
    assert value(after, "strata_connections_accepted_total") >= 3


def test_other_paths_and_methods_are_refused(broker):
    for path, method, code in [("/", "GET", 404), ("/metrics", "POST", 405)]:
        request = urllib.request.Request(f"http://{broker.metrics_addr}{path}", method=method, data=None)
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError(f"{method} {path} was answered")
        except urllib.error.HTTPError as e:
            assert e.code == code
