"""A real stateful stream processor on compacted topics: faust-streaming
counts words into a table backed by a compacted changelog topic, is
stopped, restarted with an empty in-memory store, and recovers its counts
from the changelog before counting on."""

import json
import os
import signal
import subprocess
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from conftest import Broker
from test_compaction import metric

APP = os.path.join(os.path.dirname(__file__), "apps", "faust_counter.py")


def start_app(broker, tmp):
    env = dict(os.environ, BROKER=broker.addr, COUNTER_STATE=os.path.join(tmp, "state.json"),
               COUNTER_DATADIR=os.path.join(tmp, "faust-data"))
    log = open(os.path.join(tmp, "faust.log"), "ab")
    return subprocess.Popen([sys.executable, APP, "worker", "-l", "info"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp)


def state(tmp):
    try:
        with open(os.path.join(tmp, "state.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def wait_for_state(tmp, want, seconds=90):
    deadline = time.time() + seconds
    got = None
    while time.time() < deadline:
        got = state(tmp)
        if got == want:
            return
        time.sleep(0.3)
    log = open(os.path.join(tmp, "faust.log")).read()[-4000:]
    raise AssertionError(f"faust reported {got}, wanted {want}\n{log}")


def send_words(addr, words):
    p = Producer({"bootstrap.servers": addr, "linger.ms": 5})
    for w in words:
        p.produce("words", key=w.encode(), value=json.dumps(w).encode())
    assert p.flush(30) == 0


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_faust_recovers_its_table_from_the_compacted_changelog(tmp_path):
    # Small segments and a low dirty ratio, so that the changelog is
    # compacted before the application restarts from it.
    b = Broker("--set", "log.cleaner.backoff.ms=100", "--set", "group.initial.rebalance.delay.ms=0",
               "--set", "log.segment.bytes=1024", "--set", "log.cleaner.min.cleanable.ratio=0.01")
    tmp = str(tmp_path)
    app = start_app(b, tmp)
    try:
        send_words(b.addr, ["apple"] * 30 + ["pear"] * 20)
        wait_for_state(tmp, {"apple": 30, "pear": 20})
        stop(app)

        # faust created its changelog as a compacted topic.
        admin = AdminClient({"bootstrap.servers": b.addr})
        res = ConfigResource(ConfigResource.Type.TOPIC, "strata-counter-counts-changelog")
        configs = list(admin.describe_configs([res]).values())[0].result(10)
        assert configs["cleanup.policy"].value == "compact"
        # The cleaner compacts it: fewer records than were written remain.
        changelog = "strata-counter-counts-changelog"
        deadline = time.time() + 30
        while time.time() < deadline and metric(b, "strata_cleaner_records_removed_total", changelog) == 0:
            time.sleep(0.2)
        assert metric(b, "strata_cleaner_records_removed_total", changelog) > 0

        # Restarted with an empty store, it recovers the counts from the
        # changelog and counts on from there.
        os.remove(os.path.join(tmp, "state.json"))
        app = start_app(b, tmp)
        wait_for_state(tmp, {"apple": 30, "pear": 20})
        send_words(b.addr, ["apple"] * 5 + ["plum"] * 2)
        wait_for_state(tmp, {"apple": 35, "pear": 20, "plum": 2})
    finally:
        stop(app)
        b.stop()
