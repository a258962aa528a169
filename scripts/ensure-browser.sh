#!/usr/bin/env bash
# Headless Chromium and its driver for the browser tests, from Debian's packages.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi
[ "$(id -u)" = 0 ] || { echo "need root to install chromium" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
