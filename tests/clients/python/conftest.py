"""Starts the real strata binary for each test, on a free port with a fresh
data directory, as the Rust harness does."""

import os
import pathlib
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def strata_bin() -> str:
    path = os.environ.get("STRATA_BIN", str(ROOT / "target" / "debug" / "strata"))
    if not os.path.exists(path):
        raise RuntimeError(f"{path} not found: run `cargo build --bin strata` first")
    return path


class Broker:
    def __init__(self, *args, listen="127.0.0.1:0", env=None):
        self.dir = tempfile.TemporaryDirectory(prefix="strata-py-")
        self.log = open(os.path.join(self.dir.name, "broker.log"), "ab")
        self.args = args
        self.addr = listen
        self.env = {**os.environ, **(env or {})}
        self._spawn()

    def _spawn(self):
        self.proc = subprocess.Popen(
            [strata_bin(), "--listen", self.addr, "--metrics-listen", "127.0.0.1:0",
             "--data-dir", os.path.join(self.dir.name, "data"), *self.args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=self.env,
        )
        self.addr = self._announced("strata listening on ")
        self.metrics_addr = self._announced("strata metrics on ")

    def _announced(self, prefix):
        """The address on the broker's next stdout line, which starts with `prefix`."""
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"broker did not announce {prefix!r}: {line!r}")
        return line[len(prefix):]

    @property
    def data_dir(self):
        return os.path.join(self.dir.name, "data")

    def metrics(self, auth=None):
        """The Prometheus endpoint's samples as {(name, frozenset(labels)): value};
        `auth` is a (user, password) pair for HTTP Basic."""
        import base64
        import urllib.request
        req = urllib.request.Request(f"http://{self.metrics_addr}/metrics")
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        text = urllib.request.urlopen(req, timeout=10).read().decode()
        samples = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            series, value = line.rsplit(" ", 1)
            name, _, labels = series.partition("{")
            pairs = frozenset(
                tuple(kv.split("=", 1)) for kv in labels.rstrip("}").split(",") if kv
            )
            samples[(name, frozenset((k, v.strip('"')) for k, v in pairs))] = float(value)
        return samples

    def kill_and_restart(self):
        """SIGKILL, then start again on the same port and data."""
        self.proc.kill()
        self.proc.wait()
        self._spawn()

    def stop(self):
        if os.environ.get("STRATA_KEEP_LOG"):
            import shutil
            shutil.copy(os.path.join(self.dir.name, "broker.log"), os.environ["STRATA_KEEP_LOG"])
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.dir.cleanup()


@pytest.fixture
def broker():
    b = Broker()
    yield b
    b.stop()


@pytest.fixture
def tiered_broker():
    """64 KiB segments and the tiering passes every 200 ms, so that history
    reaches the cold tier within a second or two."""
    b = Broker("--set", "log.segment.bytes=65536", "--set", "remote.log.manager.task.interval.ms=200",
               "--set", "log.retention.check.interval.ms=200")
    yield b
    b.stop()


def poll_records(consumer, n, seconds=30):
    """Up to `n` records from a confluent-kafka consumer, within `seconds`."""
    import time
    got = []
    deadline = time.time() + seconds
    while len(got) < n and time.time() < deadline:
        m = consumer.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m)
    return got


def fill_tiered_topic(broker, topic, records, partitions=1, config=None):
    """Creates `topic` and writes `records` keyed records of 200 bytes to
    partition 0 in small batches, so that 64 KiB segments roll and reach the
    cold tier."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.addr})
    admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})])[topic].result(10)
    producer = Producer({"bootstrap.servers": broker.addr, "linger.ms": 5, "batch.size": 16384})
    for i in range(records):
        producer.produce(topic, key=str(i).encode(), value=b"x" * 200, partition=0)
    assert producer.flush(30) == 0


class S3Server:
    """The s3s-fs S3 server that scripts/install-test-deps.sh builds, on a
    free port, storing objects as files under a temporary directory, with
    one bucket."""

    BUCKET = "strata"

    def __init__(self):
        import socket
        import time
        self.dir = tempfile.TemporaryDirectory(prefix="strata-s3-")
        os.makedirs(os.path.join(self.dir.name, "data", self.BUCKET))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = open(os.path.join(self.dir.name, "s3s.log"), "ab")
        self.proc = subprocess.Popen(
            [str(ROOT / ".tools" / "s3s" / "bin" / "s3s-fs"), "--host", "127.0.0.1",
             "--port", str(self.port), "--access-key", "strata-test",
             "--secret-key", "strata-test-secret", os.path.join(self.dir.name, "data")],
            stdout=self.log, stderr=self.log, env={**os.environ, "RUST_LOG": "warn"})
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.025)
        raise RuntimeError("s3s-fs did not start listening")

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def broker_env(self):
        return {"AWS_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": "strata-test",
                "AWS_SECRET_ACCESS_KEY": "strata-test-secret", "AWS_REGION": "us-east-1",
                "AWS_ALLOW_HTTP": "true"}

    def bucket_dir(self):
        """Where the server keeps the bucket's objects as files."""
        return os.path.join(self.dir.name, "data", self.BUCKET)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.dir.cleanup()


@pytest.fixture
def s3():
    s = S3Server()
    yield s
    s.stop()
