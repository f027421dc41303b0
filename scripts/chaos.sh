#!/usr/bin/env bash
# Runs the chaos test (crates/airsync/tests/chaos) on its own.
#
#   scripts/chaos.sh                 one run, 25 s of chaos (as in the suite)
#   scripts/chaos.sh runs 10         ten runs in a row; prints each one's time
#   scripts/chaos.sh soak [SECONDS]  one long run (default 1800 s) that also
#                                    reports memory and outbox size over time
#   scripts/chaos.sh mutation        applies scripts/mutations/*.patch (bugs
#                                    put in on purpose, e.g. acknowledging an
#                                    event before Airtable answered) to a
#                                    scratch copy and checks that the chaos
#                                    test fails on each
#
# AIRSYNC_CHAOS_SECS and AIRSYNC_CHAOS_SEED are passed through.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/ensure-postgres.sh" >/dev/null 2>&1 || true

chaos() {
  cargo test --locked -q -p airsync --test chaos -- --nocapture
}

case "${1:-once}" in
  once)
    chaos
    ;;
  runs)
    count="${2:-10}"
    for i in $(seq 1 "$count"); do
      started=$(date +%s)
      if chaos >"/tmp/airsync-chaos-run-$i.log" 2>&1; then
        echo "run $i: passed in $(( $(date +%s) - started )) s; $(grep -h '^chaos: settled' "/tmp/airsync-chaos-run-$i.log")"
      else
        echo "run $i: FAILED after $(( $(date +%s) - started )) s (log: /tmp/airsync-chaos-run-$i.log)"
        exit 1
      fi
    done
    ;;
  soak)
    AIRSYNC_CHAOS_SECS="${2:-1800}" chaos
    ;;
  mutation)
    status=0
    for patch in "$ROOT"/scripts/mutations/*.patch; do
      scratch="$(mktemp -d)"
      git worktree add --quiet --detach "$scratch" HEAD
      git -C "$scratch" apply "$patch"
      echo "mutation $(basename "$patch"): running the chaos test ..."
      if (cd "$scratch" && CARGO_TARGET_DIR="$ROOT/target/mutation" \
            cargo test -q -p airsync --test chaos -- --nocapture) >"$scratch.log" 2>&1; then
        echo "mutation $(basename "$patch"): NOT caught (the chaos test passed)"
        status=1
      else
        echo "mutation $(basename "$patch"): caught:"
        grep -E "panicked at|DIFFERS|differ in|lost|duplicated|dead letters|in (PostgreSQL|Airtable)" "$scratch.log" \
          | grep -v " ok " | head -8 | sed 's/^/  /'
      fi
      git worktree remove --force "$scratch"
      rm -f "$scratch.log"
    done
    exit "$status"
    ;;
  *)
    echo "usage: scripts/chaos.sh [once | runs N | soak [SECONDS] | mutation]" >&2
    exit 2
    ;;
esac
