#!/usr/bin/env bash
# The idle long-poll benchmark: one producer writing to a single partition
# while a consumer is parked on each of IDLE idle partitions. Starts a fresh
# broker (STRATA, default the release build) with Strata's defaults, runs
# `strata-bench idle-fetch` with and without the idle consumers, and prints
# the two JSON reports. Usage:
#   scripts/bench-idle.sh                      # this checkout's release build
#   STRATA=/path/to/strata scripts/bench-idle.sh   # another build, same load
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${IDLE:-1000}
RECORDS=${RECORDS:-200000}
cargo build -j2 --release --bin strata --bin strata-bench >&2
STRATA=${STRATA:-target/release/strata}
BENCH=target/release/strata-bench

run() {
  local idle=$1 dir port mport pid
  dir=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$STRATA" --listen 127.0.0.1:"$port" --metrics-listen 127.0.0.1:"$mport" --data-dir "$dir" >"$dir.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.1
  done
  sync
  "$BENCH" idle-fetch --json --bootstrap 127.0.0.1:"$port" --idle-partitions "$idle" \
    --records "$RECORDS" --broker-pid "$pid" 2>/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir" "$dir.log"
}

run 0
run "$IDLE"
