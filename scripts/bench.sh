#!/usr/bin/env bash
# Runs every benchmark of airsync in release mode and prints one table: the
# measured figure, the target, and Airtable's ceiling where one applies
# (50 records/s written and 500 records/s read per base). The benchmarks'
# own output goes to target/bench/*.log.
#
# Usage: scripts/bench.sh [--quick]
#   --quick  shorter runs (fewer records and seconds), for a smoke test; the
#            figures are then noisier and not the ones the targets speak of.
# Takes about 22 minutes in full on a 2-core machine (after the build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cd "$ROOT"
"$ROOT/scripts/ensure-postgres.sh" >/dev/null

QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
LOGS="$TARGET_DIR/bench"
mkdir -p "$LOGS"

echo "building (release) ..." >&2
cargo build --quiet --locked --release -p airsync --bin airsync --example flood
cargo build --quiet --locked --release -p airsync-emulator --example bench
cargo build --quiet --locked --release -p airsync-airtable --example write_bench
cargo build --quiet --locked --release -p airsync-sync --example outbound_bench --example inbound_bench --example share_bench
cargo build --quiet --locked --release -p airsync-api --example load

EXAMPLES="$TARGET_DIR/release/examples"
run() {
  local name="$1"; shift
  echo "running $name ..." >&2
  "$@" >"$LOGS/$name.log" 2>&1 || { echo "$name failed; see $LOGS/$name.log" >&2; exit 1; }
}
if [[ $QUICK == 1 ]]; then
  run emulator "$EXAMPLES/bench" "$TARGET_DIR/release/airsync" 3 64
  run write "$EXAMPLES/write_bench" --records 200
  run outbound "$EXAMPLES/outbound_bench" 300 10
  run inbound "$EXAMPLES/inbound_bench" 20 2000
  run api "$EXAMPLES/load" --secs 5
  run api-overload "$EXAMPLES/load" --overload --secs 3
  run flood "$EXAMPLES/flood" "$TARGET_DIR/release/airsync" --connections 64 --secs 3
  run share "$EXAMPLES/share_bench" --changes 300 --watch 30
else
  run emulator "$EXAMPLES/bench" "$TARGET_DIR/release/airsync" 10 64
  run write "$EXAMPLES/write_bench"
  run outbound "$EXAMPLES/outbound_bench"
  run inbound "$EXAMPLES/inbound_bench"
  run api "$EXAMPLES/load"
  run api-overload "$EXAMPLES/load" --overload --secs 10
  run flood "$EXAMPLES/flood" "$TARGET_DIR/release/airsync"
  run share "$EXAMPLES/share_bench"
fi

python3 "$ROOT/scripts/bench_table.py" "$LOGS" "$QUICK"
