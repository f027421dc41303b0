#!/usr/bin/env bash
# Benchmarks the Airtable emulator in release mode: resident memory with
# 100,000 records and small list/get requests per second with limits off.
# Usage: scripts/bench-emulator.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cd "$ROOT"
cargo build --quiet --release -p airsync --bin airsync
cargo build --quiet --release -p airsync-emulator --example bench
"$TARGET_DIR/release/examples/bench" "$TARGET_DIR/release/airsync" "${1:-10}" "${2:-64}"
