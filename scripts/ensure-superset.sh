#!/usr/bin/env bash
# Superset in a virtual environment of its own: it pins SQLAlchemy 1.4, pandas 2.1 and numpy 1.26,
# which the platform's environment has outgrown. Re-running is a no-op once installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LINLI_SUPERSET_VENV:-.venv-superset}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.installed-6.1.0-1"
[ -f "$STAMP" ] && exit 0
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# duckdb stays on the 1.4 line: the duckdb-ext-* packages (extensions without downloads) exist only for it.
# Superset 6.1.0 imports rich and cachetools without declaring them; Flask-Caching 2.4 breaks its cache.
# psycopg2 for metadata in PostgreSQL (LINLI_SUPERSET_METADATA_URI).
"$VENV/bin/pip" install --quiet \
  "apache-superset==6.1.0" duckdb-engine "duckdb==1.4.4" \
  duckdb-ext-spatial \
  "Flask-Caching<2.4" rich cachetools psycopg2-binary
touch "$STAMP"
