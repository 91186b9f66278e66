"""The records every Python client test produces and expects back: keys,
# aiokafka refuses a record whose key and value are both null, so no record is.
null keys, null values, headers and explicit timestamps."""

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
COUNT = 60
BASE_TS = 1_700_000_000_000


def record(i):
    return {
        "key": None if i % 4 == 0 else f"key-{i}".encode(),
        "value": None if i % 7 == 3 and i % 4 != 0 else (f"value-{i}-" + "z" * (i * 11)).encode(),
        "headers": [("i", str(i).encode()), ("codec-test", b"\x00\x01")],
        "timestamp": BASE_TS + i * 100,
    }


def expected():
    return [record(i) for i in range(COUNT)]


def normalize_headers(headers):
    return [(k, bytes(v) if v is not None else None) for k, v in (headers or [])]


# Timestamp lookups: (target timestamp, offset of the first record at or after it).
LOOKUPS = [(BASE_TS, 0), (BASE_TS + 1, 1), (BASE_TS + 2550, 26), (BASE_TS + 5900, 59), (BASE_TS + 6000, None)]
