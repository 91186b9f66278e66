"""Connection and memory bounds under a flood of connections from one
client: max.connections.per.ip closes the extra ones at once and leaves
other addresses served, max.connections holds new ones back until others
close, and idle connections cost little memory."""

import socket
import struct
import time

from conftest import Broker


def api_versions_frame(correlation_id=1):
    body = struct.pack(">hhih", 18, 0, correlation_id, 1) + b"t"
    return struct.pack(">i", len(body)) + body


def connect(addr, source="127.0.0.1"):
    host, port = addr.rsplit(":", 1)
    s = socket.socket()
    s.bind((source, 0))
    s.connect((host, int(port)))
    return s


def answered(s, timeout=5.0):
    """Whether the broker answers ApiVersions on `s` within `timeout`
    (False when it closed the connection or stayed silent)."""
    s.settimeout(timeout)
    try:
        s.sendall(api_versions_frame())
        head = s.recv(4)
        return len(head) == 4
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        return False


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_flood_from_one_address_is_cut_at_max_connections_per_ip():
    b = Broker("--set", "max.connections.per.ip=20")
    flood = []
    try:
        flood = [connect(b.addr) for _ in range(60)]
        served = sum(answered(s, timeout=2.0) for s in flood)
        assert served == 20, served
        # Another address is served while this one is at its limit.
        other = connect(b.addr, source="127.0.0.2")
        assert answered(other)
        other.close()
        # Closing the flood frees the address again.
        for s in flood:
            s.close()
        flood = []
        deadline = time.time() + 10
        while time.time() < deadline:
            s = connect(b.addr)
            ok = answered(s, timeout=1.0)
            s.close()
            if ok:
                break
            time.sleep(0.1)
        assert ok
    finally:
        for s in flood:
            s.close()
        b.stop()


def test_max_connections_holds_new_connections_back_until_others_close():
    b = Broker("--set", "max.connections=10")
    first = [connect(b.addr) for _ in range(10)]
    try:
        assert all(answered(s) for s in first)
        waiting = connect(b.addr)
        # Queued in the listen backlog: no answer while ten are open...
        assert not answered(waiting, timeout=1.0)
        first.pop().close()
        # ...and served once one closes (the request sent above is read now).
        waiting.settimeout(10)
        assert len(waiting.recv(4)) == 4
        waiting.close()
    finally:
        for s in first:
            s.close()
        b.stop()


def test_idle_connections_cost_little_memory():
    b = Broker()
    conns = []
    try:
        warm = connect(b.addr)
        assert answered(warm)
        before = rss_kib(b.proc.pid)
        n = 2000
        for _ in range(n):
            s = connect(b.addr)
            s.sendall(api_versions_frame())
            conns.append(s)
        for s in conns:
            s.settimeout(10)
            assert len(s.recv(4)) == 4
        time.sleep(0.5)
        per_connection = (rss_kib(b.proc.pid) - before) * 1024 / n
        print(f"{n} idle connections: {per_connection / 1024:.1f} KiB each")
        # The read buffer (8 KiB) and the task, not the 128 KiB of buffers
        # each connection used to hold.
        assert per_connection < 32 * 1024, per_connection
        warm.close()
    finally:
        for s in conns:
            s.close()
        b.stop()


def open_fds(pid):
    import os

    return len(os.listdir(f"/proc/{pid}/fd"))


def test_many_partitions_cost_little_memory_and_few_files():
    """A thousand partitions with data: each holds its open segment and its
    two memory-mapped indexes (a page of each touched), not buffers sized
    by the configured maximums."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    b = Broker()
    try:
        admin = AdminClient({"bootstrap.servers": b.addr})
        admin.create_topics([NewTopic("warm", 1, 1)])["warm"].result(10)
        producer = Producer({"bootstrap.servers": b.addr, "linger.ms": 5})
        producer.produce("warm", value=b"w", partition=0)
        assert producer.flush(10) == 0
        time.sleep(0.5)
        rss_before, fds_before = rss_kib(b.proc.pid), open_fds(b.proc.pid)

        n = 1000
        admin.create_topics([NewTopic("many", n, 1)])["many"].result(30)
        for p in range(n):
            producer.produce("many", value=b"v" * 100, partition=p)
        assert producer.flush(30) == 0
        time.sleep(0.5)
        per_partition = (rss_kib(b.proc.pid) - rss_before) * 1024 / n
        fds = (open_fds(b.proc.pid) - fds_before) / n
        print(f"{n} partitions: {per_partition / 1024:.1f} KiB and {fds:.1f} open files each")
        assert per_partition < 64 * 1024, per_partition
        assert fds <= 4, fds
    finally:
        b.stop()
