#!/usr/bin/env bash
# The bucket benchmarks of BENCHMARKS.md, against the S3 test server
# (s3s-fs, from scripts/install-test-deps.sh):
#   1. restore: a primary fills a bucket with SEGMENTS small segments (16 KiB
#      each, over PARTITIONS partitions), is killed, its data directory is
#      deleted, and `strata --restore` rebuilds it; the time from the start
#      of the process until it serves, and the restore's own time from its
#      log line;
#   2. read replica: HISTORY_RECORDS records of 1 KiB in 16 MiB segments, all
#      in the cold tier, replayed from offset 0 through the primary and
#      through a read replica of the same bucket, with the ranged-GET
#      ceiling of the same bytes;
#   3. the loss window's cost: a topic with segment.ms=LOSS_MS written at
#      RATE records/s for LOSS_SECONDS: objects written per hour and
#      partition, and the size of the small segments.
# Prints one JSON object. Usage:
#   scripts/bench-bucket.sh
#   SEGMENTS=2000 HISTORY_RECORDS=65536 scripts/bench-bucket.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEGMENTS=${SEGMENTS:-10000}
PARTITIONS=${PARTITIONS:-8}
HISTORY_RECORDS=${HISTORY_RECORDS:-262144}
LOSS_MS=${LOSS_MS:-5000}
RATE=${RATE:-2000}
LOSS_SECONDS=${LOSS_SECONDS:-60}
cargo build -j2 --release --bin strata --bin strata-bench >&2
S=$PWD/target/release/strata
B=$PWD/target/release/strata-bench
. scripts/bench-lib.sh
bench_work bucket
start_s3
s3_env "$S3_PORT"
URL=s3://strata/bench
COMMON=(--remote "$URL" --set remote.log.manager.task.interval.ms=200 --set log.retention.check.interval.ms=1000
        --set log.flush.scheduler.interval.ms=200 --set remote.log.owner.lease.ms=2000)

# start_broker NAME ARGS...: starts strata on a free port with data in
# $WORK/NAME; sets ADDR, METRICS, PID and STARTED_NS/READY_NS.
start_broker() {
    local name=$1
    shift
    rm -f "$WORK/$name.out"
    mkfifo "$WORK/$name.out"
    STARTED_NS=$(date +%s%N)
    "$S" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$WORK/$name" "$@" >"$WORK/$name.out" 2>>"$WORK/$name.log" &
    PID=$!
    PIDS+=($PID)
    exec 7<"$WORK/$name.out"
    if ! read -r line <&7; then
        echo "strata $name did not start:" >&2
        tail -20 "$WORK/$name.log" >&2
        exit 1
    fi
    READY_NS=$(date +%s%N)
    ADDR=${line#strata listening on }
    read -r line <&7
    METRICS=${line#strata metrics on }
    cat <&7 >/dev/null &
    exec 7<&-
}

count_objects() { find "$WORK/s3/strata/bench" -path "*$1*" -name "*.$2" | wc -l; }

# 1 and 2: fill the bucket.
start_broker primary "${COMMON[@]}"
PRIMARY=$ADDR
PRIMARY_PID=$PID
# 16 KiB segments of 1 KiB records: batches of at most 14,000 bytes (13
# records), one per segment, since a segment rolls between batches. The hot
# tier lets them go once uploaded: every local segment holds its files open,
# and ten thousand of them would need more than the default open-file limit.
"$B" produce --bootstrap "$PRIMARY" --topic many --partitions "$PARTITIONS" --records $((SEGMENTS * 13)) \
    --topic-config segment.bytes=16384 --topic-config segment.ms=1000 --topic-config local.retention.ms=0 \
    -X batch.size=14000 \
    -X message.timeout.ms=1800000 >/dev/null
"$B" produce --bootstrap "$PRIMARY" --topic history --records "$HISTORY_RECORDS" \
    --topic-config segment.bytes=16777216 --topic-config segment.ms=1000 --topic-config local.retention.ms=0 >/dev/null
wait_uploaded "$PRIMARY" many
wait_uploaded "$PRIMARY" history
segments=$(count_objects many- log)
echo "bucket holds $segments segments of topic many" >&2

# 2. Replay through the primary and through a read replica.
start_broker replica --read-replica --remote "$URL" --set remote.log.replica.refresh.ms=500
REPLICA=$ADDR
for _ in $(seq 600); do uploaded "$REPLICA" history && break; sleep 0.5; done
"$B" --json replay --bootstrap "$PRIMARY" --topic history >"$WORK/replay-primary.json"
"$B" --json replay --bootstrap "$REPLICA" --topic history >"$WORK/replay-replica.json"
"$B" --json limit get --remote "$URL" --max-bytes $((HISTORY_RECORDS * 1024)) >"$WORK/limit-get.json"

# 3. The loss window's cost.
objects_before=$(find "$WORK/s3/strata/bench" -type f | wc -l)
"$B" e2e --bootstrap "$PRIMARY" --topic steady --rate "$RATE" --seconds "$LOSS_SECONDS" \
    --topic-config segment.ms="$LOSS_MS" >/dev/null
sleep $(( (LOSS_MS + 2000) / 1000 ))
steady_objects=$(find "$WORK/s3/strata/bench" -path "*steady-*" -type f -not -name manifest.json | wc -l)
steady_segments=$(count_objects steady- log)
steady_bytes=$(find "$WORK/s3/strata/bench" -path "*steady-*" -name "*.log" -printf "%s\n" | awk '{s+=$1} END {print s+0}')

# 1. Restore after the disk is lost.
kill -9 "$PRIMARY_PID"
sleep 0.2
rm -rf "$WORK/primary"
start_broker primary "${COMMON[@]}" --restore
restore_total_ms=$(( (READY_NS - STARTED_NS) / 1000000 ))
# The log has colour codes around field names; they go before the search.
restore_log_ms=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/primary.log" | grep -o 'restored the cluster from the bucket.*' \
    | grep -o 'millis=[0-9]*' | tail -1 | cut -d= -f2 || true)

python3 - "$WORK" "$segments" "$restore_total_ms" "${restore_log_ms:-0}" "$steady_objects" "$steady_segments" \
    "$steady_bytes" "$LOSS_MS" "$LOSS_SECONDS" "$RATE" <<'EOF'
import json, sys
work, segments, total, logged, objs, segs, seg_bytes, loss_ms, secs, rate = sys.argv[1:]
load = lambda n: json.load(open(f"{work}/{n}.json"))
p, r, g = load("replay-primary"), load("replay-replica"), load("limit-get")
print(json.dumps({
    "restore": {"segments": int(segments), "process_start_to_serving_ms": int(total),
                "restore_ms": int(logged),
                "note": "start to serving includes waiting out the killed primary's 2 s lease"},
    "replay_mb_per_sec": {"primary": p["mb_per_sec"], "read_replica": r["mb_per_sec"],
                          "ranged_get_ceiling": g["mb_per_sec"],
                          "replica_over_primary": r["mb_per_sec"] / p["mb_per_sec"],
                          "replica_over_ceiling": r["mb_per_sec"] / g["mb_per_sec"]},
    "first_record_ms": {"primary": p["first_record_ms"], "read_replica": r["first_record_ms"]},
    "loss_window": {"segment_ms": int(loss_ms), "seconds": int(secs), "records_per_sec": int(rate),
                    "objects": int(objs), "segments": int(segs),
                    "objects_per_hour_per_partition": int(objs) * 3600 / int(secs),
                    "mean_segment_bytes": int(seg_bytes) / max(1, int(segs))},
}, indent=2))
EOF
