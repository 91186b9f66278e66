"""The lake view against the real binary: topics translated into Iceberg
tables in the cold tier's bucket (the local store and the s3s-fs S3 server),
read back by pyiceberg from the table's metadata and by DuckDB from its
Parquet files; the exact handoff from a snapshot to the stream with
`strata lake handoff`; SIGKILLs during translation; backfill of history
already in the cold tier; aborted transactions left out."""

import collections
import datetime
import json
import os
import random
import subprocess
import time
import uuid

import duckdb
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from pyiceberg.table import StaticTable

from conftest import Broker, poll_records, strata_bin

FAST = ("--set", "log.segment.bytes=65536", "--set", "remote.log.manager.task.interval.ms=200",
        "--set", "log.retention.check.interval.ms=200", "--set", "lake.translation.interval.ms=200",
        "--set", "log.flush.scheduler.interval.ms=200")
LAKE = {"lake.enable": "true", "lake.event.time": "/event_ts", "lake.columns": "user:string,amount:double",
        "lake.commit.interval.ms": "300", "segment.ms": "1000"}
BASE = int(datetime.datetime(2026, 11, 30, tzinfo=datetime.timezone.utc).timestamp() * 1000)
HOUR = 3_600_000


def create(addr, topic, partitions, config):
    admin = AdminClient({"bootstrap.servers": addr})
    admin.create_topics([NewTopic(topic, partitions, 1, config=config)])[topic].result(10)


def produce_events(addr, topic, n, partitions, start=0, rng=None):
    """`n` JSON events with event times spread out of order over five hours,
    keys and headers; returns {(partition, offset): event} as acknowledged."""
    rng = rng or random.Random(7)
    acked = {}
    p = Producer({"bootstrap.servers": addr, "linger.ms": 5, "enable.idempotence": True})
    for i in range(start, start + n):
        ev = {"event_ts": BASE + rng.randrange(5 * HOUR), "user": f"u{i % 7}", "amount": i * 0.5, "i": i}

        def done(err, msg, ev=ev):
            if err is None:
                acked[(msg.partition(), msg.offset())] = ev

        p.produce(topic, key=f"k{i}".encode(), value=json.dumps(ev).encode(), partition=i % partitions,
                  headers=[("seq", str(i).encode()), ("empty", None)], on_delivery=done)
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    return acked


def lake_status(broker, topic, remote=None):
    args = [strata_bin(), "lake", "status", topic, "--json", "--bootstrap", broker.addr]
    args += ["--remote", remote] if remote else ["--data-dir", broker.data_dir]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, env=broker.env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def wait_caught_up(broker, topic, remote=None, seconds=int(os.environ.get("LAKE_WAIT", "90"))):
    """The status once the table covers every record of the stream."""
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        try:
            last = lake_status(broker, topic, remote)
            if last["snapshot_id"] is not None and all(p["lag_records"] == 0 for p in last["partitions"]):
                return last
        except AssertionError as e:
            last = str(e)
        time.sleep(0.5)
    raise AssertionError(f"the lake did not catch up: {last}")


def table_rows(metadata_location, snapshot_id=None, props=None):
    table = StaticTable.from_metadata(metadata_location, properties=props or {})
    scan = table.scan(snapshot_id=snapshot_id) if snapshot_id else table.scan()
    return table, scan.to_arrow().to_pylist()


def check_rows(rows, acked):
    """Every acknowledged record once, intact."""
    by_po = collections.Counter((r["partition"], r["offset"]) for r in rows)
    dup = [k for k, c in by_po.items() if c > 1]
    assert not dup, f"duplicate (partition, offset): {dup[:5]}"
    assert set(by_po) == set(acked), (len(by_po), len(acked))
    for r in rows:
        ev = acked[(r["partition"], r["offset"])]
        assert json.loads(r["value"]) == ev
        assert r["key"] == f"k{ev['i']}".encode()
        assert [(h["key"], h["value"]) for h in r["headers"]] == [("seq", str(ev["i"]).encode()), ("empty", None)]
        assert r["event_time"].timestamp() * 1000 == ev["event_ts"]
        assert r["user"] == ev["user"] and r["amount"] == ev["amount"]
        assert r["timestamp_type"] == "CreateTime"


