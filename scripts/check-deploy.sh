#!/usr/bin/env bash
# Checks the deployment and operations files (Dockerfile, docker-compose.yml,
# deploy/: Prometheus rules and configuration, Grafana dashboard; the
# runbooks in docs/runbooks/) without Docker; see deploy/check.py for what is
# checked. Exits non-zero on any problem.
# Usage: scripts/check-deploy.sh [--install]
#   --install   install promtool (Debian's prometheus package) when missing,
#               as CI (CI set) does; otherwise the promtool checks are
#               skipped with a notice.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$TARGET_DIR/deploy-check-venv"

PYTHON=python3
if ! python3 -c "import yaml" 2>/dev/null; then
    if ! "$VENV/bin/python" -c "import yaml" 2>/dev/null; then
        echo "== PyYAML is missing: installing it into $VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "PyYAML>=6,<7"
    fi
    PYTHON="$VENV/bin/python"
fi

exec "$PYTHON" "$ROOT/deploy/check.py" "$@"
