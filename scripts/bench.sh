#!/usr/bin/env bash
# Runs the benchmark set of BENCHMARKS.md against a release build of Strata
# on this machine and prints one table of Strata against the machine's own
# limit. Needs the S3 test server from install-test-deps.sh for the S3 rows.
#
#   scripts/bench.sh            # everything (about 10 minutes here)
#   RECORDS=200000 scripts/bench.sh   # a quicker, noisier pass
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RECORDS=${RECORDS:-1000000}          # 1 KiB records per produce/consume run
REPLAY_RECORDS=${REPLAY_RECORDS:-524288}  # 512 MiB of history in the cold tier
E2E_SECONDS=${E2E_SECONDS:-15}

cargo build -j2 --release --bin strata --bin strata-bench
S=$ROOT/target/release/strata
B=$ROOT/target/release/strata-bench
WORK=$(mktemp -d /tmp/strata-bench.XXXXXX)
RESULTS=$WORK/results.jsonl
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_broker NAME ARGS...: starts strata on a free port, sets ADDR.
start_broker() {
    local name=$1
    shift
    mkfifo "$WORK/$name.out"
    "$S" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$WORK/$name" "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
    PIDS+=($!)
    read -r line <"$WORK/$name.out"
    ADDR=${line#strata listening on }
    # Keep the pipe drained.
    cat "$WORK/$name.out" >/dev/null &
}

# run LABEL ARGS...: one strata-bench run, its JSON tagged with LABEL.
run() {
    local label=$1
    shift
    echo "== $label" >&2
    # Each run starts with no dirty pages left by the one before, so that
    # write-back of earlier data does not land on it.
    sync
    "$B" --json "$@" | python3 -c 'import json,sys; d=json.load(sys.stdin); d["label"]=sys.argv[1]; print(json.dumps(d))' "$label" >>"$RESULTS"
}

# Strata's defaults (cold tier on, local-directory store, 1 GiB segments),
# with the tiering passes every 200 ms so that history moves within seconds.
FAST_PASSES=(--set remote.log.manager.task.interval.ms=200 --set log.retention.check.interval.ms=200)

# Hot tier: produce and tail consume.
start_broker hot "${FAST_PASSES[@]}"
run "produce 1p" produce --bootstrap "$ADDR" --topic p1 --partitions 1 --records "$RECORDS"
run "limit produce 1p" limit produce --partitions 1 --records "$RECORDS"
run "produce 8p" produce --bootstrap "$ADDR" --topic p8 --partitions 8 --records "$RECORDS"
run "limit produce 8p" limit produce --partitions 8 --records "$RECORDS"
run "consume tail" consume --bootstrap "$ADDR" --topic p1 --records "$RECORDS"
run "limit consume" limit consume --records "$RECORDS"

# The e2e load: 100 000 records/s by default, half of what a producer and a
# consumer sustain together on this 2-core machine (a producer alone goes
# much faster, but half of that is more than the pair can keep up with).
HALF=${E2E_RATE:-100000}

# fill_history ADDR DIR: writes REPLAY_RECORDS records to topic "history",
# whose 16 MiB segments and one-byte hot tier send its history to the cold
# tier at once, and waits until no more than two local segments are left.
fill_history() {
    "$B" produce --bootstrap "$1" --topic history --records "$REPLAY_RECORDS" \
        --topic-config segment.bytes=16777216 --topic-config local.retention.bytes=1 >/dev/null
    for _ in $(seq 600); do
        local n
        n=$(find "$2/history-0" -name '*.log' | wc -l)
        [ "$n" -le 2 ] && return 0
        sleep 0.5
    done
    echo "the hot tier did not shrink" >&2
    return 1
}

# The hot tail (topics with the defaults) alone, then beside a replay of the
# history from the cold tier; then the replay alone.
fill_history "$ADDR" "$WORK/hot"
run "e2e half load" e2e --bootstrap "$ADDR" --topic e2e --rate "$HALF" --seconds "$E2E_SECONDS"
run "e2e half load + replay" e2e --bootstrap "$ADDR" --topic e2e2 --rate "$HALF" --seconds "$E2E_SECONDS" --replay-topic history
run "replay local store" replay --bootstrap "$ADDR" --topic history
run "limit get local store" limit get --remote "file://$WORK/hot/remote" --max-bytes $((REPLAY_RECORDS * 1024))

if [ -x .tools/s3s/bin/s3s-fs ]; then
    mkdir -p "$WORK/s3/strata"
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    .tools/s3s/bin/s3s-fs --host 127.0.0.1 --port "$PORT" --access-key bench --secret-key benchsecret "$WORK/s3" >"$WORK/s3.log" 2>&1 &
    PIDS+=($!)
    export AWS_ENDPOINT=http://127.0.0.1:$PORT AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchsecret \
        AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
    sleep 0.5
    start_broker s3-tier --remote s3://strata/bench "${FAST_PASSES[@]}"
    fill_history "$ADDR" "$WORK/s3-tier"
    run "replay S3 (s3s-fs)" replay --bootstrap "$ADDR" --topic history
    run "limit get S3 (s3s-fs)" limit get --remote s3://strata/bench --max-bytes $((REPLAY_RECORDS * 1024))
fi

python3 - "$RESULTS" <<'EOF'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    rows[d["label"]] = d
def mb(label):
    return rows[label]["mb_per_sec"] if label in rows else None
def line(what, strata, limit):
    s, l = mb(strata), mb(limit)
    if s is None or l is None:
        return
    print(f"| {what} | {s:.0f} MB/s | {l:.0f} MB/s | {100*s/l:.0f}% |")
print("| work | Strata | limit | ratio |")
print("|---|---|---|---|")
line("produce 1 KiB acks=all, 1 partition", "produce 1p", "limit produce 1p")
line("produce 1 KiB acks=all, 8 partitions", "produce 8p", "limit produce 8p")
line("tail consume", "consume tail", "limit consume")
line("replay, local-directory store", "replay local store", "limit get local store")
line("replay, S3 (s3s-fs)", "replay S3 (s3s-fs)", "limit get S3 (s3s-fs)")
print()
for label in ("produce 1p", "produce 8p"):
    if label in rows:
        d = rows[label]
        print(f"{label}: produce latency p50 {d['produce_p50_ms']:.1f} ms, p99 {d['produce_p99_ms']:.1f} ms (a run that queues everything at once)")
for label in ("replay local store", "replay S3 (s3s-fs)"):
    if label in rows:
        print(f"{label}: first record after {rows[label]['first_record_ms']:.0f} ms")
for label in ("e2e half load", "e2e half load + replay"):
    if label in rows:
        d = rows[label]
        extra = f", replay beside it {d['replay_mb_per_sec']:.0f} MB/s" if "replay_mb_per_sec" in d else ""
        print(f"{label} ({d['target_rate']:.0f} rec/s): e2e p50 {d['e2e_p50_ms']:.1f} ms, p99 {d['e2e_p99_ms']:.1f} ms, p99.9 {d['e2e_p999_ms']:.1f} ms{extra}")
EOF
