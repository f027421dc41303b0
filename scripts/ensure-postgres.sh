#!/usr/bin/env bash
# Installs Debian's `postgresql` package when the PostgreSQL server binaries
# (initdb, postgres) are on neither PATH nor /usr/lib/postgresql/*/bin, and
# DATABASE_URL does not point at a server already. The test harness and the
# demo start their own throwaway cluster from those binaries.
set -euo pipefail

have_server() {
    if command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
        return 0
    fi
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then
            return 0
        fi
    done
    return 1
}

if [ -n "${DATABASE_URL:-}" ] || have_server; then
    exit 0
fi

echo "PostgreSQL server binaries not found; installing Debian's postgresql package" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
have_server || { echo "installing postgresql did not provide initdb and postgres" >&2; exit 1; }
