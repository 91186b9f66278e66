#!/usr/bin/env bash
# The transactions benchmark, every figure against its ceiling measured in
# the same run on the same broker:
#   - transactional produce with a commit every TXN_MS milliseconds,
#     against plain idempotent produce of the same records (the ceiling);
#   - a read_committed consumer of the transactional topic (markers and
#     all), against a read_uncommitted consumer of the same topic.
# Prints one JSON object. Usage:
#   scripts/bench-transactions.sh
#   RECORDS=4000000 TXN_MS=100 scripts/bench-transactions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-2000000}
SIZE=${SIZE:-1024}
PARTS=${PARTS:-4}
TXN_MS=${TXN_MS:-100}
cargo build -j2 --release --bin strata --bin strata-bench >&2
STRATA=${STRATA:-target/release/strata}
BENCH=target/release/strata-bench

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d)
port=$(free_port)
"$STRATA" --listen 127.0.0.1:"$port" --metrics-listen 127.0.0.1:0 --data-dir "$dir/data" >>"$dir/broker.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done
common=(--bootstrap 127.0.0.1:"$port" --records "$RECORDS" --size "$SIZE" --partitions "$PARTS" -X linger.ms=5)
"$BENCH" produce --json "${common[@]}" --topic plain --idempotence >"$dir/idem.json" 2>>"$dir/bench.err" || { cat "$dir/bench.err" >&2; exit 1; }
"$BENCH" produce --json "${common[@]}" --topic txn --transaction-ms "$TXN_MS" >"$dir/txn.json" 2>>"$dir/bench.err" || { cat "$dir/bench.err" >&2; exit 1; }
read_args=(--bootstrap 127.0.0.1:"$port" --topic txn --records "$RECORDS")
# Each reader twice, alternating, the faster run of each counting, so that
# neither is favoured by the page cache the other warmed.
for round in 1 2; do
  for iso in read_uncommitted read_committed; do
    "$BENCH" consume --json "${read_args[@]}" -X isolation.level=$iso >"$dir/$iso-$round.json" 2>>"$dir/bench.err" || { cat "$dir/bench.err" >&2; exit 1; }
  done
done
python3 - "$dir" "$TXN_MS" <<'PY'
import json, sys
d, txn_ms = sys.argv[1], int(sys.argv[2])
load = lambda n: json.load(open(f"{d}/{n}.json"))
idem, txn = load("idem"), load("txn")
best = lambda iso: max((load(f"{iso}-{r}") for r in (1, 2)), key=lambda j: j["mb_per_sec"])
ru, rc = best("read_uncommitted"), best("read_committed")
print(json.dumps({
    "commit_every_ms": txn_ms,
    "transactions": txn.get("transactions"),
    "idempotent_produce_MBps": idem["mb_per_sec"],
    "transactional_produce_MBps": txn["mb_per_sec"],
    "transactional_vs_idempotent": round(txn["mb_per_sec"] / idem["mb_per_sec"], 3),
    "transactional_produce_p99_ms": txn.get("produce_p99_ms"),
    "idempotent_produce_p99_ms": idem.get("produce_p99_ms"),
    "read_uncommitted_MBps": ru["mb_per_sec"],
    "read_committed_MBps": rc["mb_per_sec"],
    "read_committed_vs_uncommitted": round(rc["mb_per_sec"] / ru["mb_per_sec"], 3),
}, indent=1))
PY
