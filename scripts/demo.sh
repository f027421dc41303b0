#!/usr/bin/env bash
# The demo: a throwaway PostgreSQL (or DATABASE_URL's), the Airtable emulator
# at Airtable's limits and latency, the API and the outbound worker, with
# sample data; prints the URLs, a login and a tour. Ctrl-C stops everything.
# Extra arguments go to `airsync demo` (see `airsync demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
cargo build --release --locked -p airsync --bin airsync
exec "${CARGO_TARGET_DIR:-target}/release/airsync" demo "$@"
