#!/usr/bin/env bash
# The hot tail under load (BENCHMARKS.md, "The hot tail"): end-to-end latency
# at RATE records/s of 1 KiB (half of what a producer and a consumer sustain
# together on this machine) for SECONDS, on a release broker with the
# default configs that already holds HISTORY_MIB of history:
#   1. alone;
#   2. beside a replay of that history from the cold tier at full speed;
#   3. while the upload pass copies UPLOAD_MIB of newly sealed segments.
# Each is run RUNS times on the same broker, each run's topics deleted
# after it (the script needs about 10 GB of disk at most). Prints one JSON
# object. Usage:
#   scripts/bench-tail.sh
#   RUNS=1 SECONDS_EACH=10 scripts/bench-tail.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-100000}
SECONDS_EACH=${SECONDS_EACH:-15}
HISTORY_MIB=${HISTORY_MIB:-2048}
UPLOAD_MIB=${UPLOAD_MIB:-1024}
RUNS=${RUNS:-3}
cargo build -j2 --release --bin strata --bin strata-bench >&2
S=$PWD/target/release/strata
B=$PWD/target/release/strata-bench
WORK=$(mktemp -d /tmp/strata-tail.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkfifo "$WORK/out"
# The defaults, but for the upload pass of part 3, which is asked for by
# the topic's own segment size below rather than by a shorter interval.
"$S" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/out" 2>"$WORK/strata.log" &
PID=$!
exec 7<"$WORK/out"
read -r line <&7
ADDR=${line#strata listening on }
cat <&7 >/dev/null &
exec 7<&-

# The history: in the cold tier once uploaded (the topic keeps one byte
# locally), so that a replay reads the store.
"$B" produce --bootstrap "$ADDR" --topic history --records $((HISTORY_MIB * 1024)) \
    --topic-config segment.bytes=268435456 --topic-config local.retention.bytes=1 >/dev/null
run() {
    local label=$1
    shift
    for n in $(seq "$RUNS"); do
        echo "== $label $n" >&2
        sync
        "$B" --json e2e --bootstrap "$ADDR" --topic "e2e-$label-$n" --rate "$RATE" --seconds "$SECONDS_EACH" "$@" \
            >"$WORK/$label-$n.json"
        # Each run writes 1.5 GB (and its copy in the cold tier): gone before
        # the next, so that the whole script fits this machine's disk.
        "$B" delete-topics --bootstrap "$ADDR" --topic "e2e-$label-$n" >/dev/null
    done
}
# The upload pass runs every 30 s by default: history is in the store after
# at most that.
sleep 35
run alone
run replay --replay-topic history
# Part 3: UPLOAD_MIB in 64 MiB segments sealed just before each run, which
# the next upload pass (at most 30 s later, so the runs are 35 s) copies
# while the tail is measured.
for n in $(seq "$RUNS"); do
    "$B" produce --bootstrap "$ADDR" --topic "bulk-$n" --records $((UPLOAD_MIB * 1024)) \
        --topic-config segment.bytes=67108864 >/dev/null
    # The disk writes the bulk out first: what is measured is the uploads.
    sync
    echo "== uploads $n" >&2
    before=$(grep -c "uploaded segment" "$WORK/strata.log" || true)
    "$B" --json e2e --bootstrap "$ADDR" --topic "e2e-uploads-$n" --rate "$RATE" --seconds 35 >"$WORK/uploads-$n.json"
    after=$(grep -c "uploaded segment" "$WORK/strata.log" || true)
    echo "{\"segments_uploaded_during\": $((after - before))}" >"$WORK/uploads-$n-count.json"
    "$B" delete-topics --bootstrap "$ADDR" --topic "bulk-$n" --topic "e2e-uploads-$n" >/dev/null
done

python3 - "$WORK" "$RUNS" "$RATE" <<'EOF'
import json, sys
work, runs, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
load = lambda n: json.load(open(f"{work}/{n}.json"))
out = {"rate": rate, "runs": {}}
for label in ("alone", "replay", "uploads"):
    rows = []
    for n in range(1, runs + 1):
        d = load(f"{label}-{n}")
        row = {k: d.get(k) for k in ("e2e_p50_ms", "e2e_p99_ms", "e2e_p999_ms", "replay_mb_per_sec")
               if d.get(k) is not None}
        if label == "uploads":
            row.update(load(f"uploads-{n}-count"))
        rows.append(row)
    out["runs"][label] = rows
med = lambda label, k: sorted(r[k] for r in out["runs"][label])[runs // 2]
out["median_p99_ms"] = {l: med(l, "e2e_p99_ms") for l in ("alone", "replay", "uploads")}
out["p99_ratio_replay_over_alone"] = out["median_p99_ms"]["replay"] / out["median_p99_ms"]["alone"]
out["p99_ratio_uploads_over_alone"] = out["median_p99_ms"]["uploads"] / out["median_p99_ms"]["alone"]
print(json.dumps(out, indent=2))
EOF
