"""`linli generate`: the synthetic Ordos city, its deliveries and its truth."""

from __future__ import annotations

import ctypes
import gc
import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from linli.citygen import events as ev
from linli.citygen.behaviour import PATROL_MISS_RATE, plan
from linli.citygen.deliveries import FILE_DEFECTS, LineFile, Manifest, mix_defects, write_registry_xlsx
from linli.citygen.devices import PATROL_ROUNDS, build_devices, build_vehicles
from linli.citygen.orgs import build_grid_staff, build_organizations
from linli.citygen.people import build_people, household_counts
from linli.citygen.places import build_places
from linli.citygen.random import stream
from linli.citygen.sources import (
    CAMERA, DOOR, GATE, LOCKER, METER, ORGANIZATION, PATROL, REGISTRY, REGISTRY_CSV, REGISTRY_HEADER_VARIANTS, WORK_ORDER,
)

CHUNK_RESIDENTS = 100_000
SEX = {"1": "男", "2": "女"}
ETHNICITY = {"01": "汉族", "02": "蒙古族", "03": "回族", "11": "满族", "31": "达斡尔族"}
RELATION = {"02": "户主", "10": "配偶", "20": "子", "30": "女", "50": "父母", "99": "非亲属"}


@dataclass
class GenerateConfig:
    out: Path
    residents: int
    days: int
    seed: int
    start_date: date = date(2024, 5, 1)
    defect_rate: float = 0.02
    interval_share: float = 0.05


def generate(cfg: GenerateConfig, progress: Callable[[str, int, int], None] = lambda *a: None, keep_world: bool = False) -> dict | None:
    """Write deliveries/ and truth/ under cfg.out; with keep_world, return the clean city's tables."""
    out = Path(cfg.out)
    for sub in ("deliveries", "truth"):
        shutil.rmtree(out / sub, ignore_errors=True)
    dl, truth = out / "deliveries", out / "truth"
    dl.mkdir(parents=True)
    truth.mkdir(parents=True)
    manifest = Manifest(dl)
    start = np.datetime64(cfg.start_date.isoformat(), "D")
    start_sec = int(start.astype("datetime64[s]").astype(np.int64))

    progress("city", 0, 1)
    places = build_places(cfg.seed, cfg.residents, household_counts(cfg.seed))
    residents, houses = build_people(cfg.seed, start, places.communities, places.houses)
    release_memory()
    orgs, estates = build_organizations(cfg.seed, places.communities, places.estates)
    staff = build_grid_staff(cfg.seed, places.grids, places.communities, start)
    devices = build_devices(cfg.seed, estates, places.buildings, places.units, houses, cfg.interval_share, start)
    vehicles = build_vehicles(cfg.seed, residents)
    beh = plan(cfg.seed, residents, houses, devices, start_sec, cfg.days)
    progress("city", 1, 1)

    _write_places(dl, manifest, places, houses, estates)
    _write_registry(dl, manifest, cfg, places.communities, residents)
    _write_static(dl, manifest, cfg, orgs, staff, devices, vehicles)
    _write_truth(truth, beh, houses, residents)

    world = (
        {
            "communities": places.communities, "grids": places.grids.drop("ring"), "estates": estates,
            "buildings": places.buildings, "houses": houses, "residents": residents, "vehicles": vehicles,
            "organizations": orgs, "grid_staff": staff,
        }
        if keep_world
        else None
    )
    # The feeds need only a few columns: let the city's big tables go to bound memory at full scale.
    feed_residents = beh.residents.select("community_code", "id_no", "phone", "door_id", "inactive_after", "elderly_alone")
    feed_devices = beh.devices.select(
        "device_id", "kind", "vendor", "estate_code", "community_code", "offline_after", "household_size", "leak",
        "protected", "interval_minutes", "base_reading",
    )
    feed_vehicles = vehicles.join(houses.select("house_code", "estate_code"), on="house_code").select(
        "plate", "estate_code", "community_code", "vehicle_type", "plate_color"
    )
    communities, grids = places.communities, places.grids.select("grid_code", "community_code")
    staff = staff.select("staff_id", "grid_code", "community_code")
    del places, residents, houses, orgs, estates, devices, vehicles, beh
    release_memory()
    chunks = _chunks(cfg.seed, communities, feed_residents, feed_devices, feed_vehicles, grids, staff)
    del feed_residents, feed_devices, feed_vehicles
    release_memory()
    state = {c.index: c.devices.filter(pl.col("kind").str.ends_with("_meter"))["base_reading"].to_numpy().copy() for c in chunks}
    orders, missed = [], []
    for d in range(cfg.days):
        day = start + np.timedelta64(d, "D")
        day_sec = start_sec + d * ev.DAY
        files: dict[tuple, LineFile] = {}
        for c in chunks:
            progress("feeds", d * len(chunks) + c.index, cfg.days * len(chunks))
            rng = stream(cfg.seed, "feeds", d, c.index)
            ymd = str(day).replace("-", "")
            emit = _Emitter(files, dl, manifest, day, rng, cfg.defect_rate)
            emit(DOOR, "jsonl", ev.door_access(rng, day_sec, ymd, c), "event_time", layout=None)
            emit(GATE, "csv", ev.barrier_gate(rng, day_sec, ymd, c), "pass_time")
            emit(LOCKER, "csv", ev.locker(rng, day_sec, ymd, c), "txn_time")
            frame, miss = ev.patrol(rng, day_sec, ymd, c, list(PATROL_ROUNDS), PATROL_MISS_RATE)
            missed.append(miss.with_columns(date=pl.lit(day.astype(object))))
            emit(PATROL, "csv", frame.rename({"device_id": "point_id"}), "checkin_time")
            emit(CAMERA, "jsonl", ev.camera_alarm(rng, day_sec, ymd, c).rename({"device_id": "camera_id"}), "alarm_time", layout="iso")
            emit(METER, "csv", ev.meter_readings(rng, day_sec, c, state[c.index]).rename({"device_id": "meter_id"}), "read_time")
            orders.append(ev.work_orders(rng, day_sec, ymd, c))
        for f in files.values():
            f.close()
    progress("feeds", 1, 1)
    end_sec = start_sec + cfg.days * ev.DAY
    _write_work_orders(dl, manifest, cfg, pl.concat(orders), end_sec)
    _whole_file_defects(dl, manifest, cfg)
    meta = {
        "generator": "linli generate",
        "arguments": {"residents": cfg.residents, "days": cfg.days, "seed": cfg.seed, "start_date": cfg.start_date.isoformat(),
                      "defect_rate": cfg.defect_rate, "interval_share": cfg.interval_share},
        "period": {"start": f"{cfg.start_date.isoformat()}T00:00:00+08:00",
                   "end": f"{(start + np.timedelta64(cfg.days, 'D'))}T00:00:00+08:00"},
    }
    manifest.write(truth / "manifest.json", meta)
    pl.concat(missed).select("device_id", "date", "round_no").sort("date", "device_id", "round_no").write_csv(
        truth / "patrol_missed.csv"
    )
    return world


