"""Superset's configuration for Linli (SUPERSET_CONFIG_PATH points here).

Loaded inside Superset's own environment, so it reads only environment variables that
serving/dashboards/server.py sets from Linli's settings.
"""

import json
import os

from sqlalchemy import event
from sqlalchemy.pool import Pool

SECRET_KEY = os.environ["LINLI_SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = os.environ["LINLI_SUPERSET_METADATA_URI"]
DATA_DIR = os.environ.get("SUPERSET_HOME", "")

BABEL_DEFAULT_LOCALE = "zh"
# Only Chinese is offered, so every browser gets it whatever language it asks for.
LANGUAGES = {"zh": {"flag": "cn", "name": "简体中文"}}
D3_FORMAT = {"decimal": ".", "thousands": ",", "grouping": [3], "currency": ["¥", ""]}

# No map tiles from the internet: Linli's maps draw the lake's own grid polygons and points on
# a blank ground. Offering only "no base map" keeps editors from picking an online style.
DECKGL_BASE_MAP = [["", "无底图（离线）"]]
MAPBOX_API_KEY = ""

# Superset's stock policy lets the browser reach map-tile hosts and a telemetry pixel; this one lets
# it reach nothing but this server, so a dashboard never calls out (and the test can tell if it did).
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}

FEATURE_FLAGS = {"DASHBOARD_RBAC": False, "ALERT_REPORTS": False, "THUMBNAILS": False}
# Area roles see dashboards through their datasets; RLS confines their rows.
PUBLIC_ROLE_LIKE = None

# Tests and the demo log in many times a minute from one address.
AUTH_RATE_LIMITED = False
RATELIMIT_ENABLED = False
CONTENT_SECURITY_POLICY_WARNING = False
WTF_CSRF_TIME_LIMIT = None
SUPERSET_WEBSERVER_TIMEOUT = 120
LOG_LEVEL = "WARNING"


# DuckDB reads and writes any file the server's user may (read_csv, read_text, COPY … TO): through
# SQL Lab or a virtual dataset, the raw deliveries with their clear identifiers, the secret key, or
# a Python path file that runs code. Every DuckDB connection Superset opens is confined to the
# directories the quality views read, before it runs anything.
_DUCKDB_DIRS = json.loads(os.environ.get("LINLI_SUPERSET_DUCKDB_DIRS", "[]"))


@event.listens_for(Pool, "connect")
def _confine_duckdb(dbapi_connection, _record):
    if type(dbapi_connection).__module__.split(".")[0] != "duckdb_engine":
        return

    def external_access() -> bool:
        return dbapi_connection.execute("SELECT current_setting('enable_external_access')").fetchone()[0]

    if external_access():
        try:
            dbapi_connection.execute(f"SET allowed_directories = {[str(d) for d in _DUCKDB_DIRS]}")
            dbapi_connection.execute("SET enable_external_access = false")
        except Exception:  # another connection to the same file confined it meanwhile: checked below
            pass
    if external_access():
        raise RuntimeError("file access of a DuckDB connection could not be confined")
