#!/usr/bin/env bash
# Strata beside krabka (../shared/PEERS.md; its binaries built by hand from
# its repository, as PEERS.md says, and passed in KRABKA_DIR), with the same
# strata-bench load: produce of RECORDS 1 KiB records to one partition, then
# a tail consume of them, in PAIRS alternating runs (Strata, krabka,
# Strata, ...), each broker fresh. Reports per run MB/s and the broker's CPU
# seconds per GB (user + system, from /proc), and the median ratio
# Strata/krabka. Prints one JSON object. Usage:
#   KRABKA_DIR=/tmp/krabka/target/release scripts/bench-peer.sh
#   STRATA_ARGS="--set fetch.sendfile.enable=false" ...   # Strata with other settings
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-1000000}
PAIRS=${PAIRS:-3}
KRABKA_DIR=${KRABKA_DIR:?set KRABKA_DIR to the directory holding crabka-broker and crabka-format}
cargo build -j2 --release --bin strata --bin strata-bench >&2
S=$PWD/target/release/strata
B=$PWD/target/release/strata-bench
WORK=$(mktemp -d /tmp/strata-peer.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
. scripts/bench-lib.sh
TICKS=$(getconf CLK_TCK)
cpu_secs() { awk -v t="$TICKS" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }

start_strata() {
    rm -rf "$WORK/data"
    local port
    port=$(free_port)
    # shellcheck disable=SC2086
    "$S" --listen 127.0.0.1:"$port" --metrics-listen 127.0.0.1:0 --data-dir "$WORK/data" ${STRATA_ARGS:-} >/dev/null 2>"$WORK/strata.log" &
    PID=$!
    ADDR=127.0.0.1:$port
}
start_krabka() {
    rm -rf "$WORK/data"
    local port cport
    port=$(free_port)
    cport=$(free_port)
    "$KRABKA_DIR/crabka-format" --log-dir "$WORK/data" --node-id 1 --standalone \
        --controller-listener 127.0.0.1:"$cport" >/dev/null 2>&1
    RUST_LOG=warn OTEL_SDK_DISABLED=true "$KRABKA_DIR/crabka-broker" --listen-addr 127.0.0.1:"$port" \
        --advertised-listener 127.0.0.1:"$port" --log-dir "$WORK/data" --metrics-listen-addr none \
        >/dev/null 2>"$WORK/krabka.log" &
    PID=$!
    ADDR=127.0.0.1:$port
}
wait_ready() {
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('${ADDR%:*}', ${ADDR#*:}), 1)" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "broker at $ADDR did not come up" >&2
    exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }

# run BROKER N: one produce and one tail consume against a fresh broker.
run() {
    local who=$1 n=$2
    "start_$who"
    wait_ready
    sleep 1
    sync
    local c0 c1 c2
    c0=$(cpu_secs "$PID")
    "$B" --json produce --bootstrap "$ADDR" --topic t --partitions 1 --records "$RECORDS" >"$WORK/$who-$n-produce.json"
    c1=$(cpu_secs "$PID")
    "$B" --json consume --bootstrap "$ADDR" --topic t --records "$RECORDS" >"$WORK/$who-$n-consume.json"
    c2=$(cpu_secs "$PID")
    awk -v a="$c0" -v b="$c1" -v c="$c2" 'BEGIN { printf "{\"produce_cpu\": %.3f, \"consume_cpu\": %.3f}\n", b - a, c - b }' \
        >"$WORK/$who-$n-cpu.json"
    stop
}
for n in $(seq "$PAIRS"); do
    echo "== pair $n" >&2
    run strata "$n"
    run krabka "$n"
done

python3 - "$WORK" "$PAIRS" "$RECORDS" <<'EOF'
import json, statistics, sys
work, pairs, records = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
load = lambda n: json.load(open(f"{work}/{n}.json"))
gb = records * 1024 / 1e9
out = {"records": records, "record_bytes": 1024, "pairs": pairs, "runs": {}}
for who in ("strata", "krabka"):
    rows = []
    for n in range(1, pairs + 1):
        p, c, cpu = load(f"{who}-{n}-produce"), load(f"{who}-{n}-consume"), load(f"{who}-{n}-cpu")
        rows.append({"produce_mb_per_sec": p["mb_per_sec"], "consume_mb_per_sec": c["mb_per_sec"],
                     "produce_cpu_s_per_gb": cpu["produce_cpu"] / gb,
                     "consume_cpu_s_per_gb": cpu["consume_cpu"] / gb})
    out["runs"][who] = rows
ratio = lambda key: statistics.median(s[key] / k[key] for s, k in zip(out["runs"]["strata"], out["runs"]["krabka"]))
out["median_ratio_strata_over_krabka"] = {k: ratio(k) for k in
    ("produce_mb_per_sec", "consume_mb_per_sec", "produce_cpu_s_per_gb", "consume_cpu_s_per_gb")}
print(json.dumps(out, indent=2))
EOF