@dataclass
class _Emitter:
    """Formats a clean frame per vendor and appends it to that vendor's file of the day."""

    files: dict
    root: Path
    manifest: Manifest
    day: np.datetime64
    rng: np.random.Generator
    rate: float

    def __call__(self, source, fmt: str, frame: pl.DataFrame, time_col: str, layout: str | None = "plain") -> None:
        for (vendor,), part in frame.partition_by("vendor", as_dict=True, maintain_order=True).items():
            # layout None: each vendor writes times its own way.
            part = part.with_columns(ev.format_time(pl.col("t"), layout or ev.TIME_LAYOUT[vendor]).alias(time_col))
            key = (source.name, vendor)
            if key not in self.files:
                ymd = str(self.day).replace("-", "")
                path = self.root / "feeds" / source.name / str(self.day) / f"{source.name}_{vendor}_{ymd}.{fmt}"
                self.files[key] = LineFile(self.manifest, path, source, fmt, numeric={"confidence", "event_time"})
            self.files[key].append(part, self.rng, self.rate)


def release_memory() -> None:
    """Return freed heap to the OS: at full scale the allocator otherwise keeps gigabytes."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass


def _chunks(seed: int, communities, residents, devices, vehicles, grids, staff) -> list[ev.Chunk]:
    """Groups of whole communities with about CHUNK_RESIDENTS residents each."""
    sizes = communities["residents"].to_numpy()
    group = np.cumsum(sizes) // CHUNK_RESIDENTS
    group = np.unique(group, return_inverse=True)[1]
    codes = communities["community_code"].to_numpy()
    # Half a percent of residents with a phone file orders again and again (重复投诉).
    rng = stream(seed, "frequent-reporters")
    with_phone = residents.filter(pl.col("phone") != "")
    frequent = with_phone.filter(pl.Series(rng.random(len(with_phone)) < 0.005)).select("community_code", "phone")
    out = []
    for g in range(int(group.max()) + 1):
        cc = list(codes[group == g])
        in_chunk = pl.col("community_code").is_in(cc)
        out.append(
            ev.Chunk(
                index=g,
                residents=residents.filter(in_chunk),
                devices=devices.filter(in_chunk),
                vehicles=vehicles.filter(in_chunk),
                grids=grids.filter(in_chunk).select("grid_code", "community_code"),
                staff=staff.filter(in_chunk),
                n_residents=int(sizes[group == g].sum()),
                frequent=frequent.filter(in_chunk)["phone"].to_numpy(),
            )
        )
    return out




def _geojson(path: Path, features: list[dict]) -> None:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), encoding="utf-8")


def _write_csv(manifest: Manifest, path: Path, df: pl.DataFrame, source: str, encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_csv(path)
    record = manifest.record(path, source, "csv", encoding)
    record.rows = len(df)


def _write_places(dl: Path, manifest: Manifest, places, houses: pl.DataFrame, estates: pl.DataFrame) -> None:
    """The GIS platform's export: CSV tables, and GeoJSON for grid polygons and building points."""
    p = dl / "place"
    p.mkdir()
    comm = places.communities.drop("residents", "households", "houses")
    _write_csv(manifest, p / "communities.csv", comm, "place.community")
    _write_csv(manifest, p / "grids.csv", places.grids.drop("ring"), "place.grid")
    _write_csv(manifest, p / "estates.csv", estates, "place.estate")
    _write_csv(manifest, p / "buildings.csv", places.buildings, "place.building")
    _write_csv(manifest, p / "units.csv", places.units, "place.unit")
    _write_csv(manifest, p / "houses.csv", houses.drop("household_size"), "place.house")
    _geojson(p / "grids.geojson", [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [g["ring"]]},
         "properties": {k: v for k, v in g.items() if k != "ring"}}
        for g in places.grids.iter_rows(named=True)
    ])
    manifest.record(p / "grids.geojson", "place.grid", "geojson", "utf-8").rows = len(places.grids)
    _geojson(p / "buildings.geojson", [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [b["lon"], b["lat"]]},
         "properties": {k: v for k, v in b.items() if k not in ("lon", "lat")}}
        for b in places.buildings.iter_rows(named=True)
    ])
    manifest.record(p / "buildings.geojson", "place.building", "geojson", "utf-8").rows = len(places.buildings)


