#!/usr/bin/env bash
# Replay at the speed of a real bucket (BENCHMARKS.md, "Replay through a
# realistic bucket"). The S3 test server (s3s-fs, from
# scripts/install-test-deps.sh) sits behind strata-bucket-proxy, which
# answers like a real bucket: FIRST_BYTE_MS (plus up to JITTER_MS) before
# every answer's first byte and MB_PER_SEC per connection. Measured:
#   1. a seek by time 30 days back into 60 days of history: the time to the
#      first record (the ListOffsets lookup and the first fetch), on a fresh
#      broker;
#   2. replays from offset 0 of HISTORY_MIB of history in one partition and
#      spread over 8 partitions, each on a freshly started broker (empty
#      caches): MB/s, time to the first record, and the GETs the store saw
#      per GiB replayed (the cost of read-ahead nobody used);
#   3. the ceilings for the same bytes: `strata-bench limit get` with one
#      GET at a time and with CONCURRENCY GETs in flight.
# Prints one JSON object. Usage:
#   scripts/bench-replay.sh
#   HISTORY_MIB=512 scripts/bench-replay.sh      # quicker, noisier
set -euo pipefail
cd "$(dirname "$0")/.."
HISTORY_MIB=${HISTORY_MIB:-2048}
FIRST_BYTE_MS=${FIRST_BYTE_MS:-30}
JITTER_MS=${JITTER_MS:-10}
MB_PER_SEC=${MB_PER_SEC:-100}
CONCURRENCY=${CONCURRENCY:-8}
# 64 MiB segments are uploaded in parts; s3s-fs stores no ETag for those and
# hashes the whole object at every GET (about 3 ms per MiB here), which real
# buckets do not do. SEGMENT_BYTES=8388608 (one PUT each) leaves that out.
SEGMENT_BYTES=${SEGMENT_BYTES:-67108864}
RECORDS=$((HISTORY_MIB * 1024))
cargo build -j2 --release --bin strata --bin strata-bench --bin strata-bucket-proxy >&2
S=$PWD/target/release/strata
B=$PWD/target/release/strata-bench
P=$PWD/target/release/strata-bucket-proxy
. scripts/bench-lib.sh
bench_work replay
start_s3
"$P" --upstream "$S3_PORT" --first-byte-ms "$FIRST_BYTE_MS" --jitter-ms "$JITTER_MS" --mb-per-sec "$MB_PER_SEC" >"$WORK/proxy.out" &
PIDS+=($!)
sleep 0.5
s3_env "$(sed -n 's/listening on 127.0.0.1://p' "$WORK/proxy.out")"
URL=s3://strata/bench
COMMON=(--remote "$URL" --set remote.log.manager.task.interval.ms=200 --set log.retention.check.interval.ms=500
        --set remote.log.owner.lease.ms=1000)

