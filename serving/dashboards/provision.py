"""Load Linli's assets into Superset: run with Superset's Python, inside its app.

    LINLI_SUPERSET_ADMIN_PASSWORD=… LINLI_SUPERSET_COMMUNITY_PASSWORD=… \
    .venv-superset/bin/python -m serving.dashboards.provision --serving-db … --quality-db … \
        --admin-user … --community-user …

Everything is an upsert keyed by a stable name or uuid, so provisioning twice leaves the same
assets, roles, filters and users. A login is made when missing, with the password given; one
that exists keeps the password and the active flag an operator gave it. Prints one JSON line:
what is there now.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from serving.dashboards import definitions as d
from serving.dashboards.bundle import build_bundle
from serving.dashboards.layout import DASHBOARDS, uid

AREA_ROLE_PREFIX = "区域"  # area roles are named "区域 <code> <name>"; nothing else starts so
VIEWER_ROLE = "只读浏览"  # what an area login may do besides reading its area: nothing


def area_role_name(code: str, name: str) -> str:
    return f"{AREA_ROLE_PREFIX} {code} {name}"


def rls_clause(code: str) -> str:
    # As the API's area scoping: division codes nest, so an area is a prefix of community_code.
    if not code.isdigit():
        raise ValueError(f"not a division code: {code!r}")
    return f"community_code LIKE '{code}%'"


def areas(serving_db: Path) -> list[tuple[str, str]]:
    """Every banner, street and community of the current build: (code, name)."""
    import duckdb

    con = duckdb.connect(str(Path(serving_db).resolve()), read_only=True)
    try:
        return con.execute("""SELECT DISTINCT banner_code, banner_name FROM place.community
                              UNION SELECT street_code, street_name FROM place.community
                              UNION SELECT community_code, community_name FROM place.community ORDER BY 1""").fetchall()
    finally:
        con.close()


def provision(args: argparse.Namespace) -> dict:
    from flask import g
    from superset import db, security_manager as sm
    from superset.commands.importers.v1.assets import ImportAssetsCommand
    from superset.connectors.sqla.models import RowLevelSecurityFilter, SqlaTable
    from superset.models.dashboard import Dashboard
    from superset.models.slice import Slice

    started = time.monotonic()
    admin = ensure_user(sm, args.admin_user, args.admin_password, "管理员", [sm.find_role("Admin")], keep_existing=True)
    db.session.commit()
    g.user = admin
    ImportAssetsCommand(build_bundle(Path(args.serving_db), Path(args.quality_db))).run()

    viewer_role(sm)
    tables = {t.uuid and str(t.uuid): t for t in db.session.query(SqlaTable).all()}
    area_tables = [tables[uid("dataset", ds.key)] for ds in d.DATASETS if ds.area]
    wanted = set()
    found = areas(Path(args.serving_db))
    for code, name in found:
        role_name = area_role_name(code, name)
        wanted.add(role_name)
        role = sm.find_role(role_name) or sm.add_role(role_name)
        role.permissions = [sm.add_permission_view_menu("datasource_access", t.perm) for t in area_tables]
        rls = db.session.query(RowLevelSecurityFilter).filter_by(name=role_name).one_or_none() or RowLevelSecurityFilter(name=role_name)
        rls.description, rls.filter_type, rls.group_key = f"{name}：只见本区域的行", "Regular", "area"
        rls.clause, rls.roles, rls.tables = rls_clause(code), [role], area_tables
        db.session.add(rls)
    # areas gone from the build lose their roles and filters
    for stale in db.session.query(RowLevelSecurityFilter).filter(RowLevelSecurityFilter.name.like(f"{AREA_ROLE_PREFIX} %")).all():
        if stale.name not in wanted:
            db.session.delete(stale)
    for role in sm.get_all_roles():
        if role.name.startswith(f"{AREA_ROLE_PREFIX} ") and role.name not in wanted:
            db.session.delete(role)
    db.session.commit()

    community = next(((c, n) for c, n in found if len(c) == 12 and (not args.community or c == args.community)), None)
    if community and args.community_user:
        bind_to_area(sm, args.community_user, args.community_password, community[0], keep_existing=True)
        db.session.commit()

    boards = {b.slug: db.session.query(Dashboard).filter_by(uuid=uid("dashboard", b.slug)).one() for b in DASHBOARDS}
    return {
        "published_passwords": published_passwords(sm, [args.admin_user, args.community_user]),
        "dashboards": {slug: {"id": b.id, "title": b.dashboard_title, "charts": len(b.slices)} for slug, b in boards.items()},
        "charts": db.session.query(Slice).count(), "datasets": len(tables), "area_roles": len(wanted),
        "community": {"code": community[0], "name": community[1], "user": args.community_user} if community else None,
        "seconds": round(time.monotonic() - started, 1),
    }


def bind_to_area(sm, username: str, password: str, code: str, keep_existing: bool = False):
    """A login that sees the area datasets, and of them only the rows of the area `code` (a banner,
    street or community)."""
    role = next((r for r in sm.get_all_roles() if r.name.startswith(f"{AREA_ROLE_PREFIX} {code} ")), None)
    if role is None:
        raise ValueError(f"no banner, street or community {code!r} in the current build")
    return ensure_user(sm, username, password, role.name.split(" ", 2)[2], [sm.find_role(VIEWER_ROLE), role], keep_existing)


def viewer_role(sm):
    """Superset's Gamma without making or changing charts and dashboards: an area login could
    otherwise publish a dashboard every other area lists, under an official title."""
    gamma, role = sm.find_role("Gamma"), sm.find_role(VIEWER_ROLE) or sm.add_role(VIEWER_ROLE)
    role.permissions = [p for p in gamma.permissions if not (p.permission.name == "can_write" and p.view_menu.name in ("Chart", "Dashboard"))]
    return role


def ensure_user(sm, username: str, password: str, first_name: str, roles: list, keep_existing: bool = False):
    """The login with these roles. `keep_existing` (provisioning, at every start) leaves the password
    and the active flag of one that exists as they are: an operator's change is not undone."""
    user = sm.find_user(username=username)
    if user is None:
        return sm.add_user(username, first_name, "邻里", f"{username}@linli.invalid", roles, password)
    user.roles, user.first_name = roles, first_name
    if not keep_existing:
        user.active, user.password = True, _hash(password)
    sm.update_user(user)
    return user


