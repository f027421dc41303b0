#!/usr/bin/env bash
# Runs the fuzz suites (proptest properties, see docs/fuzzing.md) for a
# given time each, in debug builds so that integer overflow panics too.
# Every property of a suite runs for the whole time, side by side.
# Prints one line per property: cases run, seconds, findings.
# Usage: scripts/fuzz.sh [SECONDS] [SUITE...]
#   SECONDS  time per suite (default 600)
#   SUITE    formula, formula_builder, webhook, cells, api (default: all)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_EACH="${1:-600}"
shift || true
SUITES=("$@")
if [ ${#SUITES[@]} -eq 0 ]; then
    SUITES=(formula formula_builder webhook cells api)
fi

crate_of() {
    case "$1" in
        formula) echo "airsync-emulator fuzz_formula" ;;
        formula_builder) echo "airsync-airtable fuzz_formula_builder" ;;
        webhook) echo "airsync-sync fuzz_webhook" ;;
        cells) echo "airsync-sync fuzz_cells" ;;
        api) echo "airsync-api fuzz_requests" ;;
        *) echo "unknown suite $1" >&2; return 1 ;;
    esac
}

status=0
for suite in "${SUITES[@]}"; do
    read -r crate test < <(crate_of "$suite") || exit 2
    cargo test --quiet -p "$crate" --test "$test" --no-run || exit 2
    log="$(mktemp)"
    AIRSYNC_FUZZ_SECS="$SECONDS_EACH" RUST_BACKTRACE=0 \
        cargo test --quiet -p "$crate" --test "$test" -- --nocapture --test-threads=16 >"$log" 2>&1
    rc=$?
    grep -oE 'fuzz .*(findings|answers by status .*)' "$log" | sed "s/^fuzz /$suite: /"
    if [ $rc -ne 0 ]; then
        status=1
        echo "$suite: FAILED; the log is $log" >&2
        grep -E 'minimal failing input|replay its round|panicked at' "$log" | head -20 >&2
    else
        rm -f "$log"
    fi
done
exit $status