def registry_format(index: int) -> tuple[str, str]:
    """Most community offices export .xlsx; some hand over CSV in GBK or UTF-8 with a BOM."""
    cycle = [("xlsx", "utf-8"), ("csv", "gbk"), ("csv", "utf-8-sig"), ("xlsx", "utf-8"), ("xlsx", "utf-8")]
    return cycle[index % len(cycle)]


def _registry_frame(people: pl.DataFrame) -> pl.DataFrame:
    return people.select(
        序号=pl.lit(""),
        姓名="name",
        性别=pl.col("sex").replace_strict(SEX),
        证件类型="id_type",
        公民身份号码="id_no",
        出生日期=pl.col("birth_date").cast(pl.Utf8),
        民族=pl.col("ethnicity").replace_strict(ETHNICITY),
        人口类型="population_type",
        户号="household_no",
        与户主关系=pl.col("relation").replace_strict(RELATION),
        所属网格="grid_code",
        房屋编码="house_code",
        现住址="address",
        联系电话="phone",
        特殊人群="special_groups",
        人户一致="registered_here",
        迁入日期=pl.col("moved_in").cast(pl.Utf8),
        国籍="nationality",
        _protected=pl.lit(False),
    )


def _write_registry(dl: Path, manifest: Manifest, cfg: GenerateConfig, communities: pl.DataFrame, residents: pl.DataFrame) -> None:
    """实有人口 per community, members of a household together, householder first."""
    reg = dl / "registry"
    reg.mkdir()
    groups = residents.partition_by("community_code", as_dict=True, maintain_order=True)
    for i, c in enumerate(communities.iter_rows(named=True)):
        fmt, encoding = registry_format(i)
        rng = stream(cfg.seed, "registry", i)
        frame = _registry_frame(groups[(c["community_code"],)])
        path = reg / f"{c['community_code']}_{c['community_name']}_实有人口.{fmt}"
        if fmt == "xlsx":
            mixed = mix_defects(frame, REGISTRY, rng, cfg.defect_rate)
            mixed = mixed.with_columns(序号=pl.int_range(1, len(mixed) + 1).cast(pl.Utf8))
            title = f"{c['banner_name']}{c['street_name']}{c['community_name']}实有人口登记表"
            write_registry_xlsx(path, title, REGISTRY.columns, mixed.drop("_defect"), "户号")
            record = manifest.record(path, "registry", "xlsx", "xlsx")
            record.rows = len(mixed)
            for pos in np.flatnonzero(mixed["_defect"].is_not_null().to_numpy()):
                # Row 1 is the title, row 2 the header: data row i sits on sheet row i + 3.
                record.add(mixed["_defect"][int(pos)], int(pos) + 3, mixed["序号"][int(pos)])
        else:
            rename = REGISTRY_HEADER_VARIANTS[encoding]
            header = [rename.get(col, col) for col in REGISTRY_CSV.columns]
            f = LineFile(manifest, path, REGISTRY_CSV, "csv", encoding=encoding, header=header)
            f.append(frame, rng, cfg.defect_rate)
            f.close()


