"""A real stream-processing library's exactly-once mode: Quix Streams
(apps/quix_counter.py, in its own virtualenv) counts words per key in a
state store backed by a changelog topic and writes every new count to an
output topic, each checkpoint one Kafka transaction. The application is
SIGKILLed at random moments and restarted, sometimes with its local state
wiped so that it recovers from the changelog. At the end, read with
read_committed, every word's counts in the output are exactly 1, 2, ...,
N: nothing counted twice, nothing lost."""

import os
import pathlib
import random
import shutil
import subprocess
import time
import json
import threading

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import ROOT, Broker, poll_records

APP = pathlib.Path(__file__).parent / "apps" / "quix_counter.py"
QUIX_PYTHON = ROOT / ".venv-quix" / "bin" / "python"
WORDS = ["apple", "pear", "plum", "fig"]


def test_quix_streams_exactly_once_counts_across_kills(tmp_path):
    seed = int(os.environ.get("STRATA_CRASH_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    b = Broker("--set", "group.initial.rebalance.delay.ms=0")
    state_dir = tmp_path / "state"
    app = None

    def start():
        return subprocess.Popen([str(QUIX_PYTHON), str(APP), b.addr, str(state_dir)],
                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "quix.log", "ab"))

    try:
        admin = AdminClient({"bootstrap.servers": b.addr})
        for t in ("qwords", "qcounts"):
            admin.create_topics([NewTopic(t, 2, 1)])[t].result(10)
        # Words keep arriving while the application is killed and
        # restarted, so that every kill lands in the middle of its work.
        sent = {w: 0 for w in WORDS}
        stop = threading.Event()

        def feed():
            p = Producer({"bootstrap.servers": b.addr, "linger.ms": 5, "enable.idempotence": True})
            words = random.Random(seed + 1)
            while not stop.is_set():
                for _ in range(50):
                    w = WORDS[words.randrange(len(WORDS))]
                    sent[w] += 1
                    p.produce("qwords", key=w.encode(), value=w.encode())
                p.poll(0)
                time.sleep(0.05)
            assert p.flush(30) == 0

        feeder = threading.Thread(target=feed)
        feeder.start()
        try:
            for cycle in range(4):
                app = start()
                time.sleep(rng.uniform(2.0, 4.0))
                app.kill()
                app.wait()
                if rng.random() < 0.5:
                    shutil.rmtree(state_dir, ignore_errors=True)
        finally:
            stop.set()
            feeder.join()
        total = sum(sent.values())
        app = start()

        c = Consumer({"bootstrap.servers": b.addr, "group.id": "quix-check", "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "isolation.level": "read_committed"})
        c.assign([TopicPartition("qcounts", p, 0) for p in range(2)])
        got = {w: [] for w in WORDS}
        deadline = time.time() + 180
        while time.time() < deadline and sum(len(v) for v in got.values()) < total:
            for m in poll_records(c, total, 1):
                v = json.loads(m.value())
                got[v["word"]].append(v["n"])
        got_more = poll_records(c, 10**9, 2)
        c.close()
        log = (tmp_path / "quix.log").read_text()[-3000:]
        assert not got_more, f"seed {seed}: more results than inputs\n{log}"
        for w in WORDS:
            assert sorted(got[w]) == list(range(1, sent[w] + 1)), f"seed {seed}: {w}\n{log}"
    finally:
        if app is not None:
            app.kill()
        b.stop()
