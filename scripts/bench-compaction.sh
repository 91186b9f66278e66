#!/usr/bin/env bash
# The log cleaner benchmark. Fills a compacted topic with KEYED updates
# (RECORDS records of SIZE bytes over KEYS keys) on a broker with the cleaner
# off, then restarts it with the cleaner on and measures:
#   - cleaner throughput: bytes of dirty log cleaned per second of wall
#     time, from the restart until the partition's dirty ratio is 0;
#   - its ceiling, measured in the same run: reading the same segment files
#     twice from the page cache, as the cleaner does;
#   - the produce and end-to-end latencies of a hot topic written and read
#     at a fixed RATE for SECONDS_HOT while the cleaner runs, and again once
#     it is idle (the ceiling for that load).
# Prints one JSON object. Usage:
#   scripts/bench-compaction.sh
#   RECORDS=16000000 KEYS=200000 scripts/bench-compaction.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-8000000}
KEYS=${KEYS:-100000}
SIZE=${SIZE:-200}
# The hot tail: records per second of SIZE bytes, and for how long.
RATE=${RATE:-10000}
SECONDS_HOT=${SECONDS_HOT:-4}
cargo build -j2 --release --bin strata --bin strata-bench >&2
STRATA=${STRATA:-target/release/strata}
BENCH=target/release/strata-bench

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d)
port=$(free_port)
mport=$(free_port)
start_broker() {
  "$STRATA" --listen 127.0.0.1:"$port" --metrics-listen 127.0.0.1:"$mport" --data-dir "$dir/data" "$@" >>"$dir/broker.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.1
  done
}
metric() {
  python3 - "$mport" "$1" <<'EOF'
import sys, urllib.request
port, name = sys.argv[1], sys.argv[2]
text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
vals = [float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
        if l.startswith(name + "{") and 'topic="compacted"' in l]
print(vals[0] if vals else -1)
EOF
}

# 1. The dirty log, with the cleaner off.
start_broker --set log.cleaner.enable=false
"$BENCH" produce --json --bootstrap 127.0.0.1:"$port" --topic compacted --records "$RECORDS" \
  --size "$SIZE" --keys "$KEYS" --topic-config cleanup.policy=compact \
  --topic-config segment.bytes=67108864 --topic-config min.cleanable.dirty.ratio=0.01 \
  -X linger.ms=20 -X batch.size=1000000 >"$dir/fill.json" 2>/dev/null
kill "$pid"; wait "$pid" 2>/dev/null || true
dirty=$(du -sb "$dir"/data/compacted-0/*.log | awk '{s+=$1} END {print s}')

# 2. The ceiling: the cleaner reads the dirty log twice (once to map its
# keys, once to rewrite it); reading the same files twice from the page
# cache is the least the machine must do for it (what is kept and written
# back is a few percent).
sync
cat "$dir"/data/compacted-0/*.log >/dev/null
ceiling_start=$(date +%s.%N)
cat "$dir"/data/compacted-0/*.log >/dev/null
cat "$dir"/data/compacted-0/*.log >/dev/null
ceiling_s=$(echo "$(date +%s.%N) - $ceiling_start" | bc)

# 3. The cleaner, with a hot producer on another topic meanwhile.
start_broker --set log.cleaner.backoff.ms=100
clean_start=$(date +%s.%N)
"$BENCH" e2e --json --bootstrap 127.0.0.1:"$port" --topic hot --rate "$RATE" \
  --seconds "$SECONDS_HOT" --size "$SIZE" >"$dir/hot-cleaning.json" 2>/dev/null &
hot=$!
while true; do
  ratio=$(metric strata_partition_dirty_ratio)
  passes=$(metric strata_cleaner_passes_total)
  if [ "$ratio" = "0" ] || [ "$ratio" = "0.0" ]; then
    if [ "$passes" != "-1" ]; then break; fi
  fi
  sleep 0.1
done
clean_s=$(echo "$(date +%s.%N) - $clean_start" | bc)
wait "$hot"
cleaned=$(metric strata_cleaner_dirty_bytes_cleaned_total)
written=$(metric strata_cleaner_bytes_written_total)

# 4. The same hot load with the cleaner idle, on a broker started the same
# way (the log is clean now, so the cleaner has nothing to do).
kill "$pid"; wait "$pid" 2>/dev/null || true
start_broker --set log.cleaner.backoff.ms=100
"$BENCH" e2e --json --bootstrap 127.0.0.1:"$port" --topic hot-idle --rate "$RATE" \
  --seconds "$SECONDS_HOT" --size "$SIZE" >"$dir/hot-idle.json" 2>/dev/null
kill "$pid"; wait "$pid" 2>/dev/null || true

python3 - "$dir" "$dirty" "$ceiling_s" "$clean_s" "$cleaned" "$written" <<'EOF'
import json, sys
d, dirty, ceiling_s, clean_s, cleaned, written = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
def load(n):
    return json.load(open(f"{d}/{n}.json"))
busy, idle = load("hot-cleaning"), load("hot-idle")
keys = ["produce_p50_ms", "produce_p99_ms", "e2e_p50_ms", "e2e_p99_ms"]
mb = 1e6
print(json.dumps({
    "dirty_log_mb": round(dirty / mb, 1),
    "cleaned_dirty_mb": round(cleaned / mb, 1),
    "written_mb": round(written / mb, 1),
    "cleaner_seconds": round(clean_s, 2),
    "cleaner_mb_per_s": round(cleaned / mb / clean_s, 1),
    "ceiling_read_twice_mb_per_s": round(dirty / mb / ceiling_s, 1),
    "cleaner_to_ceiling": round((cleaned / clean_s) / (dirty / ceiling_s), 3),
    "hot_while_cleaning": {k: busy.get(k) for k in keys},
    "hot_cleaner_idle": {k: idle.get(k) for k in keys},
    "hot_p99_ratio_to_idle": {k: round(busy[k] / idle[k], 2) for k in ["produce_p99_ms", "e2e_p99_ms"] if busy.get(k) and idle.get(k)},
}, indent=1))
EOF
rm -rf "$dir"