def _write_static(dl: Path, manifest: Manifest, cfg: GenerateConfig, orgs, staff, devices, vehicles) -> None:
    rng = stream(cfg.seed, "static-deliveries")
    org_frame = orgs.select(
        统一社会信用代码="credit_code", 机构名称="org_name", 机构类型="org_kind", 所属社区="community_code",
        法定代表人="legal_rep_name", 联系电话="legal_rep_phone", 成立日期=pl.col("founded").cast(pl.Utf8),
    )
    f = LineFile(manifest, dl / "organization" / "organizations.csv", ORGANIZATION, "csv")
    f.append(org_frame, rng, cfg.defect_rate)
    f.close()
    _write_csv(manifest, dl / "organization" / "grid_staff.csv", staff.select(
        人员编号="staff_id", 姓名="name", 公民身份号码="id_no", 联系电话="phone", 岗位="role", 所属网格="grid_code",
        所属社区="community_code"), "grid_staff")
    _write_csv(manifest, dl / "device" / "device_registry.csv", devices.select(
        "device_id", "kind", "vendor", "model", "estate_code", "community_code", "building_code", "unit_code", "house_code",
        "lon", "lat", "installed_at", "status", "interval_minutes", "base_reading", "patrol_rounds"), "device_registry")
    _write_csv(manifest, dl / "property" / "vehicles.csv", vehicles.select(
        车牌号码="plate", 车主身份证号="owner_id_no", 房屋编码="house_code", 所属社区="community_code",
        车辆类型="vehicle_type", 号牌颜色="plate_color", 车身颜色="color"), "vehicle")


def _write_work_orders(dl: Path, manifest: Manifest, cfg: GenerateConfig, orders: pl.DataFrame, end_sec: int) -> None:
    """The grid system's daily export: each order in the file of the day it was last updated."""
    steps = ev.LIFECYCLE
    orders = orders.with_columns(pl.when(pl.col(s) < end_sec).then(pl.col(s)).alias(s) for s in steps)
    last = pl.max_horizontal(*steps)
    status = pl.coalesce(
        *[pl.when(pl.col(s).is_not_null()).then(pl.lit(label)) for s, label in zip(reversed(steps), ["已评价", "已办结", "已处置", "已派发", "已受理", "已上报"])]
    )
    orders = orders.with_columns(
        _day=pl.from_epoch(last, time_unit="s").dt.date(),
        satisfaction=pl.when(pl.col("evaluated").is_not_null()).then(pl.col("satisfaction")),
        工单状态=status,
    )
    fmt = lambda s: ev.format_time(pl.col(s), "plain")  # noqa: E731
    frame = orders.select(
        "_day", "_protected",
        工单编号="order_no", 事件类别="category", 事件来源="channel", 所属社区="community_code", 所属网格="grid_code",
        上报人电话="reporter_phone", 事件描述="description", 上报时间=fmt("reported"), 受理时间=fmt("accepted"),
        派发时间=fmt("dispatched"), 处置时间=fmt("handled"), 办结时间=fmt("closed"), 评价时间=fmt("evaluated"),
        满意度=pl.col("satisfaction").cast(pl.Utf8), 处置人员="handler", 工单状态="工单状态",
    ).sort("_day", "工单编号")
    for (day,), part in frame.partition_by("_day", as_dict=True, maintain_order=True).items():
        rng = stream(cfg.seed, "work-orders", day.toordinal())
        path = dl / "work_orders" / day.isoformat() / f"work_orders_{day.strftime('%Y%m%d')}.csv"
        f = LineFile(manifest, path, WORK_ORDER, "csv")
        f.append(part.drop("_day"), rng, cfg.defect_rate)
        f.close()


