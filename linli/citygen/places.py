"""The place library's ground: communities under Ordos' real streets, grids, estates, buildings, houses."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import polars as pl

from linli.citygen.random import split_total, stream

RESIDENTS_PER_COMMUNITY = 2500
HOUSEHOLDS_PER_GRID = 300
METRES_PER_DEGREE = 111_320.0

COMMUNITY_WORDS = (
    "幸福 和谐 阳光 康和 金辉 东城 西园 北苑 南湖 春晖 锦绣 宝日 乌兰 巴音 格日勒 吉祥 兴旺 富民 团结 "
    "民族 明珠 滨河 馨园 怡景 文明 紫荆 丽水 天骄 伊克 哈达 那达慕 太阳 苏布尔 绿洲 恩和 阿拉坦 "
    "星光 新华 振兴 胜利 铁西 银河 瑞祥 永安 安泰 祥和 嘉园 鸿运"
).split()
ESTATE_WORDS = "花园 家园 雅苑 名门 华府 公馆 新村 小区 佳苑 丽景 盛世 书香".split()


def divisions() -> pl.DataFrame:
    """GB/T 2260 divisions of Ordos down to street/town level (National Bureau of Statistics, 2022)."""
    path = resources.files("linli") / "reference" / "ordos_divisions.csv"
    with resources.as_file(path) as csv:
        return pl.read_csv(csv, schema_overrides={"code": pl.Utf8, "parent_code": pl.Utf8})


@dataclass
class Places:
    communities: pl.DataFrame
    grids: pl.DataFrame
    estates: pl.DataFrame
    buildings: pl.DataFrame
    units: pl.DataFrame
    houses: pl.DataFrame


def _offset(lon: np.ndarray, lat: np.ndarray, east_m: np.ndarray, north_m: np.ndarray):
    return (
        lon + east_m / (METRES_PER_DEGREE * np.cos(np.radians(lat))),
        lat + north_m / METRES_PER_DEGREE,
    )


def place_streets(seed: int, n_communities: int) -> pl.DataFrame:
    """Streets and towns that receive communities, how many each, and where their centres lie."""
    div = divisions()
    seats = div.filter(pl.col("level").is_in(["city", "county"])).select(
        pl.col("code").alias("parent_code"), "seat_lon", "seat_lat", pl.col("name").alias("banner_name")
    )
    # Streets carry no seat of their own: they take their banner's (or the city's) seat.
    streets = div.filter(pl.col("level").is_in(["street", "township"])).drop("seat_lon", "seat_lat").join(
        seats, on="parent_code", how="left"
    )
    rng = stream(seed, "streets")
    urban = (streets["level"] == "street").to_numpy()
    weight = np.where(urban, 3.0, 1.0)
    n = len(streets)
    if n_communities < n:
        chosen = np.sort(rng.choice(n, n_communities, replace=False, p=weight / weight.sum()))
        count = np.zeros(n, dtype=np.int64)
        count[chosen] = 1
    else:
        count = 1 + split_total(n_communities - n, weight)
    radius = np.where(urban, rng.uniform(1_000, 6_000, n), rng.uniform(10_000, 40_000, n))
    angle = rng.uniform(0, 2 * np.pi, n)
    lon, lat = _offset(
        streets["seat_lon"].to_numpy(), streets["seat_lat"].to_numpy(), radius * np.cos(angle), radius * np.sin(angle)
    )
    return streets.with_columns(
        n_communities=pl.Series(count), centre_lon=pl.Series(lon), centre_lat=pl.Series(lat)
    ).filter(pl.col("n_communities") > 0)


def _square(lon: np.ndarray, lat: np.ndarray, half_east: np.ndarray, half_north: np.ndarray) -> list[list]:
    """Closed rectangle rings (GeoJSON order: lon, lat) around centres."""
    w, s = _offset(lon, lat, -half_east, -half_north)
    e, n = _offset(lon, lat, half_east, half_north)
    return [
        [[a, b], [c, b], [c, d], [a, d], [a, b]]
        for a, b, c, d in zip(np.round(w, 6), np.round(s, 6), np.round(e, 6), np.round(n, 6))
    ]


def build_places(seed: int, n_residents: int, household_counts) -> Places:
    """Lay out the city; `household_counts(community_residents)` returns households per community.

    Houses are made for every household plus a vacant share, so occupancy is decided here.
    """
    n_comm = max(3, round(n_residents / RESIDENTS_PER_COMMUNITY))
    streets = place_streets(seed, n_comm)
    rng = stream(seed, "communities")
    street_idx = np.repeat(np.arange(len(streets)), streets["n_communities"].to_numpy())
    seq = np.concatenate([np.arange(1, k + 1) for k in streets["n_communities"].to_numpy()])
    urban = (streets["level"].to_numpy() == "street")[street_idx]
    # Towns hold villages (嘎查/村, 2xx codes); streets hold communities (社区, 0xx codes).
    code_tail = np.where(urban, seq, 200 + seq)
    street_codes = streets["code"].to_numpy()[street_idx]
    codes = np.char.add(street_codes.astype("U9"), np.char.zfill(code_tail.astype(str), 3))
    words = rng.permutation(np.array(COMMUNITY_WORDS))
    base_names = np.array([words[(i * 7 + s) % len(words)] for i, s in zip(street_idx, seq)])
    names = np.char.add(base_names, np.where(urban, "社区", np.where(rng.random(n_comm) < 0.5, "嘎查", "村")))
    residents = split_total(n_residents, rng.lognormal(0, 0.3, n_comm))
    households = household_counts(residents)
    vacant = np.round(households * rng.uniform(0.05, 0.11, n_comm)).astype(np.int64)
    n_houses = households + vacant
    side = np.maximum(300.0, np.sqrt(n_houses) * 22.0)
    dist, ang = rng.uniform(300, 2_500, n_comm), rng.uniform(0, 2 * np.pi, n_comm)
    lon, lat = _offset(
        streets["centre_lon"].to_numpy()[street_idx],
        streets["centre_lat"].to_numpy()[street_idx],
        dist * np.cos(ang),
        dist * np.sin(ang),
    )
    communities = pl.DataFrame(
        {
            "community_code": codes,
            "community_name": names,
            "street_code": street_codes,
            "street_name": streets["name"].to_numpy()[street_idx],
            "banner_code": streets["parent_code"].to_numpy()[street_idx],
            "banner_name": streets["banner_name"].to_numpy()[street_idx],
            "kind": np.where(urban, "urban", "rural"),
            "centre_lon": np.round(lon, 6),
            "centre_lat": np.round(lat, 6),
            "side_m": np.round(side, 1),
            "residents": residents,
            "households": households,
            "houses": n_houses,
        }
    )
    return _subdivide(seed, communities)


def _subdivide(seed: int, communities: pl.DataFrame) -> Places:
    grids, estates, buildings, units, houses = [], [], [], [], []
    for c in communities.iter_rows(named=True):
        g, e, b, u, h = _community_layout(seed, c)
        grids.append(g)
        estates.append(e)
        buildings.append(b)
        units.append(u)
        houses.append(h)
    return Places(
        communities=communities,
        grids=pl.concat(grids),
        estates=pl.concat(estates),
        buildings=pl.concat(buildings),
        units=pl.concat(units),
        houses=pl.concat(houses),
    )


def _community_layout(seed: int, c: dict):
    code = c["community_code"]
    rng = stream(seed, "layout", int(code))
    urban = c["kind"] == "urban"
    n_houses = c["houses"]
    # Buildings until their capacity covers the houses; the last one is left partly unbuilt.
    floors_choice = np.array([6, 11, 18]) if urban else np.array([2, 3, 5])
    floors = rng.choice(floors_choice, n_houses)  # upper bound on buildings needed
    n_units = rng.integers(1, 4, n_houses)
    capacity = np.cumsum(floors * n_units * 2)
    n_build = int(np.searchsorted(capacity, n_houses) + 1)
    floors, n_units = floors[:n_build], n_units[:n_build]
    b_seq = np.arange(1, n_build + 1)
    b_codes = np.char.add(f"{code}B", np.char.zfill(b_seq.astype(str), 3))

    # Grids are equal strips of the community square, each with a contiguous run of buildings.
    n_grids = max(1, round(c["households"] / HOUSEHOLDS_PER_GRID))
    n_grids = min(n_grids, n_build)
    b_grid = np.minimum((np.arange(n_build) * n_grids) // n_build, n_grids - 1)
    side = c["side_m"]
    strip = side / n_grids
    g_seq = np.arange(1, n_grids + 1)
    g_codes = np.char.add(code, np.char.zfill(g_seq.astype(str), 3))
    g_east = -side / 2 + strip * (g_seq - 0.5)
    g_lon, g_lat = _offset(np.full(n_grids, c["centre_lon"]), np.full(n_grids, c["centre_lat"]), g_east, 0.0)
    grid_rings = _square(g_lon, g_lat, np.full(n_grids, strip / 2), np.full(n_grids, side / 2))
    grids = pl.DataFrame(
        {
            "grid_code": g_codes,
            "grid_name": np.char.add(np.char.add(c["community_name"], "第"), np.char.add(g_seq.astype(str), "网格")),
            "community_code": code,
            "centroid_lon": np.round(g_lon, 6),
            "centroid_lat": np.round(g_lat, 6),
            "ring": grid_rings,
        }
    )

    # Buildings on a jittered lattice inside their grid strip.
    within = np.arange(n_build) - np.searchsorted(b_grid, b_grid)
    per_grid = np.bincount(b_grid, minlength=n_grids)[b_grid]
    rows = np.ceil(np.sqrt(per_grid)).astype(np.int64)
    b_east = g_east[b_grid] + (((within % rows) + 0.5) / rows - 0.5) * strip * 0.8
    b_north = (((within // rows) + 0.5) / np.ceil(per_grid / rows) - 0.5) * side * 0.8
    b_lon, b_lat = _offset(np.full(n_build, c["centre_lon"]), np.full(n_build, c["centre_lat"]), b_east, b_north)

    # Estates group consecutive buildings.
    est_sizes = rng.integers(8, 31, n_build)
    b_estate = np.searchsorted(np.cumsum(est_sizes), np.arange(n_build), side="right")
    n_est = int(b_estate.max()) + 1
    e_codes = np.char.add(f"{code}E", np.char.zfill(np.arange(1, n_est + 1).astype(str), 2))
    e_names = np.char.add(rng.choice(np.array(COMMUNITY_WORDS), n_est), rng.choice(np.array(ESTATE_WORDS), n_est))
    estates = pl.DataFrame(
        {
            "estate_code": e_codes,
            "estate_name": e_names,
            "community_code": code,
            "built_year": rng.integers(1995, 2022, n_est),
        }
    )
    buildings = pl.DataFrame(
        {
            "building_code": b_codes,
            "building_no": b_seq,
            "estate_code": e_codes[b_estate],
            "grid_code": g_codes[b_grid],
            "community_code": code,
            "floors": floors,
            "units": n_units,
            "lon": np.round(b_lon, 6),
            "lat": np.round(b_lat, 6),
        }
    )
    u_build = np.repeat(np.arange(n_build), n_units)
    u_no = np.arange(len(u_build)) - np.searchsorted(u_build, u_build) + 1
    u_codes = np.char.add(b_codes[u_build], np.char.zfill(u_no.astype(str), 2))
    units = pl.DataFrame(
        {"unit_code": u_codes, "unit_no": u_no, "building_code": b_codes[u_build], "floors": floors[u_build]}
    )
    # Houses: two per floor per unit, numbered floor * 100 + room, truncated at the needed count.
    per_unit = floors[u_build] * 2
    h_unit = np.repeat(np.arange(len(u_build)), per_unit)[:n_houses]
    k = np.arange(len(h_unit)) - np.searchsorted(h_unit, h_unit)
    h_floor, h_room = k // 2 + 1, k % 2 + 1
    room_no = h_floor * 100 + h_room
    h_codes = np.char.add(u_codes[h_unit], np.char.zfill(room_no.astype(str), 4))
    hb = u_build[h_unit]
    address = np.char.add(
        np.char.add(
            np.char.add(f"内蒙古自治区鄂尔多斯市{c['banner_name']}{c['street_name']}{c['community_name']}", e_names[b_estate[hb]]),
            np.char.add(b_seq[hb].astype(str), "栋"),
        ),
        np.char.add(np.char.add(u_no[h_unit].astype(str), "单元"), np.char.add(room_no.astype(str), "室")),
    )
    houses = pl.DataFrame(
        {
            "house_code": h_codes,
            "unit_code": u_codes[h_unit],
            "building_code": b_codes[hb],
            "estate_code": e_codes[b_estate[hb]],
            "grid_code": g_codes[b_grid[hb]],
            "community_code": code,
            "floor": h_floor,
            "room_no": room_no.astype(str),
            "area_m2": np.round(np.clip(rng.normal(95, 25, len(h_unit)), 38, 220), 1),
            "use": rng.choice(np.array(["住宅", "住宅", "住宅", "住宅", "商住", "公寓"]), len(h_unit)),
            "ownership": rng.choice(
                np.array(["商品房", "商品房", "商品房", "房改房", "公租房", "自建房"]), len(h_unit)
            ),
            "address": address,
        }
    )
    return grids, estates, buildings, units, houses
