#!/usr/bin/env bash
# Runs the chaos tests (crates/airsync/tests/chaos) on their own.
#
#   scripts/chaos.sh                 one run of the chaos test, 25 s of chaos
#                                    (as in the suite)
#   scripts/chaos.sh runs 10         ten runs in a row; prints each one's time
#   scripts/chaos.sh soak [SECONDS]  one long run (default 1800 s) that also
#                                    reports memory and outbox size over time
#   scripts/chaos.sh history [RUNS] [SECONDS]
#                                    the history test (the app and the team on
#                                    the same few goals, checked against
#                                    per-field last-writer-wins): RUNS runs
#                                    (default 1) of SECONDS of load (default
#                                    60), each one's seed and result; stops at
#                                    the first failure
#   scripts/chaos.sh mutation [PATCH...]
#                                    applies scripts/mutations/*.patch (or
#                                    the patches named: bugs put in on
#                                    purpose, e.g. acknowledging an event
#                                    before Airtable answered) to a scratch
#                                    copy of HEAD and checks that the chaos
#                                    test or the history test fails on each
#                                    (the history test up to
#                                    AIRSYNC_MUTATION_HISTORY_RUNS times,
#                                    default 3, keeping the webhook unless
#                                    AIRSYNC_HISTORY_WEBHOOK says otherwise),
#                                    and the mutant's own test where its
#                                    patch names one ("Test: ...")
#
# AIRSYNC_CHAOS_SECS, AIRSYNC_CHAOS_SEED and the history test's
# AIRSYNC_HISTORY_* variables are passed through.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/ensure-postgres.sh" >/dev/null 2>&1 || true

CHAOS_TEST=nothing_is_lost_or_duplicated_through_kills_faults_an_expiry_and_a_restart
HISTORY_TEST=contended_records_converge_to_per_field_last_writer_wins

# run_test NAME: runs one test of the chaos binary, and nothing else.
run_test() {
  cargo test --locked -q -p airsync --test chaos -- "$1" --exact --nocapture
}

chaos() {
  run_test "$CHAOS_TEST"
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
  history)
    count="${2:-1}"
    secs="${3:-60}"
    for i in $(seq 1 "$count"); do
      log="/tmp/airsync-history-run-$i.log"
      started=$(date +%s)
      if AIRSYNC_HISTORY_SECS="$secs" run_test "$HISTORY_TEST" >"$log" 2>&1; then
        result="passed in $(( $(date +%s) - started )) s"
      else
        result="FAILED after $(( $(date +%s) - started )) s (log: $log)"
      fi
      seed="$(grep -ho -m1 'seed [0-9]*' "$log" || echo 'seed ?')"
      echo "run $i, $seed: $result"
      if [[ "$result" == FAILED* ]]; then
        grep -E "^history: ([0-9]+ violations|not settled|validate-backfill)|^VIOLATION|panicked at" "$log" \
          | head -20 | sed 's/^/  /' || true
        exit 1
      fi
      grep -h '^history: passed' "$log" | sed 's/^history: passed: /  /'
    done
    ;;
  mutation)
    status=0
    shift
    patches=("$@")
    [[ ${#patches[@]} -gt 0 ]] || patches=("$ROOT"/scripts/mutations/*.patch)
    for patch in "${patches[@]}"; do
      patch="$(realpath "$patch")"
      scratch="$(mktemp -d)"
      git worktree add --quiet --detach "$scratch" HEAD
      git -C "$scratch" apply "$patch"
      caught=""
      # A "Test: PACKAGE BINARY NAME" line above the diff names the mutant's
      # own deterministic test, run first.
      if read -r _ package binary name < <(grep -m1 '^Test: ' "$patch"); then
        echo "mutation $(basename "$patch"): running $name ..."
        if (cd "$scratch" && CARGO_TARGET_DIR="$ROOT/target/mutation" \
              cargo test --locked -q -p "$package" --test "$binary" -- "$name" --exact) >"$scratch.log" 2>&1; then
          grep -q "running 1 test" "$scratch.log" \
            || echo "mutation $(basename "$patch"): $name is not in HEAD"
        else
          caught="$caught $name"
        fi
      fi
      # The chaos test once; the history test up to
      # AIRSYNC_MUTATION_HISTORY_RUNS times (default 3), until it fails.
      for test in "$CHAOS_TEST" "$HISTORY_TEST"; do
        tries=1
        [[ "$test" == "$HISTORY_TEST" ]] && tries="${AIRSYNC_MUTATION_HISTORY_RUNS:-3}"
        for try in $(seq 1 "$tries"); do
          echo "mutation $(basename "$patch"): running $test (run $try of $tries) ..."
          if (cd "$scratch" && AIRSYNC_HISTORY_SECS="${AIRSYNC_HISTORY_SECS:-60}" \
                AIRSYNC_HISTORY_WEBHOOK="${AIRSYNC_HISTORY_WEBHOOK:-keep}" \
                CARGO_TARGET_DIR="$ROOT/target/mutation" run_test "$test") >"$scratch.log" 2>&1; then
            grep -q "running 1 test" "$scratch.log" \
              || echo "mutation $(basename "$patch"): $test is not in HEAD"
          else
            caught="$caught $test(run $try)"
            grep -E "panicked at|DIFFERS|differ in|lost|duplicated|dead letters|in (PostgreSQL|Airtable)|^VIOLATION|violations of" "$scratch.log" \
              | grep -v " ok " | head -8 | sed 's/^/  /' || true
            break
          fi
        done
      done
      if [[ -n "$caught" ]]; then
        echo "mutation $(basename "$patch"): caught by:$caught"
      else
        echo "mutation $(basename "$patch"): NOT caught (both tests passed)"
        status=1
      fi
      git worktree remove --force "$scratch"
      rm -f "$scratch.log"
    done
    exit "$status"
    ;;
  *)
    echo "usage: scripts/chaos.sh [once | runs N | soak [SECONDS] | history [RUNS] [SECONDS] | mutation [PATCH...]]" >&2
    exit 2
    ;;
esac
