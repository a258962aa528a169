#!/usr/bin/env bash
# A CJK font for the data map's lineage images (Chinese dashboard and term names), from Debian's packages.
# Without one the images still render, with ASCII names in place of Chinese ones.
set -euo pipefail
if fc-list 2>/dev/null | grep -qi -E "wenquanyi|noto sans cjk"; then exit 0; fi
[ "$(id -u)" = 0 ] || { echo "no CJK font and not root: lineage images use ASCII names" >&2; exit 0; }
DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null || echo "fonts-wqy-microhei not installed" >&2
