#!/usr/bin/env bash
# Runs pyairtable (a standard Airtable client from PyPI, unchanged) against
# the Airtable emulator: create, list with pagination and formulas, update,
# upsert, delete, metadata and webhook payloads. Exits non-zero on any
# failure. Self-contained: builds the emulator, makes a venv under the
# target dir, starts the emulator on a free port and always stops it.
set -euo pipefail

PYAIRTABLE_VERSION=3.5.1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$TARGET_DIR/emulator-compat-venv"
TOKEN="patEmulatorCompat.0000000000000000"
BASE_ID="appCompatScenario"

cd "$ROOT"
echo "== building the emulator"
cargo build --quiet -p airsync --bin airsync
EMULATOR="$TARGET_DIR/debug/airsync"

echo "== preparing pyairtable $PYAIRTABLE_VERSION in $VENV"
source "$ROOT/scripts/lib/venv.sh"
pinned_venv "$VENV" pyairtable "$PYAIRTABLE_VERSION"

PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
URL="http://127.0.0.1:$PORT"
LOG="$TARGET_DIR/emulator-compat.log"

# Airtable's rates stay on; the penalty is 1 s instead of 30 s because
# pyairtable's own retry budget (5 retries, about 3 s) is shorter than 30 s.
"$EMULATOR" airtable emulator --listen "127.0.0.1:$PORT" --token "$TOKEN" --base "$BASE_ID" --penalty-secs 1 >"$LOG" 2>&1 &
EMULATOR_PID=$!
stop_emulator() {
    kill "$EMULATOR_PID" 2>/dev/null || true
    wait "$EMULATOR_PID" 2>/dev/null || true
}
trap stop_emulator EXIT INT TERM

for _ in $(seq 1 100); do
    if "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('$URL/_emulator/stats', timeout=1)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then
        echo "the emulator did not start:" >&2
        cat "$LOG" >&2
        exit 1
    fi
    sleep 0.1
done

echo "== running the pyairtable scenario against $URL"
if ! "$VENV/bin/python" "$ROOT/crates/emulator/compat/pyairtable_scenario.py" "$URL" "$TOKEN" "$BASE_ID"; then
    echo "== the scenario failed; the emulator's log ($LOG) ends with:" >&2
    tail -n 40 "$LOG" >&2
    exit 1
fi
"$VENV/bin/python" -c "import json, urllib.request; s = json.load(urllib.request.urlopen('$URL/_emulator/stats')); print('requests:', s['total'], 'of which 429:', s['rate_limited'])"
echo "== pyairtable compatibility: pass"
