"""One day of device feeds and work orders for a chunk of communities, as clean polars frames.

Times are whole seconds of Beijing wall-clock time since 1970-01-01; each vendor's layout is
applied when the frame is formatted. `_protected` marks rows the truth depends on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

DAY = 86_400
INF = np.iinfo(np.int64).max
HOURLY_ACTIVITY = np.array([1, 0.5, 0.3, 0.3, 0.5, 1.5, 4, 8, 7, 4, 3, 3, 4, 3, 3, 3, 4, 7, 8, 6, 5, 4, 3, 2], float)
HOURLY_ACTIVITY /= HOURLY_ACTIVITY.sum()
ALARM_KINDS = np.array(["fall", "fight", "smoke_fire", "corridor_clutter", "ebike_in_lift", "object_thrown", "crowding"])
ALARM_P = np.array([0.1, 0.05, 0.05, 0.35, 0.25, 0.05, 0.15])
FACE_JPEG = "/9j/4AAQSkZJRgABAQEASABIAAD"
WATER_NIGHT_HOURS = [1, 2, 3, 4]  # hourly intervals ending 01:59 .. 04:59 carry no use in a sound home
LEAK_FLOW = (0.02, 0.06)  # m³ per hour through a leaking pipe

# How each vendor writes a time.
TIME_LAYOUT = {
    "hikvision": "iso",
    "dahua": "epoch_ms",
    "leelen": "slash",
}


def timestamps(rng, day_sec: int, n: int, profile: np.ndarray = HOURLY_ACTIVITY) -> np.ndarray:
    hours = rng.choice(24, n, p=profile)
    return day_sec + hours * 3600 + rng.integers(0, 3600, n)


def format_time(seconds: pl.Expr, layout: str) -> pl.Expr:
    dt = pl.from_epoch(seconds, time_unit="s")
    if layout == "iso":
        return dt.dt.strftime("%Y-%m-%dT%H:%M:%S+08:00")
    if layout == "slash":
        return dt.dt.strftime("%Y/%m/%d %H:%M:%S")
    if layout == "epoch_ms":
        return ((seconds - 8 * 3600) * 1000).cast(pl.Utf8)
    return dt.dt.strftime("%Y-%m-%d %H:%M:%S")


def _frame(columns: dict) -> pl.DataFrame:
    """A frame from NumPy columns; object arrays (strings taken out of polars) become strings."""
    return pl.DataFrame(
        {k: pl.Series(k, v.tolist(), dtype=pl.Utf8) if isinstance(v, np.ndarray) and v.dtype == object else v for k, v in columns.items()}
    )


def _ids(prefix: str, n: int, day: str, chunk: int) -> pl.Expr:
    return pl.lit(f"{prefix}{day}{chunk:03d}") + pl.int_range(1, n + 1).cast(pl.Utf8).str.zfill(7)


@dataclass
class Chunk:
    """What one chunk of communities needs to produce its events."""

    index: int
    residents: pl.DataFrame  # id_no, phone, door_id, inactive_after, elderly_alone, household_size
    devices: pl.DataFrame  # device_id, kind, vendor, estate_code, offline_after, ...
    vehicles: pl.DataFrame  # plate, estate_code, vehicle_type, plate_color
    grids: pl.DataFrame  # grid_code, community_code
    staff: pl.DataFrame  # staff_id, grid_code
    n_residents: int
    frequent: np.ndarray  # phones of residents who report again and again


def _online(times: np.ndarray, offline_after: np.ndarray) -> np.ndarray:
    return times < offline_after


def door_access(rng, day_sec: int, day: str, c: Chunk) -> pl.DataFrame:
    r = c.residents
    n = len(r)
    counts = rng.integers(2, 5, n)
    who = np.repeat(np.arange(n), counts)
    t = timestamps(rng, day_sec, len(who))
    doors = c.devices.filter(pl.col("kind") == "door")
    door_pos = {d: i for i, d in enumerate(doors["device_id"].to_list())}
    door_of = np.array([door_pos[d] for d in r["door_id"].to_list()], dtype=np.int64)
    off = doors["offline_after"].to_numpy()
    keep = (t < r["inactive_after"].to_numpy()[who]) & (t < off[door_of[who]])
    who, t = who[keep], t[keep]
    # Property staff open every working door at least once a day with a card.
    staff_t = timestamps(rng, day_sec, len(doors))
    staff_keep = staff_t < off
    dev = np.concatenate([door_of[who], np.flatnonzero(staff_keep)])
    m = len(who)
    methods = rng.choice(np.array(["face", "card", "qr", "password"]), m, p=[0.5, 0.3, 0.15, 0.05])
    frame = _frame(
        {
            "device_id": doors["device_id"].to_numpy()[dev],
            "vendor": doors["vendor"].to_numpy()[dev],
            "t": np.concatenate([t, staff_t[staff_keep]]),
            "id_no": np.concatenate([r["id_no"].to_numpy()[who], np.full(int(staff_keep.sum()), None)]),
            "open_method": np.concatenate([methods, np.full(int(staff_keep.sum()), "card")]),
            "direction": rng.choice(np.array(["in", "out"]), len(dev)),
            "result": np.where(rng.random(len(dev)) < 0.98, "success", "denied"),
            "_protected": np.concatenate([r["elderly_alone"].to_numpy()[who], np.zeros(int(staff_keep.sum()), bool)]),
        }
    ).sort("t", "device_id")
    face = (pl.col("open_method") == "face") & (pl.col("vendor") == "hikvision") & pl.Series(rng.random(len(frame)) < 0.1)
    return frame.with_columns(
        event_id=_ids("E", len(frame), day, c.index),
        face_image=pl.when(face).then(pl.lit(FACE_JPEG)),
    )


def barrier_gate(rng, day_sec: int, day: str, c: Chunk) -> pl.DataFrame:
    gates = c.devices.filter(pl.col("kind") == "barrier_gate")
    v = c.vehicles.join(
        gates.group_by("estate_code", maintain_order=True).agg(pl.col("device_id").first().alias("gate_a"), pl.col("device_id").last().alias("gate_b")),
        on="estate_code",
    )
    n = len(v)
    # Residents' cars leave in the morning and come back later; some go out twice.
    trips = rng.integers(1, 3, n)
    car = np.repeat(np.arange(n), trips)
    k = np.arange(len(car)) - np.searchsorted(car, car)
    out_t = day_sec + np.where(k == 0, rng.integers(6 * 3600, 10 * 3600, len(car)), rng.integers(13 * 3600, 16 * 3600, len(car)))
    back_t = out_t + rng.integers(1800, 3 * 3600, len(car))
    gate = np.where(rng.random(len(car)) < 0.5, v["gate_a"].to_numpy()[car], v["gate_b"].to_numpy()[car]).astype(str)
    resident = _frame(
        {
            "device_id": np.concatenate([gate, gate]),
            "t": np.concatenate([out_t, back_t]),
            "plate": np.concatenate([v["plate"].to_numpy()[car]] * 2),
            "direction": np.concatenate([np.full(len(car), "出"), np.full(len(car), "入")]),
            "vehicle_type": np.concatenate([v["vehicle_type"].to_numpy()[car]] * 2),
            "plate_color": np.concatenate([v["plate_color"].to_numpy()[car]] * 2),
        }
    )
    # Visitors come in, then leave: at least one visit per gate per day.
    visits = rng.integers(1, 6, len(gates))
    g = np.repeat(np.arange(len(gates)), visits)
    in_t = day_sec + rng.integers(8 * 3600, 20 * 3600, len(g))
    plates = np.char.add("蒙K", np.char.add(rng.choice(np.array(list("ABCDEFGHJKLMN")), len(g)), np.char.zfill(rng.integers(0, 10**4, len(g)).astype(str), 4)))
    visitors = _frame(
        {
            "device_id": np.concatenate([gates["device_id"].to_numpy()[g]] * 2),
            "t": np.concatenate([in_t, in_t + rng.integers(600, 4 * 3600, len(g))]),
            "plate": np.concatenate([plates] * 2),
            "direction": np.concatenate([np.full(len(g), "入"), np.full(len(g), "出")]),
            "vehicle_type": "小型轿车",
            "plate_color": "蓝",
        }
    )
    frame = (
        pl.concat([resident, visitors])
        .join(gates.select("device_id", "vendor", "offline_after"), on="device_id")
        .filter((pl.col("t") < pl.col("offline_after")) & (pl.col("t") < day_sec + DAY))
        .sort("t", "device_id", "plate")
    )
    return frame.with_columns(pass_id=_ids("P", len(frame), day, c.index), _protected=pl.lit(False))


def locker(rng, day_sec: int, day: str, c: Chunk) -> pl.DataFrame:
    lockers = c.devices.filter(pl.col("kind") == "locker")
    per = rng.poisson(20, len(lockers))
    d = np.repeat(np.arange(len(lockers)), per)
    kind = rng.choice(np.array(["寄件", "取件", "购物"]), len(d), p=[0.2, 0.6, 0.2])
    amount = np.where(kind == "寄件", rng.integers(8, 21, len(d)), np.where(kind == "购物", rng.integers(3, 51, len(d)), 0))
    phones = c.residents.filter(pl.col("phone") != "")["phone"].to_numpy()
    frame = _frame(
        {
            "device_id": lockers["device_id"].to_numpy()[d],
            "vendor": lockers["vendor"].to_numpy()[d],
            "t": timestamps(rng, day_sec, len(d)),
            "txn_type": kind,
            "amount": np.round(amount + np.where(kind == "购物", rng.integers(0, 100, len(d)) / 100, 0), 2),
            "phone": rng.choice(phones, len(d)) if len(phones) else np.full(len(d), ""),
        }
    ).sort("t", "device_id")
    return frame.with_columns(txn_id=_ids("T", len(frame), day, c.index), _protected=pl.lit(False))


def patrol(rng, day_sec: int, day: str, c: Chunk, rounds: list[str], miss_rate: float):
    """Check-ins per patrol point and round; returns (frame, missed (device_id, round_no) pairs)."""
    points = c.devices.filter(pl.col("kind") == "patrol_point")
    n = len(points)
    p = np.repeat(np.arange(n), len(rounds))
    rnd = np.tile(np.arange(1, len(rounds) + 1), n)
    at = np.tile(np.array([int(r[:2]) * 3600 + int(r[3:]) * 60 for r in rounds]), n)
    missed = rng.random(len(p)) < miss_rate
    t = day_sec + at + rng.integers(-40 * 60, 40 * 60, len(p))
    frame = _frame(
        {
            "device_id": points["device_id"].to_numpy()[p],
            "vendor": points["vendor"].to_numpy()[p],
            "guard_id": np.char.add("SG", points["estate_code"].to_numpy()[p]),
            "t": t,
            "round_no": rnd.astype(str),
        }
    ).filter(pl.Series(~missed)).sort("t", "device_id")
    missed_rows = _frame({"device_id": points["device_id"].to_numpy()[p][missed], "round_no": rnd[missed]})
    return frame.with_columns(checkin_id=_ids("C", len(frame), day, c.index), _protected=pl.lit(False)), missed_rows


def camera_alarm(rng, day_sec: int, day: str, c: Chunk) -> pl.DataFrame:
    cams = c.devices.filter(pl.col("kind") == "camera")
    per = rng.poisson(0.3, len(cams))
    d = np.repeat(np.arange(len(cams)), per)
    kind = rng.choice(ALARM_KINDS, len(d), p=ALARM_P)
    frame = _frame(
        {
            "device_id": cams["device_id"].to_numpy()[d],
            "vendor": cams["vendor"].to_numpy()[d],
            "t": timestamps(rng, day_sec, len(d)),
            "alarm_type": kind,
            "confidence": np.round(rng.uniform(0.6, 0.99, len(d)), 2),
            "face_image": np.where(np.isin(kind, ["fall", "fight"]) & (rng.random(len(d)) < 0.5), FACE_JPEG, None),
        }
    ).sort("t", "device_id")
    return frame.with_columns(alarm_id=_ids("A", len(frame), day, c.index), _protected=pl.lit(False))


def meter_readings(rng, day_sec: int, c: Chunk, state: np.ndarray) -> pl.DataFrame:
    """Cumulative readings; `state` (per meter of the chunk, in device order) is advanced in place."""
    meters = c.devices.filter(pl.col("kind").str.ends_with("_meter"))
    kind = meters["kind"].to_numpy()
    size = meters["household_size"].to_numpy()
    use = np.select(
        [kind == "water_meter", kind == "electricity_meter"],
        [size * 0.12 * rng.uniform(0.7, 1.3, len(kind)), np.where(size > 0, 2 + size * 1.5, 0.3) * rng.uniform(0.8, 1.2, len(kind))],
        default=np.where(size > 0, 0.3 + size * 0.2, 0) * rng.uniform(0.8, 1.2, len(kind)),
    )
    leak = meters["leak"].to_numpy()
    interval = meters["interval_minutes"].to_numpy()
    per_day = DAY // (interval * 60)
    slots = np.repeat(np.arange(len(kind)), per_day)
    k = np.arange(len(slots)) - np.searchsorted(slots, slots)
    share = np.ones(len(slots))
    hourly_water = (interval[slots] == 60) & (kind[slots] == "water_meter")
    share[hourly_water] = np.where(np.isin(k[hourly_water], WATER_NIGHT_HOURS), 0, rng.uniform(0.5, 1.5, int(hourly_water.sum())))
    sums = np.bincount(slots, weights=share, minlength=len(kind))
    amount = use[slots] * share / np.where(sums[slots] > 0, sums[slots], 1)
    amount += np.where(hourly_water & leak[slots], rng.uniform(*LEAK_FLOW, len(slots)), 0)
    amount = np.round(amount, 3)
    running = np.cumsum(amount)
    before_meter = np.concatenate([[0.0], running])[np.searchsorted(slots, slots)]
    cum = state[slots] + running - before_meter
    # Daily meters freeze a reading a little before midnight; interval meters at each slot end.
    t = np.where(
        per_day[slots] == 1,
        day_sec + 23 * 3600 + 50 * 60 + rng.integers(0, 9, len(slots)) * 60,
        day_sec + (k + 1) * interval[slots] * 60 - 1,
    )
    state += np.bincount(slots, weights=amount, minlength=len(kind))
    off = meters["offline_after"].to_numpy()[slots]
    litres = (meters["vendor"].to_numpy()[slots] == "xintian")
    frame = _frame(
        {
            "device_id": meters["device_id"].to_numpy()[slots],
            "vendor": meters["vendor"].to_numpy()[slots],
            "t": t,
            "reading": np.where(litres, np.round(cum * 1000, 0).astype(np.int64).astype(str), np.round(cum, 3).astype(str)),
            "unit": np.where(litres, "L", np.where(kind[slots] == "electricity_meter", "kWh", "m3")),
            "_protected": meters["protected"].to_numpy()[slots],
        }
    )
    return frame.filter(pl.Series(t < off)).sort("t", "device_id")


WORK_ORDER_CATEGORIES = np.array(["环境卫生", "设施维修", "治安隐患", "矛盾纠纷", "噪音扰民", "违章搭建", "消防隐患", "民生服务", "物业服务"])
WORK_ORDER_CATEGORY_P = np.array([0.2, 0.22, 0.05, 0.08, 0.1, 0.04, 0.04, 0.12, 0.15])
WORK_ORDER_CHANNELS = np.array(["居民APP", "网格员上报", "视频监控", "12345热线"])
WORK_ORDER_CHANNEL_P = np.array([0.4, 0.3, 0.1, 0.2])
DESCRIPTIONS = {
    "环境卫生": "楼道堆放垃圾无人清理", "设施维修": "单元门禁损坏需维修", "治安隐患": "小区围墙破损存在安全隐患",
    "矛盾纠纷": "邻里因停车位发生纠纷", "噪音扰民": "夜间装修噪音扰民", "违章搭建": "楼顶私自搭建彩钢房",
    "消防隐患": "电动车楼道充电", "民生服务": "咨询养老补贴办理流程", "物业服务": "物业费收缴争议",
}
LIFECYCLE = ["reported", "accepted", "dispatched", "handled", "closed", "evaluated"]


def work_orders(rng, day_sec: int, day: str, c: Chunk) -> pl.DataFrame:
    """Orders reported this day, each step's time (or null when it falls after `end`)."""
    n = int(rng.poisson(c.n_residents / 200))
    grid = rng.integers(0, len(c.grids), n)
    channel = rng.choice(WORK_ORDER_CHANNELS, n, p=WORK_ORDER_CHANNEL_P)
    category = np.where(channel == "视频监控", rng.choice(np.array(["消防隐患", "环境卫生", "治安隐患"]), n), rng.choice(WORK_ORDER_CATEGORIES, n, p=WORK_ORDER_CATEGORY_P))
    phones = c.residents.filter(pl.col("phone") != "")["phone"].to_numpy()
    reporter = rng.choice(phones, n) if len(phones) else np.full(n, "")
    # A few residents complain again and again (重复投诉).
    if len(c.frequent):
        repeat = (rng.random(n) < 0.15) & np.isin(channel, ["居民APP", "12345热线"])
        reporter = np.where(repeat, rng.choice(c.frequent, n), reporter)
    reporter = np.where(np.isin(channel, ["居民APP", "12345热线"]), reporter, "")
    reported = day_sec + rng.integers(7 * 3600, 22 * 3600, n)
    steps = np.stack(
        [
            rng.integers(300, 3600, n),
            rng.integers(600, 7200, n),
            (rng.lognormal(np.log(5 * 3600), 0.8, n)).astype(np.int64),
            rng.integers(1800, 24 * 3600, n),
            rng.integers(3600, 48 * 3600, n),
        ],
        axis=1,
    )
    times = np.concatenate([reported[:, None], reported[:, None] + np.cumsum(steps, axis=1)], axis=1)
    staff = c.staff.filter(pl.col("grid_code") != "")
    staff_of = dict(zip(staff["grid_code"].to_list(), staff["staff_id"].to_list()))
    grid_codes = c.grids["grid_code"].to_numpy()[grid]
    frame = _frame(
        {
            "category": category,
            "channel": channel,
            "community_code": c.grids["community_code"].to_numpy()[grid],
            "grid_code": grid_codes,
            "reporter_phone": reporter,
            "description": np.array([DESCRIPTIONS[k] for k in category]),
            **{step: times[:, i] for i, step in enumerate(LIFECYCLE)},
            "satisfaction": rng.choice(np.array([1, 2, 3, 4, 5]), n, p=[0.03, 0.05, 0.12, 0.3, 0.5]),
            "handler": np.array([staff_of.get(g, "") for g in grid_codes]),
        }
    ).sort("reported", "grid_code")
    return frame.with_columns(order_no=_ids("GD", len(frame), day, c.index), _protected=pl.lit(False))