def published_passwords(sm, usernames: list[str]) -> list[str]:
    """Those of the logins that still have one of the demo's passwords, published in this repository."""
    from werkzeug.security import check_password_hash

    published = json.loads(os.environ.get("LINLI_SUPERSET_PUBLISHED_PASSWORDS", "[]"))
    users = [sm.find_user(username=u) for u in usernames if u]
    return [u.username for u in users if u is not None and any(check_password_hash(u.password, p) for p in published)]


def _hash(password: str) -> str:
    from werkzeug.security import generate_password_hash

    return generate_password_hash(password)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("serving-db", "quality-db", "admin-user"):
        parser.add_argument(f"--{name}", required=True)
    # passwords through the environment: a command line is anyone's to read (ps)
    parser.add_argument("--admin-password", default=os.environ.get("LINLI_SUPERSET_ADMIN_PASSWORD", ""))
    parser.add_argument("--community-user")
    parser.add_argument("--community-password", default=os.environ.get("LINLI_SUPERSET_COMMUNITY_PASSWORD", ""))
    parser.add_argument("--community", help="community code the demo community user is bound to (default: the first)")
    args = parser.parse_args()

    from superset.app import create_app

    app = create_app()
    with app.app_context(), app.test_request_context():
        print(json.dumps(provision(args), ensure_ascii=False))


if __name__ == "__main__":
    main()
