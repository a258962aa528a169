#!/usr/bin/env bash
# wrk, the HTTP load generator bench/api uses, from Debian's packages.
set -euo pipefail
if command -v wrk >/dev/null; then exit 0; fi
[ "$(id -u)" = 0 ] || { echo "need root to install wrk" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
