"""Behaviour that carries truth: who goes quiet, which houses are empty or crowded, what leaks or dies.

Each behaviour is decided here once, so the feeds that show it and the truth tables that list
it cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from linli.citygen.events import DAY, INF
from linli.citygen.people import ELDERLY_ALONE_TAG
from linli.citygen.random import stream

INACTIVE_SHARE = 0.2  # of elderly residents living alone, whose door activity stops
INACTIVE_HOURS = 48  # silence that makes one of them a concern
OFFLINE_HOURS = 24  # silence that makes a reporting device offline
OFFLINE_SHARE = {"door": 0.01, "barrier_gate": 0.02, "water_meter": 0.01, "electricity_meter": 0.01, "gas_meter": 0.01}
LEAK_SHARE = 0.1  # of hourly water meters in ordinary homes
OVERCROWDED_MIN_PERSONS = 6
OVERCROWDED_MAX_M2_PER_PERSON = 12
PATROL_MISS_RATE = 0.03


@dataclass
class Behaviour:
    residents: pl.DataFrame  # + door_id, elderly_alone, inactive_after
    devices: pl.DataFrame  # + offline_after, household_size, leak, protected
    elderly_alone_inactive: pl.DataFrame
    vacant_house: pl.DataFrame
    overcrowded_house: pl.DataFrame
    meter_leak: pl.DataFrame
    device_offline: pl.DataFrame


def plan(seed: int, residents: pl.DataFrame, houses: pl.DataFrame, devices: pl.DataFrame, start_sec: int, days: int) -> Behaviour:
    rng = stream(seed, "behaviour")
    end = start_sec + days * DAY
    elderly = residents["special_groups"].str.contains(ELDERLY_ALONE_TAG).to_numpy()
    inactive = elderly & (rng.random(len(residents)) < INACTIVE_SHARE)
    # The last door event falls 48-72 hours before the end of the period (or before it began).
    inactive_after = np.where(inactive, end - rng.integers(INACTIVE_HOURS * 3600, (INACTIVE_HOURS + 24) * 3600, len(residents)), INF)
    residents = residents.with_columns(
        door_id=pl.lit("DR") + pl.col("house_code").str.slice(0, pl.col("house_code").str.len_chars() - 4),
        elderly_alone=pl.Series(elderly),
        inactive_after=pl.Series(inactive_after),
    )

    size = houses.select("house_code", "household_size", "area_m2", "community_code", "grid_code")
    devices = devices.join(size.select("house_code", "household_size"), on="house_code", how="left").with_columns(
        pl.col("household_size").fill_null(0)
    )
    kind = devices["kind"].to_numpy()
    hh = devices["household_size"].to_numpy()
    meter = np.char.endswith(kind.astype(str), "_meter")
    ordinary = meter & (hh >= 1) & (hh < OVERCROWDED_MIN_PERSONS)
    elderly_units = set(residents.filter(pl.col("elderly_alone"))["door_id"].to_list())
    door_ok = (kind == "door") & ~devices["device_id"].is_in(list(elderly_units)).to_numpy()
    eligible = np.where(meter, ordinary, np.where(kind == "door", door_ok, kind == "barrier_gate"))
    share = np.array([OFFLINE_SHARE.get(k, 0.0) for k in kind])
    offline = eligible & (rng.random(len(kind)) < share)
    hourly_water = (kind == "water_meter") & (devices["interval_minutes"].fill_null(0).to_numpy() == 60)
    leak = hourly_water & ordinary & ~offline & (rng.random(len(kind)) < LEAK_SHARE)
    # An offline device stops at least a day before the end (for a one-day period: from the start).
    offline_after = np.where(offline, start_sec + rng.integers(0, max(1, days - 1) * DAY, len(kind)), INF)
    offline_after = np.where(offline & (days == 1), start_sec, offline_after)
    troubled_houses = set(devices.filter(pl.Series(offline | leak))["house_code"].drop_nulls().to_list())
    protected = meter & (~ordinary | devices["house_code"].is_in(list(troubled_houses)).fill_null(False).to_numpy())
    devices = devices.with_columns(
        offline_after=pl.Series(offline_after), leak=pl.Series(leak), protected=pl.Series(protected)
    )

    def ts(col: str) -> pl.Expr:
        return pl.from_epoch(pl.col(col), time_unit="s")

    return Behaviour(
        residents=residents,
        devices=devices,
        elderly_alone_inactive=residents.filter(pl.Series(inactive)).select(
            "id_no", "community_code", "grid_code", "house_code", ts("inactive_after").alias("silent_since")
        ),
        vacant_house=size.filter(pl.col("household_size") == 0).select("house_code", "grid_code", "community_code"),
        overcrowded_house=size.filter(
            (pl.col("household_size") >= OVERCROWDED_MIN_PERSONS)
            & (pl.col("area_m2") / pl.col("household_size") < OVERCROWDED_MAX_M2_PER_PERSON)
        ).select("house_code", "grid_code", "community_code", pl.col("household_size").alias("persons"), "area_m2"),
        meter_leak=devices.filter(pl.col("leak")).select("device_id", "house_code", "community_code"),
        device_offline=devices.filter(pl.Series(offline)).select(
            "device_id", "kind", "community_code", ts("offline_after").alias("offline_since")
        ),
    )
