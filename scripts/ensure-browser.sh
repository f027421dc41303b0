#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver when missing: the ops page's
# browser test drives headless Chromium through ChromeDriver.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
echo "chromium or chromedriver not found; installing Debian's chromium and chromium-driver" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
command -v chromium >/dev/null && command -v chromedriver >/dev/null || {
    echo "installing chromium did not provide chromium and chromedriver" >&2
    exit 1
}
