#!/usr/bin/env bash
# The lake view (BENCHMARKS.md, "The lake view"), on a release broker whose
# cold tier is the S3 test server:
#   1. HISTORY_MIB of 1 KiB JSON events (event times spread over a day) in
#      each of two topics, uploaded with the lake off;
#   2. hot-tail end-to-end latency at RATE records/s for SECONDS_EACH,
#      alone, then while the first topic's history is being translated
#      (lake.enable turned on just before);
#   3. the second topic translated with nothing else running: wall time and
#      the broker's CPU time from enabling the lake to a table that covers
#      the whole stream, GETs and PUTs, and the raw ranged-GET rate of the
#      same bucket (the ceiling of reading the history, 8 MiB per GET as
#      the translator reads).
# Prints one JSON object. Usage:
#   scripts/bench-lake.sh
#   HISTORY_MIB=256 SECONDS_EACH=10 scripts/bench-lake.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
HISTORY_MIB=${HISTORY_MIB:-1024}
RATE=${RATE:-20000}
SECONDS_EACH=${SECONDS_EACH:-15}
PARTITIONS=${PARTITIONS:-4}
cargo build -j2 --release --bin strata --bin strata-bench >&2
S=$PWD/target/release/strata
B=$PWD/target/release/strata-bench
PY=$PWD/.venv/bin/python
[ -x "$PY" ] || { echo "run scripts/install-test-deps.sh first" >&2; exit 1; }
bench_work lake
start_s3
s3_env "$S3_PORT"
REMOTE=s3://strata/bench
mkfifo "$WORK/out"
"$S" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$WORK/data" --remote "$REMOTE" \
    --set remote.log.manager.task.interval.ms=1000 --set lake.translation.interval.ms=500 \
    --set lake.translation.max.bytes.per.second=10000000000 \
    >"$WORK/out" 2>"$WORK/strata.log" &
PID=$!
PIDS+=($PID)
exec 7<"$WORK/out"
read -r line <&7
ADDR=${line#strata listening on }
read -r line <&7
METRICS=${line#strata metrics on }
cat <&7 >/dev/null &
exec 7<&-

for t in lake-a lake-b; do
    "$B" produce --bootstrap "$ADDR" --topic "$t" --records $((HISTORY_MIB * 1024)) --json-events \
        --partitions "$PARTITIONS" --topic-config segment.bytes=67108864 --topic-config segment.ms=2000 >/dev/null
done
wait_uploaded "$ADDR" lake-a
wait_uploaded "$ADDR" lake-b
sync

enable() {
    "$PY" - "$ADDR" "$1" <<'PYEOF'
import sys
import warnings
from confluent_kafka.admin import AdminClient, ConfigResource
warnings.simplefilter("ignore", DeprecationWarning)
addr, topic = sys.argv[1:]
admin = AdminClient({"bootstrap.servers": addr})
res = ConfigResource("TOPIC", topic, set_config={
    "segment.bytes": "67108864", "segment.ms": "2000", "lake.enable": "true",
    "lake.event.time": "/event_ts", "lake.columns": "user:string,amount:double",
    "lake.commit.interval.ms": "30000"})
admin.alter_configs([res])[res].result(10)
PYEOF
}
caught_up() {
    "$S" lake status "$1" --json --bootstrap "$ADDR" --remote "$REMOTE" 2>/dev/null |
        "$PY" -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["snapshot_id"] and all(p["lag_records"]==0 for p in d["partitions"]) else 1)'
}
wait_caught_up() {
    for _ in $(seq 6000); do
        caught_up "$1" && return 0
        sleep 0.2
    done
    echo "the lake of $1 did not catch up" >&2
    return 1
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
metric() { curl -s "http://$METRICS/metrics" | awk -v m="$1" '$1 ~ "^"m { s += $2 } END { print s + 0 }'; }

echo "== e2e alone" >&2
"$B" --json e2e --bootstrap "$ADDR" --topic e2e-alone --rate "$RATE" --seconds "$SECONDS_EACH" >"$WORK/alone.json"
echo "== e2e while lake-a is translated" >&2
enable lake-a
"$B" --json e2e --bootstrap "$ADDR" --topic e2e-lake --rate "$RATE" --seconds "$SECONDS_EACH" >"$WORK/lake.json"
still_translating=1
caught_up lake-a && still_translating=0
wait_caught_up lake-a

echo "== lake-b translated alone" >&2
read_before=$(metric strata_lake_read_bytes_total)
puts_before=$(metric strata_lake_puts_total)
put_bytes_before=$(metric strata_lake_put_bytes_total)
ticks_before=$(cpu_ticks)
t0=$(date +%s.%N)
enable lake-b
wait_caught_up lake-b
t1=$(date +%s.%N)
ticks_after=$(cpu_ticks)
read_after=$(metric strata_lake_read_bytes_total)
puts_after=$(metric strata_lake_puts_total)
put_bytes_after=$(metric strata_lake_put_bytes_total)
echo "== ceiling: raw ranged GETs of the same segments" >&2
"$B" --json limit get --remote "$REMOTE" --prefix lake-b- --chunk-bytes 8388608 >"$WORK/get.json"

"$PY" - "$WORK" <<PYEOF
import json, sys
work = sys.argv[1]
load = lambda n: json.load(open(f"{work}/{n}.json"))
hz = $(getconf CLK_TCK)
read = $read_after - $read_before
wall = $t1 - $t0
cpu = ($ticks_after - $ticks_before) / hz
alone, lake, get = load("alone"), load("lake"), load("get")
get_mb = get.get("mb_per_sec") or get.get("throughput_mb_per_sec")
out = {
    "history_mib_per_topic": $HISTORY_MIB,
    "translation": {
        "records_bytes": read, "wall_s": round(wall, 2), "broker_cpu_s": round(cpu, 2),
        "mb_per_sec": round(read / 1e6 / wall, 1),
        "mb_per_cpu_sec": round(read / 1e6 / cpu, 1),
        "puts": $puts_after - $puts_before,
        "puts_per_gb": round(($puts_after - $puts_before) / (read / 1e9), 1),
        "parquet_bytes_per_record_byte": round(($put_bytes_after - $put_bytes_before) / read, 3),
        "ceiling_raw_get_mb_per_sec": get_mb,
        "of_ceiling": round(read / 1e6 / wall / get_mb, 2) if get_mb else None,
    },
    "e2e": {
        "rate": $RATE,
        "alone_p50_ms": alone.get("e2e_p50_ms"), "alone_p99_ms": alone.get("e2e_p99_ms"),
        "translating_p50_ms": lake.get("e2e_p50_ms"), "translating_p99_ms": lake.get("e2e_p99_ms"),
        "p99_ratio": round(lake["e2e_p99_ms"] / alone["e2e_p99_ms"], 2),
        "translation_still_running_at_end": bool($still_translating),
    },
}
print(json.dumps(out, indent=2))
PYEOF
