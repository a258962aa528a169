"""Logins bound to one area each: run with Superset's Python, inside its app, after provisioning.

    LINLI_SUPERSET_GRANT_PASSWORD=… .venv-superset/bin/python -m serving.dashboards.grant --user NAME=CODE [--user …]

A banner's or street office's staff see their communities, a community's staff their community
(the area roles and row-level security that provisioning made). Prints one JSON line: who sees what.
"""

from __future__ import annotations

import argparse
import json
import os

from serving.dashboards.provision import bind_to_area


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--user", action="append", required=True, metavar="NAME=CODE")
    args = parser.parse_args()
    users = dict(u.split("=", 1) for u in args.user)
    password = os.environ["LINLI_SUPERSET_GRANT_PASSWORD"]

    from superset.app import create_app

    app = create_app()
    with app.app_context(), app.test_request_context():
        from superset import db, security_manager as sm

        try:
            granted = {name: bind_to_area(sm, name, password, code).first_name for name, code in users.items()}
        except ValueError as exc:
            raise SystemExit(str(exc)) from exc
        db.session.commit()
    print(json.dumps(granted, ensure_ascii=False))


if __name__ == "__main__":
    main()
