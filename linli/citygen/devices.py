"""The thing library's ground: the device registry and the residents' vehicles."""

from __future__ import annotations

import numpy as np
import polars as pl

from linli.citygen.random import stream

# Device kinds, the vendors that supply them (file names use the vendor key) and reading units.
VENDORS = {
    "door": ["hikvision", "dahua", "leelen"],
    "barrier_gate": ["jieshun", "keytop"],
    "locker": ["hivebox", "suyidi"],
    "patrol_point": ["landwell"],
    "camera": ["hikvision", "dahua", "uniview"],
    "water_meter": ["sanchuan", "xintian"],
    "electricity_meter": ["wasion"],
    "gas_meter": ["goldcard"],
}
METER_KINDS = ("water_meter", "electricity_meter", "gas_meter")
PATROL_ROUNDS = ("08:00", "14:00", "20:00")
PREFIX = {
    "door": "DR",
    "barrier_gate": "BG",
    "locker": "LK",
    "patrol_point": "PP",
    "camera": "CM",
    "water_meter": "WM",
    "electricity_meter": "EM",
    "gas_meter": "GM",
}


def _estate_devices(rng, kind: str, estates: pl.DataFrame, per_estate: np.ndarray) -> pl.DataFrame:
    idx = np.repeat(np.arange(len(estates)), per_estate)
    seq = np.arange(len(idx)) - np.searchsorted(idx, idx) + 1
    codes = estates["estate_code"].to_numpy()[idx]
    vendors = np.array(VENDORS[kind])
    return pl.DataFrame(
        {
            "device_id": np.char.add(np.char.add(PREFIX[kind], codes), np.char.zfill(seq.astype(str), 3)),
            "kind": kind,
            "vendor": vendors[rng.integers(0, len(vendors), len(estates))][idx],
            "estate_code": codes,
            "community_code": estates["community_code"].to_numpy()[idx],
        }
    )


def build_devices(seed: int, estates, buildings, units, houses, interval_share: float, start_date) -> pl.DataFrame:
    """Every device: unit doors, estate gates, lockers, patrol points, cameras and per-house meters."""
    rng = stream(seed, "devices")
    b_per_estate = buildings.group_by("estate_code", maintain_order=True).len()
    estates = estates.join(b_per_estate, on="estate_code", how="left")
    n_b = estates["len"].to_numpy()
    b_loc = buildings.select("building_code", "estate_code", "lon", "lat")
    estate_loc = buildings.group_by("estate_code", maintain_order=True).agg(pl.col("lon").mean(), pl.col("lat").mean())

    # Unit doors: one per unit, vendor chosen per estate.
    u = units.join(b_loc, on="building_code").join(estates.select("estate_code", "community_code"), on="estate_code")
    door_vendor = dict(zip(estates["estate_code"].to_list(), rng.choice(VENDORS["door"], len(estates))))
    doors = u.select(
        device_id=pl.lit("DR") + pl.col("unit_code"),
        kind=pl.lit("door"),
        vendor=pl.col("estate_code").replace_strict(door_vendor),
        estate_code="estate_code",
        community_code="community_code",
        building_code="building_code",
        unit_code="unit_code",
        lon="lon",
        lat="lat",
    )

    parts = [doors]
    for kind, count in (
        ("barrier_gate", np.full(len(estates), 2)),
        ("locker", np.maximum(1, n_b // 4)),
        ("patrol_point", np.maximum(3, n_b // 2)),
        ("camera", n_b + 2),
    ):
        d = _estate_devices(rng, kind, estates, count).join(estate_loc, on="estate_code")
        jitter = rng.normal(0, 0.0007, (len(d), 2))
        parts.append(
            d.with_columns(
                building_code=pl.lit(None, pl.Utf8),
                unit_code=pl.lit(None, pl.Utf8),
                lon=(pl.col("lon") + pl.Series(jitter[:, 0])).round(6),
                lat=(pl.col("lat") + pl.Series(jitter[:, 1])).round(6),
            )
        )

    # Meters: water and electricity in every house, gas in most; a share report at short intervals.
    h = houses.join(b_loc.drop("estate_code"), on="building_code")
    smart = rng.random(len(h)) < interval_share
    has_gas = rng.random(len(h)) < 0.7
    for kind, present, interval in (
        ("water_meter", np.ones(len(h), bool), np.where(smart, 60, 1440)),
        ("electricity_meter", np.ones(len(h), bool), np.where(smart, 15, 1440)),
        ("gas_meter", has_gas, np.full(len(h), 1440)),
    ):
        vendors = np.array(VENDORS[kind])
        m = h.filter(pl.Series(present)).select(
            device_id=pl.lit(PREFIX[kind]) + pl.col("house_code"),
            kind=pl.lit(kind),
            vendor=pl.Series(vendors[rng.integers(0, len(vendors), int(present.sum()))]),
            estate_code="estate_code",
            community_code="community_code",
            building_code="building_code",
            unit_code="unit_code",
            house_code="house_code",
            lon="lon",
            lat="lat",
            interval_minutes=pl.Series(interval[present]),
            base_reading=pl.Series(np.round(rng.uniform(10, 3000, int(present.sum())), 2)),
        )
        parts.append(m)

    devices = pl.concat(parts, how="diagonal_relaxed")
    n = len(devices)
    return devices.with_columns(
        model=pl.col("vendor").str.to_uppercase() + "-" + pl.Series(rng.integers(100, 999, n).astype(str)),
        installed_at=pl.Series(
            np.datetime64(start_date) - rng.integers(60, 3000, n).astype("timedelta64[D]")
        ),
        patrol_rounds=pl.when(pl.col("kind") == "patrol_point").then(pl.lit(";".join(PATROL_ROUNDS))),
        status=pl.lit("在用"),
    )


PLATE_CHARS = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"))


def build_vehicles(seed: int, residents: pl.DataFrame) -> pl.DataFrame:
    """About 0.3 vehicles per household, registered to the householder; plates mostly 蒙K (Ordos)."""
    rng = stream(seed, "vehicles")
    heads = residents.filter((pl.col("relation") == "02") & (pl.col("age") >= 20))
    has = rng.random(len(heads)) < 0.35
    owners = heads.filter(pl.Series(has))
    n = len(owners)
    want = int(n * 1.2) + 10
    region = rng.choice(np.array(["蒙K", "蒙A", "蒙B", "陕K", "晋F"]), want, p=[0.85, 0.05, 0.04, 0.04, 0.02])
    new_energy = rng.random(want) < 0.12
    body5 = np.array(["".join(r) for r in rng.choice(PLATE_CHARS, (want, 5))])
    ev = np.char.add(rng.choice(np.array(["D", "F"]), want), np.char.zfill(rng.integers(0, 100_000, want).astype(str), 5))
    plates = np.char.add(region, np.where(new_energy, ev, body5))
    _, first = np.unique(plates, return_index=True)
    plates = plates[np.sort(first)][:n]
    ne = new_energy[np.sort(first)][:n]
    return pl.DataFrame(
        {
            "plate": plates,
            "owner_id_no": owners["id_no"],
            "house_code": owners["house_code"],
            "community_code": owners["community_code"],
            "vehicle_type": np.where(ne, "新能源小型车", rng.choice(np.array(["小型轿车", "SUV", "MPV", "皮卡"]), n)),
            "plate_color": np.where(ne, "绿", "蓝"),
            "color": rng.choice(np.array(["白", "黑", "银", "灰", "红", "蓝"]), n),
        }
    )
