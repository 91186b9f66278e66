#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine of the project's
# kind: Debian packages (kcat), the s3s-fs S3 server, a Python virtualenv with
# the Python Kafka clients, and the Node client. Safe to run again: each step
# is skipped when its result is already present.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v kcat >/dev/null || need_apt+=(kcat)
command -v openssl >/dev/null || need_apt+=(openssl)
# librdkafka with TLS and SCRAM, for strata-bench and the Rust tests.
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The S3 protocol server the tiering tests run against (about 3 minutes to
# build the first time; later versions need a newer Rust).
if [ ! -x .tools/s3s/bin/s3s-fs ]; then
  echo "building the s3s-fs test server"
  cargo install s3s-fs --version 0.14.1 --features binary --locked --root .tools/s3s -j2 --quiet
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import confluent_kafka, kafka, aiokafka, pytest, lz4, snappy, zstandard, yaml, pyiceberg, duckdb' 2>/dev/null; then
  echo "creating the Python virtualenv in .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r tests/clients/python/requirements.txt
fi

# Quix Streams pins its own confluent-kafka, so it has a virtualenv of its
# own; only its application runs there (tests/clients/python/apps).
if [ ! -x .venv-quix/bin/python ] || ! .venv-quix/bin/python -c 'import quixstreams' 2>/dev/null; then
  echo "creating the Quix Streams virtualenv in .venv-quix"
  python3 -m venv .venv-quix
  .venv-quix/bin/pip install -q --disable-pip-version-check -r tests/clients/python/requirements-quix.txt
fi

if [ ! -d tests/clients/node/node_modules/kafkajs ]; then
  echo "installing the Node client"
  (cd tests/clients/node && npm ci --no-audit --no-fund --loglevel=error)
fi
