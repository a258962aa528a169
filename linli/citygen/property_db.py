"""The property-management system (物业管理系统) of the synthetic city, in PostgreSQL or MariaDB.

`load_property_db` lays the clean city out as such a system holds it — estates and their
property company, buildings, houses, owners and tenants, vehicles, companies and staff — in
`pm_*` tables, each with a primary key and an `updated_at` watermark for incremental readers.
Tables are dropped and recreated, so loading twice gives the same content.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import unquote, urlsplit

import polars as pl

# Watermarks are a fixed base plus one second per row, so every load writes identical rows.
UPDATED_BASE = datetime(2024, 1, 1)
MYSQL_BATCH = 5_000
COPY_BATCH = 50_000

# table: (world frame, primary key, columns in order)
TABLES: dict[str, tuple[str, str, list[str]]] = {
    "pm_estate": ("estates", "estate_code", ["estate_code", "estate_name", "community_code", "built_year", "property_company_code"]),
    "pm_building": ("buildings", "building_code", ["building_code", "estate_code", "building_no", "floors", "units"]),
    "pm_house": ("houses", "house_code", [
        "house_code", "estate_code", "building_code", "unit_code", "floor", "room_no", "area_m2", "use", "ownership", "rented",
    ]),
    "pm_owner": ("residents", "id_no", [
        "id_no", "id_type", "name", "sex", "birth_date", "ethnicity", "nationality", "phone", "house_code", "relation",
        "household_no", "population_type", "moved_in",
    ]),
    "pm_vehicle": ("vehicles", "plate", ["plate", "owner_id_no", "house_code", "vehicle_type", "plate_color", "color"]),
    "pm_company": ("organizations", "credit_code", [
        "credit_code", "org_name", "org_kind", "community_code", "legal_rep_name", "legal_rep_phone", "founded",
    ]),
    "pm_staff": ("grid_staff", "staff_id", ["staff_id", "name", "sex", "id_no", "phone", "role", "grid_code", "community_code"]),
}

# Strings are VARCHAR in MariaDB because a TEXT column cannot be a primary key there.
# updated_at is DATETIME in MariaDB: its TIMESTAMP shifts with the session time zone.
TYPES = {
    "postgresql": {pl.String: "TEXT", pl.Int64: "BIGINT", pl.Float64: "DOUBLE PRECISION", pl.Boolean: "BOOLEAN",
                   pl.Date: "DATE", pl.Datetime: "TIMESTAMP"},
    "mysql": {pl.String: "VARCHAR(255)", pl.Int64: "BIGINT", pl.Float64: "DOUBLE", pl.Boolean: "BOOLEAN",
              pl.Date: "DATE", pl.Datetime: "DATETIME"},
}


def property_frames(world: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Each pm_ table's rows, with its updated_at watermark."""
    out = {}
    for table, (frame, _, columns) in TABLES.items():
        df = world[frame].select(columns)
        out[table] = df.with_columns(
            updated_at=pl.lit(UPDATED_BASE) + pl.duration(seconds=pl.int_range(pl.len(), dtype=pl.Int64))
        )
    return out


def load_property_db(url: str, world: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Replace the pm_ tables in the database at `url` (postgresql://, mysql:// or mariadb://)."""
    scheme = urlsplit(url).scheme.lower()
    frames = property_frames(world)
    if scheme in ("postgresql", "postgres"):
        _load_postgres(url, frames)
    elif scheme in ("mysql", "mariadb"):
        _load_mysql(url, frames)
    else:
        raise ValueError(f"unsupported database URL {url!r}: use postgresql://, mysql:// or mariadb://")
    return {t: len(df) for t, df in frames.items()}


def _ddl(table: str, df: pl.DataFrame, dialect: str) -> str:
    q = '"' if dialect == "postgresql" else "`"
    types = TYPES[dialect]
    key = TABLES[table][1]
    cols = [f"{q}{c}{q} {types[dt.base_type()]}{' NOT NULL' if c in (key, 'updated_at') else ''}" for c, dt in df.schema.items()]
    cols.append(f"PRIMARY KEY ({q}{key}{q})")
    tail = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin" if dialect == "mysql" else ""
    return f"CREATE TABLE {q}{table}{q} ({', '.join(cols)}){tail}"


def _load_postgres(url: str, frames: dict[str, pl.DataFrame]) -> None:
    import psycopg

    # One transaction: a reader sees the old tables or the new ones, never half a load.
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for table, df in frames.items():
            cur.execute(f'DROP TABLE IF EXISTS "{table}"')
            cur.execute(_ddl(table, df, "postgresql"))
            cols = ", ".join(f'"{c}"' for c in df.columns)
            with cur.copy(f'COPY "{table}" ({cols}) FROM STDIN (FORMAT csv)') as copy:
                for batch in df.iter_slices(COPY_BATCH):
                    # Polars quotes an empty string ("") and leaves a null bare, which is how COPY tells them apart.
                    copy.write(batch.write_csv(include_header=False, datetime_format="%Y-%m-%d %H:%M:%S").encode("utf-8"))


def _load_mysql(url: str, frames: dict[str, pl.DataFrame]) -> None:
    import pymysql

    u = urlsplit(url)
    conn = pymysql.connect(
        host=u.hostname or "127.0.0.1", port=u.port or 3306, user=unquote(u.username or "root"),
        password=unquote(u.password or ""), database=u.path.lstrip("/") or None, charset="utf8mb4",
    )
    try:
        with conn.cursor() as cur:
            for table, df in frames.items():
                cur.execute(f"DROP TABLE IF EXISTS `{table}`")
                cur.execute(_ddl(table, df, "mysql"))
                cols = ", ".join(f"`{c}`" for c in df.columns)
                sql = f"INSERT INTO `{table}` ({cols}) VALUES ({', '.join(['%s'] * df.width)})"
                for batch in df.iter_slices(MYSQL_BATCH):
                    cur.executemany(sql, batch.rows())
        conn.commit()
    finally:
        conn.close()
