#!/usr/bin/env bash
# The test suite: every test gets a fresh database on a throwaway PostgreSQL
# cluster that the harness starts and removes itself (or on DATABASE_URL's
# server when set). The ops page's browser test needs Debian's chromium and
# chromium-driver, installed here when missing. Extra arguments go to
# `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
scripts/ensure-browser.sh
cargo test --workspace --locked "$@"