def hours(acked):
    return collections.Counter(ev["event_ts"] // HOUR for ev in acked.values())


def test_local_store_pyiceberg_duckdb_and_exact_handoff():
    b = Broker(*FAST)
    try:
        topic = "events"
        create(b.addr, topic, 3, LAKE)
        acked = produce_events(b.addr, topic, 3000, 3)
        status = wait_caught_up(b, topic)
        table, rows = table_rows(status["metadata_location"])
        assert len(rows) == 3000
        check_rows(rows, acked)
        # Event-time partitions: one directory per hour, rows sorted within.
        assert [f.name for f in table.spec().fields] == ["event_time_hour"]
        got_hours = collections.Counter(int(r["event_time"].timestamp() * 1000) // HOUR for r in rows)
        assert got_hours == hours(acked)

        # DuckDB on the Parquet files themselves, by their Hive-style paths.
        data = os.path.join(b.data_dir, "remote", "lake", topic, "data")
        con = duckdb.connect()
        glob = os.path.join(data, "**", "*.parquet")
        assert con.execute(f"select count(*) from read_parquet('{glob}')").fetchone()[0] == 3000
        per_hour = dict(con.execute(
            f"select epoch_ms(date_trunc('hour', event_time))::bigint // {HOUR}, count(*) "
            f"from read_parquet('{glob}') group by 1").fetchall())
        assert per_hour == dict(hours(acked))
        dirs = sorted(os.listdir(data))
        assert dirs and all(d.startswith("event_time_hour=2026-11-30-0") for d in dirs), dirs
        for path in con.execute(f"select distinct filename from read_parquet('{glob}', filename=true)").fetchall():
            ts = [r[0] for r in con.execute(f"select event_time from read_parquet('{path[0]}')").fetchall()]
            assert ts == sorted(ts)
        assert con.execute(f"select count(distinct (partition, \"offset\")) from read_parquet('{glob}')").fetchone()[0] == 3000

        # The handoff: the table up to snapshot S, then the stream from the
        # group's offsets, while more records arrive and are translated.
        snapshot = status["snapshot_id"]
        more = produce_events(b.addr, topic, 900, 3, start=3000, rng=random.Random(9))
        acked.update(more)
        group = "bootstrap-job"
        out = subprocess.run([strata_bin(), "lake", "handoff", topic, "--group", group, "--snapshot", str(snapshot),
                              "--bootstrap", b.addr, "--data-dir", b.data_dir], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        # The table read at S from its newest metadata, as a job would.
        _, lake_part = table_rows(lake_status(b, topic)["metadata_location"], snapshot)
        seen = collections.Counter((r["partition"], r["offset"]) for r in lake_part)
        c = Consumer({"bootstrap.servers": b.addr, "group.id": group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
        c.subscribe([topic])
        expected_stream = len(acked) - len(lake_part)
        for m in poll_records(c, expected_stream, 60):
            seen[(m.partition(), m.offset())] += 1
        for m in poll_records(c, 10**9, 1.5):
            seen[(m.partition(), m.offset())] += 1
        c.close()
        assert set(seen) == set(acked)
        assert max(seen.values()) == 1, "a record was seen twice across the handoff"
    finally:
        b.stop()


def test_s3_store_survives_sigkills_during_translation(s3):
    remote = f"s3://{s3.BUCKET}/cluster-a"
    b = Broker(*FAST, "--remote", remote, env=s3.broker_env())
    try:
        topic = "clicks"
        create(b.addr, topic, 2, {**LAKE, "lake.commit.interval.ms": "100"})
        acked = {}
        for round_ in range(4):
            acked.update(produce_events(b.addr, topic, 1500, 2, start=round_ * 1500, rng=random.Random(round_)))
            time.sleep(1.0 + round_ * 0.4)
            b.kill_and_restart()
        status = wait_caught_up(b, topic, remote)
        props = {"s3.endpoint": s3.endpoint, "s3.access-key-id": "strata-test",
                 "s3.secret-access-key": "strata-test-secret", "s3.region": "us-east-1"}
        table, rows = table_rows(status["metadata_location"], props=props)
        check_rows(rows, acked)
        assert len(table.snapshots()) >= 2
        # DuckDB on exactly the files the table lists (a crash may leave
        # files no snapshot references), from the server's own copy of them.
        files = [t.file.file_path.split(f"s3://{s3.BUCKET}/", 1)[1] for t in table.scan().plan_files()]
        paths = [os.path.join(s3.bucket_dir(), f) for f in files]
        con = duckdb.connect()
        n = con.execute("select count(*) from read_parquet(?)", [paths]).fetchone()[0]
        assert n == len(acked)
        per_hour = dict(con.execute(
            f"select epoch_ms(date_trunc('hour', event_time))::bigint // {HOUR}, count(*) "
            "from read_parquet(?) group by 1", [paths]).fetchall())
        assert per_hour == dict(hours(acked))
    finally:
        b.stop()


def test_enabling_the_lake_backfills_history_from_the_cold_tier():
    b = Broker(*FAST)
    try:
        topic = "history"
        create(b.addr, topic, 2, {"segment.ms": "1000"})
        acked = produce_events(b.addr, topic, 2000, 2)
        admin = AdminClient({"bootstrap.servers": b.addr})
        # Wait until the whole history is in the cold tier (every
        # partition's last tiered offset is its high watermark minus one),
        # then turn the lake on: what it translates is only there.
        tiered = False
        deadline = time.time() + 60
        while time.time() < deadline and not tiered:
            out = subprocess.run([strata_bin(), "topics", "describe", topic, "--bootstrap", b.addr],
                                 capture_output=True, text=True)
            cells = [line.split() for line in out.stdout.strip().splitlines()[1:]]
            tiered = out.returncode == 0 and len(cells) == 2 and all(
                c[4] != "-" and int(c[4]) == int(c[5]) - 1 for c in cells)
            time.sleep(0.5)
        assert tiered, out.stdout
        # No table before the lake is on.
        none = subprocess.run([strata_bin(), "lake", "status", topic, "--bootstrap", b.addr,
                               "--data-dir", b.data_dir], capture_output=True, text=True)
        assert none.returncode != 0 and "has no lake table" in none.stderr, none.stderr
        res = ConfigResource("TOPIC", topic, set_config={"lake.enable": "true", "lake.event.time": "/event_ts",
                                                         "lake.commit.interval.ms": "300", "segment.ms": "1000"})
        admin.alter_configs([res])[res].result(10)
        described = admin.describe_configs([ConfigResource("TOPIC", topic)])
        configs = list(described.values())[0].result(10)
        assert configs["lake.enable"].value == "true"
        assert configs["lake.partition"].value == "hour"
        status = wait_caught_up(b, topic)
        _, rows = table_rows(status["metadata_location"])
        assert sorted((r["partition"], r["offset"]) for r in rows) == sorted(acked)
        assert "user" not in rows[0]
    finally:
        b.stop()


def test_aborted_transactions_never_reach_the_table():
    b = Broker(*FAST)
    try:
        topic = "payments"
        create(b.addr, topic, 2, LAKE)
        p = Producer({"bootstrap.servers": b.addr, "transactional.id": "payer", "linger.ms": 5})
        p.init_transactions(20)
        committed = set()
        for round_, commit in enumerate([True, False, True, False, True]):
            p.begin_transaction()
            for i in range(200):
                ev = {"event_ts": BASE + i, "user": "x", "amount": 1.0, "i": round_ * 1000 + i, "commit": commit}
                p.produce(topic, value=json.dumps(ev).encode(), partition=i % 2)
            p.flush(10)
            if commit:
                p.commit_transaction(20)
                committed.update(range(round_ * 1000, round_ * 1000 + 200))
            else:
                p.abort_transaction(20)
        status = wait_caught_up(b, topic)
        _, rows = table_rows(status["metadata_location"])
        got = [json.loads(r["value"])["i"] for r in rows]
        assert sorted(got) == sorted(committed)
        assert b.metrics()[("strata_lake_aborted_records_total", frozenset({("topic", topic)}))] == 400
    finally:
        b.stop()


def test_lake_configs_are_checked():
    b = Broker()
    try:
        admin = AdminClient({"bootstrap.servers": b.addr})
        bad = [
            {"lake.enable": "true", "remote.storage.enable": "false"},
            {"lake.columns": "offset:long"},
            {"lake.columns": "amount:decimal"},
            {"lake.event.time": "event_ts"},
            {"lake.partition": "minute"},
        ]
        for i, config in enumerate(bad):
            f = admin.create_topics([NewTopic(f"bad-{i}", 1, 1, config=config)])[f"bad-{i}"]
            with pytest.raises(KafkaException) as e:
                f.result(10)
            assert e.value.args[0].name() == "INVALID_CONFIG", config
    finally:
        b.stop()


def test_lake_retention_drops_old_event_time_partitions_only():
    b = Broker(*FAST, "--set", "lake.retention.check.interval.ms=500")
    try:
        topic = "retained"
        # The stream keeps everything; the lake keeps one day of event time.
        create(b.addr, topic, 2, {**LAKE, "lake.retention.ms": str(24 * HOUR)})
        now = int(time.time() * 1000)
        p = Producer({"bootstrap.servers": b.addr, "linger.ms": 5})
        for i in range(1000):
            ts = BASE - 3 * 24 * HOUR + i if i % 2 else now - i
            p.produce(topic, value=json.dumps({"event_ts": ts, "i": i, "user": "u", "amount": 1.0}).encode(),
                      partition=i % 2)
        assert p.flush(30) == 0
        wait_caught_up(b, topic)
        deadline = time.time() + 60
        while time.time() < deadline:
            status = lake_status(b, topic)
            _, rows = table_rows(status["metadata_location"])
            if len(rows) == 500:
                break
            time.sleep(0.5)
        assert sorted(json.loads(r["value"])["i"] for r in rows) == list(range(0, 1000, 2))
        # The end offsets still say where the stream continues.
        assert [p["lag_records"] for p in status["partitions"]] == [0, 0]
        data = os.path.join(b.data_dir, "remote", "lake", topic, "data")
        glob = os.path.join(data, "**", "*.parquet")
        assert duckdb.connect().execute(f"select count(*) from read_parquet('{glob}')").fetchone()[0] == 500
        # The stream itself still holds every record.
        c = Consumer({"bootstrap.servers": b.addr, "group.id": "all", "auto.offset.reset": "earliest"})
        c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
        assert len(poll_records(c, 1000, 30)) == 1000
        c.close()
    finally:
        b.stop()
