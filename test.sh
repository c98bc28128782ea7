#!/usr/bin/env bash
# Runs every test: formatting, lints, then the whole suite, each database test
# on SQLite and on a throw-away PostgreSQL server that this script starts,
# then the browser tests in Debian's Chromium against the real binary.
set -euo pipefail
cd "$(dirname "$0")"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

source scripts/pg.sh
cargo test --workspace --locked
PASAPORTE_BIN="$PWD/target/debug/pasaporte" tests/browser/run
