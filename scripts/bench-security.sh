#!/usr/bin/env bash
# The security benchmark: produce and consume throughput over SASL_SSL
# (TLS 1.3 with rustls, SCRAM-SHA-512, ACLs checked by the built-in
# authorizer) against the same broker's PLAINTEXT listener in the same run,
# which is the ceiling. Each side runs twice, alternating, the faster run
# counting. Prints one JSON object. Usage:
#   scripts/bench-security.sh
#   RECORDS=4000000 SIZE=1024 scripts/bench-security.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-2000000}
SIZE=${SIZE:-1024}
PARTS=${PARTS:-4}
cargo build -j2 --release --bin strata --bin strata-bench >&2
STRATA=${STRATA:-target/release/strata}
BENCH=target/release/strata-bench
source scripts/bench-lib.sh
bench_work security
d=$WORK
(
  cd "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=bench CA" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
  printf "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
    -extfile server.ext 2>/dev/null
  cat server.key server.pem >keystore.pem
)
echo bench-password | "$STRATA" users add bench --mechanism SCRAM-SHA-512 --data-dir "$d/data" >/dev/null
plain=$(free_port)
secure=$(free_port)
"$STRATA" --metrics-listen 127.0.0.1:0 --data-dir "$d/data" \
  --set listeners=PLAINTEXT://127.0.0.1:"$plain",SASL_SSL://127.0.0.1:"$secure" \
  --set ssl.keystore.location="$d/keystore.pem" \
  --set sasl.enabled.mechanisms=SCRAM-SHA-512 \
  --set authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer \
  --set super.users=User:bench --set allow.everyone.if.no.acl.found=true \
  >>"$d/broker.out" 2>>"$d/broker.log" &
PIDS+=($!)
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$secure") 2>/dev/null && break
  sleep 0.1
done
sasl=(-X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=bench
      -X sasl.password=bench-password -X ssl.ca.location="$d/ca.pem")
run() { # NAME PORT KIND TOPIC [extra...]
  local name=$1 port=$2 kind=$3 topic=$4
  shift 4
  if [ "$kind" = produce ]; then
    "$BENCH" produce --json --bootstrap 127.0.0.1:"$port" --topic "$topic" --records "$RECORDS" \
      --size "$SIZE" --partitions "$PARTS" -X linger.ms=5 "$@" >"$d/$name.json" 2>>"$d/bench.err"
  else
    "$BENCH" consume --json --bootstrap 127.0.0.1:"$port" --topic "$topic" --records "$RECORDS" \
      "$@" >"$d/$name.json" 2>>"$d/bench.err"
  fi || { cat "$d/bench.err" >&2; exit 1; }
}
for round in 1 2; do
  run "plain-$round" "$plain" produce t-plain
  run "secure-$round" "$secure" produce t-secure "${sasl[@]}"
done
for round in 1 2; do
  run "plainc-$round" "$plain" consume t-plain
  run "securec-$round" "$secure" consume t-secure "${sasl[@]}"
done
python3 - "$d" <<'PY'
import json, sys
d = sys.argv[1]
best = lambda n: max((json.load(open(f"{d}/{n}-{r}.json")) for r in (1, 2)), key=lambda j: j["mb_per_sec"])
pp, sp, pc, sc = best("plain"), best("secure"), best("plainc"), best("securec")
print(json.dumps({
    "plaintext_produce_MBps": pp["mb_per_sec"],
    "sasl_ssl_produce_MBps": sp["mb_per_sec"],
    "produce_sasl_ssl_vs_plaintext": round(sp["mb_per_sec"] / pp["mb_per_sec"], 3),
    "plaintext_consume_MBps": pc["mb_per_sec"],
    "sasl_ssl_consume_MBps": sc["mb_per_sec"],
    "consume_sasl_ssl_vs_plaintext": round(sc["mb_per_sec"] / pc["mb_per_sec"], 3),
    "plaintext_produce_p99_ms": pp.get("produce_p99_ms"),
    "sasl_ssl_produce_p99_ms": sp.get("produce_p99_ms"),
}, indent=1))
PY