# start_broker ARGS...: (re)starts strata on the same data directory; sets
# ADDR, METRICS and PID.
start_broker() {
    rm -f "$WORK/broker.out"
    mkfifo "$WORK/broker.out"
    "$S" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$WORK/broker" "${COMMON[@]}" "$@" \
        >"$WORK/broker.out" 2>>"$WORK/broker.log" &
    PID=$!
    PIDS+=($PID)
    exec 7<"$WORK/broker.out"
    if ! read -r line <&7; then
        echo "strata did not start:" >&2
        tail -20 "$WORK/broker.log" >&2
        exit 1
    fi
    ADDR=${line#strata listening on }
    read -r line <&7
    METRICS=${line#strata metrics on }
    cat <&7 >/dev/null &
    exec 7<&-
}
stop_broker() {
    kill "$PID"
    wait "$PID" 2>/dev/null || true
}
# metric NAME: the sum of a metric's samples.
metric() {
    python3 - "$METRICS" "$1" <<'EOF'
import sys, urllib.request
addr, name = sys.argv[1], sys.argv[2]
text = urllib.request.urlopen(f"http://{addr}/metrics").read().decode()
total = 0.0
for line in text.splitlines():
    if line.startswith("#"):
        continue
    key = line.split("{")[0].split(" ")[0]
    if key == name:
        total += float(line.rsplit(" ", 1)[1])
print(total)
EOF
}
# topic_prefix TOPIC: the key prefix (below the URL's) of a topic's objects.
topic_prefix() {
    local d
    d=$(cd "$WORK/s3/strata/bench" && find . -maxdepth 2 -type d -name "$1-*" | head -1)
    echo "${d#./}/"
}

# The history: 64 MiB segments (the last one rolled by segment.ms) that
# leave local disk once uploaded, with timestamps over 60 days.
start_broker
for t in h1:1 h8:8; do
    "$B" produce --bootstrap "$ADDR" --topic "${t%:*}" --partitions "${t#*:}" --records "$RECORDS" \
        --backdate-days 60 --topic-config segment.bytes="$SEGMENT_BYTES" --topic-config segment.ms=1000 \
        --topic-config local.retention.ms=0 \
        -X message.timeout.ms=1800000 >/dev/null
done
wait_uploaded "$ADDR" h1
wait_uploaded "$ADDR" h8

# 1. A seek by time 30 days back, on a fresh broker.
stop_broker
start_broker
"$B" --json consume --bootstrap "$ADDR" --topic h1 --from days-ago:30 --records 1000 >"$WORK/seek.json"
seek_gets=$(metric strata_remote_gets_total)

# 2. Replays from offset 0, each on a fresh broker.
for t in h1 h8; do
    stop_broker
    start_broker
    "$B" --json replay --bootstrap "$ADDR" --topic "$t" >"$WORK/replay-$t.json"
    echo "{\"gets\": $(metric strata_remote_gets_total), \"bytes\": $(metric strata_remote_read_bytes_total), \
\"unused\": $(metric strata_remote_readahead_unused_bytes_total), \"throttled\": $(metric strata_remote_throttled_total)}" \
        >"$WORK/gets-$t.json"
done
stop_broker

# 3. The ceilings for the same bytes.
for t in h1 h8; do
    prefix=$(topic_prefix "$t")
    "$B" --json limit get --remote "$URL" --prefix "$prefix" --concurrency 1 >"$WORK/get1-$t.json"
    "$B" --json limit get --remote "$URL" --prefix "$prefix" --concurrency "$CONCURRENCY" >"$WORK/getn-$t.json"
done

python3 - "$WORK" "$FIRST_BYTE_MS" "$JITTER_MS" "$MB_PER_SEC" "$CONCURRENCY" "$seek_gets" "$SEGMENT_BYTES" <<'EOF'
import json, sys
work, fb, jitter, mbps, conc, seek_gets = sys.argv[1:7]
load = lambda n: json.load(open(f"{work}/{n}.json"))
out = {"bucket": {"first_byte_ms": int(fb), "jitter_ms": int(jitter), "mb_per_sec_per_connection": int(mbps)},
       "segment_bytes": int(sys.argv[7])}
seek = load("seek")
out["seek_30_days_back"] = {"lookup_ms": seek["seek_ms"], "first_record_after_lookup_ms": seek["first_record_ms"],
                            "first_record_ms": seek["seek_ms"] + seek["first_record_ms"],
                            "gets": float(seek_gets)}
for t, parts in (("h1", 1), ("h8", 8)):
    r, g, c1, cn = load(f"replay-{t}"), load(f"gets-{t}"), load(f"get1-{t}"), load(f"getn-{t}")
    gib = max(g["bytes"], 1) / 2**30
    out[f"replay_{parts}p"] = {
        "mb_per_sec": r["mb_per_sec"], "first_record_ms": r["first_record_ms"],
        "lookup_ms": r["seek_ms"], "first_record_with_lookup_ms": r["seek_ms"] + r["first_record_ms"],
        "ceiling_1_get_mb_per_sec": c1["mb_per_sec"], f"ceiling_{conc}_gets_mb_per_sec": cn["mb_per_sec"],
        "of_parallel_ceiling": r["mb_per_sec"] / cn["mb_per_sec"],
        "over_single_connection": r["mb_per_sec"] / c1["mb_per_sec"],
        "gets_per_gib_replayed": g["gets"] / gib,
        "minimum_gets_per_gib": 2**30 / 4194304,
        "readahead_unused_mib": g["unused"] / 2**20, "throttled": g["throttled"],
    }
print(json.dumps(out, indent=2))
EOF
