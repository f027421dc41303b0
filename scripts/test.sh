#!/usr/bin/env bash
# The test suite: every test gets a fresh database on a throwaway PostgreSQL
# cluster that the harness starts and removes itself (or on DATABASE_URL's
# server when set). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
cargo test --workspace --locked "$@"