def _whole_file_defects(dl: Path, manifest: Manifest, cfg: GenerateConfig) -> None:
    """A few re-sent files arrive broken: cut short, in an encoding no source uses, or empty.

    They are extra copies (`*_重发.*`), so the city they describe is still whole in the originals.
    """
    if cfg.defect_rate <= 0:
        return
    rng = stream(cfg.seed, "file-defects")
    records = list(manifest.files.values())
    candidates = {
        "truncated_file": [r for r in records if r.format == "xlsx"],
        "wrong_encoding": [r for r in records if r.format == "csv" and r.source in ("registry", "work_order")],
        "empty_file": [r for r in records if r.path.startswith("feeds/")],
    }
    for kind in FILE_DEFECTS:
        pool = candidates[kind]
        if not pool:
            continue
        n = min(len(pool), max(1, round(len(pool) * cfg.defect_rate)))
        for i in sorted(rng.choice(len(pool), n, replace=False)):
            original = pool[int(i)]
            src = dl / original.path
            dst = src.with_name(f"{src.stem}_重发{src.suffix}")
            data = src.read_bytes()
            if kind == "truncated_file":
                broken = data[: len(data) * 3 // 5]
            elif kind == "wrong_encoding":
                # Saved as "Unicode text" (UTF-16), which none of the source systems is declared to use.
                broken = data.decode(original.encoding).encode("utf-16")
            else:
                broken = b""
            dst.write_bytes(broken)
            record = manifest.record(dst, original.source, original.format, "utf-16" if kind == "wrong_encoding" else original.encoding)
            record.rows, record.file_defect, record.copy_of = original.rows, kind, original.path


def _write_truth(truth: Path, beh, houses, residents) -> None:
    """Behaviour truth and headline counts, as CSV the tests compare the platform against."""
    beh.elderly_alone_inactive.sort("id_no").write_csv(truth / "elderly_alone_inactive.csv")
    beh.vacant_house.sort("house_code").write_csv(truth / "vacant_house.csv")
    beh.overcrowded_house.sort("house_code").write_csv(truth / "overcrowded_house.csv")
    beh.meter_leak.sort("device_id").write_csv(truth / "meter_leak.csv")
    beh.device_offline.sort("device_id").write_csv(truth / "device_offline.csv")
    residents.group_by("community_code").agg(
        residents=pl.len(),
        households=pl.col("household_no").n_unique(),
        floating=(pl.col("population_type") == "流动").sum(),
        foreign=(pl.col("population_type") == "境外").sum(),
        elderly_alone=pl.col("special_groups").str.contains("独居老人").sum(),
    ).join(
        houses.group_by("community_code").agg(houses=pl.len(), vacant_houses=(pl.col("household_size") == 0).sum()),
        on="community_code",
        how="full",
        coalesce=True,
    ).sort("community_code").write_csv(truth / "residents_per_community.csv")
    houses.group_by("grid_code").agg(houses=pl.len(), occupied=(pl.col("household_size") > 0).sum(), residents=pl.col("household_size").sum()).sort(
        "grid_code"
    ).write_csv(truth / "houses_per_grid.csv")
    beh.devices.group_by("kind").agg(devices=pl.len()).sort("kind").write_csv(truth / "devices_per_kind.csv")
    (truth / "README.md").write_text(TRUTH_README, encoding="utf-8")


TRUTH_README = """# Truth of a generated city

Written by `linli generate` beside `deliveries/`; the schema of every file is described in
docs/generator.md. `manifest.json` accounts for every delivery file and every injected defect.
"""
