#!/usr/bin/env bash
# Installs whatever the tests need (see install-test-deps.sh), builds the
# workspace and runs every test: Rust unit and end-to-end tests, then the
# Python and Node client suites. All of them drive the real `strata` binary.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh

echo "== building"
cargo build -j2 --workspace --all-targets

echo "== Rust tests"
cargo test -j2 --workspace

echo "== Python client tests"
.venv/bin/python -m pytest -q tests/clients/python

echo "== Node client tests"
(cd tests/clients/node && npm test --silent)
