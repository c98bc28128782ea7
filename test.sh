#!/usr/bin/env bash
# Runs every test: formatting, lints, then the whole suite, each database test
# on SQLite and on a throw-away PostgreSQL server that this script starts.
set -euo pipefail
cd "$(dirname "$0")"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

source scripts/pg.sh
cargo test --workspace --locked
