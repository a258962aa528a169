"""Row-level security on the dashboards, login by login: a login bound to an area (by `linli
dashboards grant`) sees, in every area dataset, exactly its area's rows — none of another area's,
none of its own missing — compared with what the admin sees through the same chart query."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from linli.net import free_port
from linli.settings import Settings, get_settings
from linli.warehouse import current
from serving.dashboards import server
from serving.dashboards.client import SupersetClient
from serving.dashboards.definitions import DATASETS
from serving.dashboards.provision import areas


@dataclass
class DashboardAccess:
    logins: int = 0
    banners: int = 0
    streets: int = 0
    communities: int = 0
    answers: int = 0
    rows_hidden: int = 0
    leaks: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"dashboard access: {self.logins} area logins ({self.banners} banners, {self.streets} streets, {self.communities} communities) × "
                f"{sum(d.area for d in DATASETS)} area datasets: {self.answers} answers, {self.rows_hidden:,} rows of other areas "
                f"hidden, {len(self.leaks)} answers with another area's rows, {len(self.missing)} missing some of their own")


def area_logins(warehouse: Path, n: int | None = None, seed: int = 1) -> dict[str, str]:
    """Login name → area code for `n` random banners, streets and communities of the current build (all when n is None)."""
    codes = [code for code, _ in areas(current(warehouse))]  # the areas provisioning made roles for
    if n is not None and n < len(codes):
        codes = sorted(random.Random(seed).sample(codes, n))
    return {f"area-{code}": code for code in codes}


def check(base: str, users: dict[str, str], password: str, settings: Settings | None = None) -> DashboardAccess:
    """Ask every area dataset for its rows per community as the admin, then as each login."""
    s = settings or get_settings()
    result = DashboardAccess(logins=len(users), banners=sum(len(c) == 6 for c in users.values()), streets=sum(len(c) == 9 for c in users.values()),
                             communities=sum(len(c) == 12 for c in users.values()))
    with SupersetClient(base, s.superset_admin_user, s.superset_admin_password) as admin:
        ids = admin.datasets()
        everyone = {d.key: admin.counts_by_community(ids[d.key]) for d in DATASETS if d.area}
    for user, code in users.items():
        def inside(c: str | None) -> bool:
            return (c or "").startswith(code)

        with SupersetClient(base, user, password) as client:
            for key, all_rows in everyone.items():
                seen = client.counts_by_community(ids[key])
                result.answers += 1
                result.rows_hidden += sum(n for c, n in all_rows.items() if not inside(c))
                if not all(inside(c) for c in seen):
                    result.leaks.append(f"{user} sees {key} rows of {sorted(str(c) for c in seen if not inside(c))}")
                if {c: n for c, n in seen.items() if inside(c)} != {c: n for c, n in all_rows.items() if inside(c)}:
                    result.missing.append(f"{user} misses some of its own {key} rows")
    return result


def run(data_dir: Path, logins: int, seed: int = 1, log=print) -> DashboardAccess:
    """Superset over `data_dir` (its warehouse and quality results), `logins` random area logins, checked."""
    password = f"area-{random.Random(seed).getrandbits(64):x}"
    server.ensure_installed()
    server.initialise(data_dir)
    server.provision(data_dir)
    users = area_logins(data_dir / "warehouse", logins, seed)
    server.grant(data_dir, users, password)
    port = free_port()
    proc = server.start(data_dir, port)
    try:
        log(f"dashboard access: {len(users)} area logins granted; checking every area dataset")
        return check(f"http://127.0.0.1:{port}", users, password)
    finally:
        proc.terminate()
        proc.wait(60)
