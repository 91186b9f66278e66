# Helpers the benchmark scripts share; sourced, not run. After sourcing:
#   bench_work NAME     a throw-away $WORK directory, removed at exit with
#                       every process whose pid is added to PIDS
#   free_port           prints a free TCP port on 127.0.0.1
#   start_s3            starts the S3 test server (s3s-fs, from
#                       scripts/install-test-deps.sh) on $WORK/s3; sets S3_PORT
#   s3_env PORT         exports the AWS_* environment for an S3 endpoint on PORT
#   wait_uploaded ADDR TOPIC
#                       waits until every partition of TOPIC is in the cold tier

bench_work() {
    WORK=$(mktemp -d "/tmp/strata-$1.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
}
bench_cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_s3() {
    [ -x .tools/s3s/bin/s3s-fs ] || { echo "run scripts/install-test-deps.sh first" >&2; exit 1; }
    mkdir -p "$WORK/s3/strata"
    S3_PORT=$(free_port)
    .tools/s3s/bin/s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key bench --secret-key benchsecret \
        "$WORK/s3" >"$WORK/s3.log" 2>&1 &
    PIDS+=($!)
    sleep 0.5
}
s3_env() {
    export AWS_ENDPOINT=http://127.0.0.1:$1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchsecret \
        AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
}
# uploaded ADDR TOPIC: true when every partition's last tiered offset is its
# high watermark minus one.
uploaded() {
    "$S" topics describe --bootstrap "$1" "$2" | awk 'NR > 1 && $5 != $6 - 1 { bad = 1 } END { exit bad }'
}
wait_uploaded() {
    for _ in $(seq 2400); do
        uploaded "$1" "$2" && return 0
        sleep 0.5
    done
    echo "$2 was not uploaded" >&2
    return 1
}
