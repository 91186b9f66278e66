"""`strata topics describe`: the tiering status a person reads, for a topic
with data in both tiers, through the same binary against a running broker."""

import subprocess
import time

from conftest import fill_tiered_topic, strata_bin


def describe(broker, *topic):
    out = subprocess.run([strata_bin(), "topics", "describe", "--bootstrap", broker.addr, *topic],
                         capture_output=True, text=True, timeout=30)
    return out


def rows(text):
    lines = text.strip().splitlines()
    header = lines[0].split()
    # Byte cells hold a number and a unit ("1.2 MiB"); the lag "N records".
    out = []
    for line in lines[1:]:
        cells = line.split()
        row = dict(zip(header[:6], cells[:6]))
        row["LOCAL-BYTES"] = " ".join(cells[6:8])
        row["REMOTE-BYTES"] = " ".join(cells[8:10])
        row["UPLOAD-LAG"] = " ".join(cells[10:12])
        row["CLEANER"] = " ".join(cells[12:])
        out.append(row)
    return out


def test_topics_describe_shows_both_tiers(tiered_broker):
    records = 4000
    fill_tiered_topic(tiered_broker, "history", records, partitions=2, config={"local.retention.bytes": "1"})

    deadline = time.time() + 30
    while True:
        out = describe(tiered_broker, "history")
        assert out.returncode == 0, out.stderr
        table = rows(out.stdout)
        p0 = table[0]
        if int(p0["LOCAL-START"]) > records / 2 or time.time() > deadline:
            break
        time.sleep(0.2)
    print(out.stdout)
    assert [(r["TOPIC"], r["PARTITION"]) for r in table] == [("history", "0"), ("history", "1")]
    assert p0["LOG-START"] == "0"
    assert int(p0["LOCAL-START"]) > records / 2
    last_tiered = int(p0["LAST-TIERED"])
    # The hot tier starts right after the last uploaded segment it dropped.
    assert int(p0["LOCAL-START"]) <= last_tiered + 1
    assert p0["HIGH-WATERMARK"] == str(records)
    assert p0["UPLOAD-LAG"] == f"{records - last_tiered - 1} records"
    assert p0["REMOTE-BYTES"].endswith("KiB") or p0["REMOTE-BYTES"].endswith("MiB")
    # The empty partition.
    assert table[1]["LAST-TIERED"] == "-" and table[1]["HIGH-WATERMARK"] == "0"
    assert table[1]["REMOTE-BYTES"] == "0 B" and table[1]["UPLOAD-LAG"] == "0 records"

    # Every topic without a name; a missing topic is named in the error.
    everything = describe(tiered_broker)
    assert everything.returncode == 0 and "history" in everything.stdout
    missing = describe(tiered_broker, "nope")
    assert missing.returncode != 0 and '"nope" does not exist' in missing.stderr


def test_topics_describe_shows_the_cleaner_of_compacted_topics():
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from conftest import Broker
    b = Broker("--set", "log.cleaner.backoff.ms=100")
    try:
        admin = AdminClient({"bootstrap.servers": b.addr})
        admin.create_topics([NewTopic("changelog", 1, 1, config={
            "cleanup.policy": "compact", "segment.bytes": "4096",
            "min.cleanable.dirty.ratio": "0.01"})])["changelog"].result(10)
        p = Producer({"bootstrap.servers": b.addr, "linger.ms": 5})
        # Several batches, so that segments roll and the cleaner has sealed
        # ones to clean.
        for i in range(500):
            p.produce("changelog", key=f"k{i % 5}".encode(), value=b"v" * 100)
            if i % 50 == 49:
                assert p.flush(30) == 0
        deadline = time.time() + 30
        while True:
            out = subprocess.run([strata_bin(), "topics", "describe", "--bootstrap", b.addr,
                                  "--metrics", b.metrics_addr, "changelog"],
                                 capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            row = rows(out.stdout)[0]
            if "ago" in row["CLEANER"] or time.time() > deadline:
                break
            time.sleep(0.2)
        print(out.stdout)
        assert row["UPLOAD-LAG"] == "tiering off"
        assert row["CLEANER"].startswith("compacted, dirty ") and row["CLEANER"].endswith("s ago"), row
        # Without the metrics endpoint, the policy alone.
        out = describe(b, "changelog")
        assert rows(out.stdout)[0]["CLEANER"] == "compacted (--metrics for more)"
    finally:
        b.stop()
