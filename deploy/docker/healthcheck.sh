#!/usr/bin/env bash
# The container health check of `airsync serve`: healthy when GET
# /api/health answers 200, that is when the server runs and PostgreSQL
# answers it. Bash's /dev/tcp keeps an HTTP client out of the runtime image.
# Usage: airsync-healthcheck [PORT]   (default 8080)
set -euo pipefail

port="${1:-8080}"
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
status=""
IFS= read -r -t 3 status <&3 || true
exec 3<&-
case "$status" in
    "HTTP/1.1 200"*) exit 0 ;;
esac
echo "unhealthy: GET /api/health answered ${status:-nothing}" >&2
exit 1
