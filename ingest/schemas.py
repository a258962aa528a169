"""Every source's schema, declared once.

A column's lake name, type, description, delivered header names, format, accepted values and
personal-data class live here and nowhere else: validation, normalisation, pseudonymisation,
the dbt sources' docs and the catalog's tags are all read from these declarations.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from pathlib import Path

# Personal-data classes (PIPL). `sensitive` ones are also flagged as such in the catalog.
PII_ID = "id_number"
PII_NAME = "name"
PII_PHONE = "phone"
PII_PLATE = "plate"
PII_FACE = "face"
PII_CLASSES = {
    PII_ID: "resident ID / passport number: keyed hash + masked form",
    PII_NAME: "personal name: keyed hash + masked form",
    PII_PHONE: "mobile number: keyed hash + masked form",
    PII_PLATE: "vehicle plate: keyed hash + masked form",
    PII_FACE: "face image: never stored",
}


@dataclass(frozen=True)
class Column:
    name: str  # English snake_case name in the lake
    type: str  # varchar | integer | decimal | date | timestamp | boolean
    description: str
    headers: tuple[str, ...] = ()  # names a delivery may use for it (the lake name is always accepted)
    required: bool = False
    format: str | None = None  # a named format rule in ingest.rules
    values: dict[str, str] | None = None  # accepted delivered values -> lake values
    pii: str | None = None
    fill_down: bool = False  # merged cells in spreadsheets: empty means "same as above"
    scale: dict[str, float] | None = None  # unit conversions: unit value -> factor to the lake unit
    free_text: bool = False  # typed by people: an ID number, mobile number or plate in it is masked

    def named(self, name: str, **changes) -> "Column":
        return replace(self, name=name, **changes)

    def lake_columns(self) -> list["LakeColumn"]:
        """The column(s) this becomes in the lake: personal data as a keyed hash and a masked form."""
        if self.pii == PII_FACE:
            return []
        if self.pii:
            return [
                LakeColumn(f"{self.name}_key", "VARCHAR", f"{self.description} — HMAC-SHA256 pseudonymous key", self.pii, "key"),
                LakeColumn(f"{self.name}_masked", "VARCHAR", f"{self.description} — masked display form", self.pii, "masked"),
            ]
        return [LakeColumn(self.name, LAKE_TYPES[self.type], self.description)]


LAKE_TYPES = {"varchar": "VARCHAR", "integer": "BIGINT", "decimal": "DOUBLE", "date": "DATE",
              "timestamp": "TIMESTAMP WITH TIME ZONE", "boolean": "BOOLEAN"}


@dataclass(frozen=True)
class LakeColumn:
    name: str
    type: str
    description: str
    pii: str | None = None
    form: str | None = None  # key | masked, for personal data


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    library: str  # people | place | thing | event | organization
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # unique within a delivery; for events, across the lake too
    paths: tuple[str, ...]  # glob patterns under a deliveries directory
    event_time: str | None = None  # events are partitioned by this column's Beijing date
    owner: str = "城市数据局 data office"
    extra: dict = field(default_factory=dict)
    # A table read by its watermark: each delivery holds the rows changed since the last, so a key's
    # rows are its versions and the latest by this column is the current one.
    versions_by: str | None = None

    @property
    def is_event(self) -> bool:
        return self.event_time is not None

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def read_columns(self) -> tuple[Column, ...]:
        """The columns ingest reads from a delivery: all but face images, which are dropped unread."""
        return tuple(c for c in self.columns if c.pii != PII_FACE)

    @property
    def lake_key(self) -> list[str]:
        """The key as raw-zone columns (a personal key column is its keyed hash)."""
        return [self.column(k).lake_columns()[0].name for k in self.key]

    def lake_columns(self) -> list[LakeColumn]:
        """Every column of this source's raw-zone table, in order, with the ingest bookkeeping."""
        cols = [lc for c in self.columns for lc in c.lake_columns()]
        cols += [LakeColumn("_delivery_id", "VARCHAR", "the delivery (ledger row) this row came in"),
                 LakeColumn("_line", "BIGINT", "line (or sheet row) of the row in its delivery")]
        if self.is_event:
            cols.append(LakeColumn("event_date", "DATE", f"Beijing date of {self.event_time}: the partition"))
        return cols


SEEDS = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds"


def _seed(name: str) -> list[dict[str, str]]:
    with open(SEEDS / f"{name}.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _ethnicities() -> dict[str, str]:
    """The GB 3304 names the libraries map (a dbt seed), each accepted as itself and, as clerks
    often write them, without 族 (汉, 蒙古)."""
    names = [row["name_zh"] for row in _seed("code_ethnicity")]
    return {**{n.removesuffix("族"): n for n in names if n.endswith("族")}, **{n: n for n in names}}


_RELATIONS = _seed("code_relation")


def _relations() -> dict[str, str]:
    """The GB/T 4761 names the libraries map (a dbt seed), each accepted as itself and as the seed
    says clerks also write it (儿子 for 子, 妻子 for 妻). What clerks write wins over a name: in a
    column of relation to the householder, 本人 is the householder's own row (户主), not code 01."""
    also = {a: row["name_zh"] for row in _RELATIONS for a in row["also_written"].split("|") if a}
    return {**{row["name_zh"]: row["name_zh"] for row in _RELATIONS}, **also}


# Reusable columns: one definition per fact.
ID_NO = Column("id_no", "varchar", "公民身份号码 (GB 11643) or passport number", ("公民身份号码", "身份证号", "身份证号码", "证件号码"),
               format="id_number", pii=PII_ID)
NAME = Column("name", "varchar", "姓名 personal name", ("姓名",), pii=PII_NAME)
PHONE = Column("phone", "varchar", "联系电话 mobile number", ("联系电话", "手机号码", "手机号", "电话"), format="mobile", pii=PII_PHONE)
PLATE = Column("plate", "varchar", "车牌号码 vehicle plate", ("车牌号码", "车牌号", "号牌号码"), format="plate", pii=PII_PLATE)
COMMUNITY = Column("community_code", "varchar", "社区 12-digit GB/T 2260-based community code", ("所属社区", "社区编码"),
                   format="division12")
GRID = Column("grid_code", "varchar", "网格 code: community code + 3 digits", ("所属网格", "网格编码"), format="grid")
HOUSE = Column("house_code", "varchar", "房屋编码 house code", ("房屋编码",), format="house")
DEVICE = Column("device_id", "varchar", "device ID as in the device registry", required=True)
FACE = Column("face_image", "varchar", "face snapshot: dropped at ingest, never stored", pii=PII_FACE)


def _time(name: str, description: str, *headers: str, required: bool = True) -> Column:
    return Column(name, "timestamp", description, headers, required=required)


DOOR_ACCESS = Source(
    "door_access", "门禁 door-access events, one file per vendor per day", "event",
    (
        Column("event_id", "varchar", "vendor event ID", required=True),
        DEVICE,
        _time("event_time", "time of the event (Asia/Shanghai)"),
        ID_NO.named("person_id_no", headers=("id_no",), description="resident matched by face, card or QR code"),
        Column("open_method", "varchar", "how the door was opened", required=True,
               values={"face": "face", "card": "card", "qr": "qr", "password": "password"}),
        Column("direction", "varchar", "in or out", required=True, values={"in": "in", "out": "out"}),
        Column("result", "varchar", "success or denied", required=True, values={"success": "success", "denied": "denied"}),
        FACE,
    ),
    key=("event_id",), paths=("feeds/door_access/**/*.jsonl",), event_time="event_time",
)

CAMERA_ALARM = Source(
    "camera_alarm", "AI 摄像头告警 camera alarms", "event",
    (
        Column("alarm_id", "varchar", "vendor alarm ID", required=True),
        DEVICE.named("camera_id"),
        _time("alarm_time", "time of the alarm (Asia/Shanghai)"),
        Column("alarm_type", "varchar", "alarm kind", required=True, values={k: k for k in (
            "fall", "fight", "smoke_fire", "corridor_clutter", "ebike_in_lift", "object_thrown", "crowding")}),
        Column("confidence", "decimal", "model confidence 0-1", required=True, format="unit_interval"),
        FACE,
    ),
    key=("alarm_id",), paths=("feeds/camera_alarm/**/*.jsonl",), event_time="alarm_time",
)

BARRIER_GATE = Source(
    "barrier_gate", "道闸 vehicle passages at estate gates", "event",
    (
        Column("pass_id", "varchar", "vendor passage ID", required=True),
        DEVICE,
        _time("pass_time", "time of the passage (Asia/Shanghai)"),
        PLATE.named("plate", required=True),
        Column("direction", "varchar", "in or out", required=True, values={"入": "in", "出": "out", "in": "in", "out": "out"}),
        Column("vehicle_type", "varchar", "vehicle type as reported", free_text=True),
        Column("plate_color", "varchar", "号牌颜色 plate colour"),
    ),
    key=("pass_id",), paths=("feeds/barrier_gate/**/*.csv",), event_time="pass_time",
)

LOCKER = Source(
    "locker", "智能柜 locker and vending transactions", "event",
    (
        Column("txn_id", "varchar", "vendor transaction ID", required=True),
        DEVICE,
        _time("txn_time", "time of the transaction (Asia/Shanghai)"),
        Column("txn_type", "varchar", "send, pickup or purchase", required=True,
               values={"寄件": "send", "取件": "pickup", "购物": "purchase"}),
        Column("amount", "decimal", "amount paid, yuan", required=True, format="non_negative"),
        PHONE.named("payer_phone", headers=("phone",)),
    ),
    key=("txn_id",), paths=("feeds/locker/**/*.csv",), event_time="txn_time",
)

PATROL = Source(
    "patrol", "巡更 patrol check-ins", "event",
    (
        Column("checkin_id", "varchar", "check-in ID", required=True),
        DEVICE.named("point_id"),
        Column("guard_id", "varchar", "security guard ID"),
        _time("checkin_time", "time of the check-in (Asia/Shanghai)"),
        Column("round_no", "integer", "patrol round of the day (1 = 08:00, 2 = 14:00, 3 = 20:00)", required=True),
    ),
    key=("checkin_id",), paths=("feeds/patrol/**/*.csv",), event_time="checkin_time",
)

METER = Source(
    "meter", "水电气表 cumulative meter readings", "event",
    (
        DEVICE.named("meter_id"),
        _time("read_time", "time of the reading (Asia/Shanghai)"),
        Column("reading", "decimal", "cumulative reading in the lake unit (m³ or kWh)", required=True, format="non_negative"),
        Column("unit", "varchar", "lake unit: m3 or kWh (litres are converted to m3)", required=True,
               values={"m3": "m3", "L": "m3", "kWh": "kWh"}, scale={"L": 0.001}),
    ),
    key=("meter_id", "read_time"), paths=("feeds/meter/**/*.csv",), event_time="read_time",
    extra={"scaled": {"reading": "unit"}},
)

WORK_ORDER = Source(
    "work_order", "网格事件/报事报修 work orders exported by the grid system", "event",
    (
        Column("order_no", "varchar", "工单编号", ("工单编号",), required=True),
        Column("category", "varchar", "事件类别", ("事件类别",), required=True),
        Column("channel", "varchar", "事件来源 reporting channel", ("事件来源",), required=True,
               values={"居民APP": "resident_app", "网格员上报": "grid_staff", "视频监控": "camera", "12345热线": "hotline_12345"}),
        COMMUNITY.named("community_code", required=True),
        GRID.named("grid_code", required=True),
        PHONE.named("reporter_phone", headers=("上报人电话",)),
        Column("description", "varchar", "事件描述, identifiers in it masked", ("事件描述",), free_text=True),
        _time("reported_at", "上报时间", "上报时间"),
        _time("accepted_at", "受理时间", "受理时间", required=False),
        _time("dispatched_at", "派发时间", "派发时间", required=False),
        _time("handled_at", "处置时间", "处置时间", required=False),
        _time("closed_at", "办结时间", "办结时间", required=False),
        _time("evaluated_at", "评价时间", "评价时间", required=False),
        Column("satisfaction", "integer", "满意度 1-5", ("满意度",), format="satisfaction"),
        Column("handler", "varchar", "处置人员 grid staff ID", ("处置人员",), format="no_identifier"),
        Column("status", "varchar", "工单状态", ("工单状态",), required=True,
               values={"已上报": "reported", "已受理": "accepted", "已派发": "dispatched", "已处置": "handled",
                       "已办结": "closed", "已评价": "evaluated"}),
    ),
    # an order comes again in the file of each day it moves on: one row per order and state
    key=("order_no", "status"), paths=("work_orders/**/*.csv",), event_time="reported_at",
)

REGISTRY = Source(
    "registry", "实有人口 household registry exported by community offices (GB/T 31000)", "people",
    (
        # an ID number fits a BIGINT: one typed here would land in clear
        Column("row_no", "integer", "序号 row number in the export", ("序号",), format="no_identifier"),
        NAME.named("name", required=True),
        Column("sex", "varchar", "性别, GB/T 2261.1 code", ("性别",), required=True, values={"男": "1", "女": "2"}),
        Column("id_type", "varchar", "证件类型", ("证件类型",), required=True,
               values={"居民身份证": "resident_id", "护照": "passport"}),
        ID_NO.named("id_no", required=True),
        Column("birth_date", "date", "出生日期", ("出生日期",), required=True),
        Column("ethnicity", "varchar", "民族, as GB 3304 names it", ("民族",), values=_ethnicities()),
        Column("population_type", "varchar", "人口类型: 户籍 / 流动 / 境外", ("人口类型",), required=True,
               values={"户籍": "registered", "流动": "floating", "境外": "foreign"}),
        Column("household_no", "varchar", "户号", ("户号",), required=True, fill_down=True, format="no_identifier"),
        Column("relation", "varchar", "与户主关系 relation to the householder, as GB/T 4761 names it", ("与户主关系",),
               required=True, values=_relations()),
        GRID.named("grid_code"),
        HOUSE.named("house_code", required=True),
        Column("address", "varchar", "现住址 address down to the house", ("现住址", "现居住地址"), free_text=True),
        PHONE.named("phone"),
        Column("special_groups", "varchar", "特殊人群, separated by 、", ("特殊人群",), free_text=True),
        Column("registered_here", "varchar", "人户一致标识", ("人户一致",), values={"是": "yes", "否": "no"}),
        Column("moved_in", "date", "迁入日期", ("迁入日期",)),
        Column("nationality", "varchar", "国籍", ("国籍",), free_text=True),
    ),
    key=("id_no",), paths=("registry/*.xlsx", "registry/*.csv"),
)

ORGANIZATION = Source(
    "organization", "组织 organisations: property companies, merchants, social and party organisations", "organization",
    (
        Column("credit_code", "varchar", "统一社会信用代码 (GB 32100)", ("统一社会信用代码",), required=True, format="credit_code"),
        Column("org_name", "varchar", "机构名称", ("机构名称",), required=True, free_text=True),
        Column("org_kind", "varchar", "机构类型", ("机构类型",), required=True),
        COMMUNITY.named("community_code"),
        NAME.named("legal_rep_name", headers=("法定代表人",)),
        PHONE.named("legal_rep_phone", headers=("联系电话",)),
        Column("founded", "date", "成立日期", ("成立日期",)),
    ),
    key=("credit_code",), paths=("organization/organizations.csv",),
)

GRID_STAFF = Source(
    "grid_staff", "网格员 grid staff", "organization",
    (
        Column("staff_id", "varchar", "人员编号", ("人员编号",), required=True),
        NAME.named("name", required=True),
        ID_NO.named("id_no"),
        PHONE.named("phone"),
        Column("role", "varchar", "岗位", ("岗位",)),
        GRID.named("grid_code"),
        COMMUNITY.named("community_code", required=True),
    ),
    key=("staff_id",), paths=("organization/grid_staff.csv",),
)

VEHICLE = Source(
    "vehicle", "登记车辆 vehicles registered with the property company", "thing",
    (
        PLATE.named("plate", required=True),
        ID_NO.named("owner_id_no", headers=("车主身份证号",)),
        HOUSE.named("house_code"),
        COMMUNITY.named("community_code"),
        Column("vehicle_type", "varchar", "车辆类型", ("车辆类型",), free_text=True),
        Column("plate_color", "varchar", "号牌颜色", ("号牌颜色",)),
        Column("color", "varchar", "车身颜色", ("车身颜色",), free_text=True),
    ),
    key=("plate",), paths=("property/vehicles.csv",),
)

DEVICE_REGISTRY = Source(
    "device_registry", "设备台账 device registry of the IoT platform", "thing",
    (
        DEVICE,
        Column("kind", "varchar", "device kind", required=True, values={k: k for k in (
            "door", "barrier_gate", "locker", "patrol_point", "camera", "water_meter", "electricity_meter", "gas_meter")}),
        Column("vendor", "varchar", "vendor", required=True),
        Column("model", "varchar", "model"),
        Column("estate_code", "varchar", "小区 estate code", required=True),
        COMMUNITY.named("community_code", required=True),
        Column("building_code", "varchar", "building code"),
        Column("unit_code", "varchar", "unit code"),
        HOUSE.named("house_code"),
        Column("lon", "decimal", "longitude (WGS 84)", required=True, format="longitude"),
        Column("lat", "decimal", "latitude (WGS 84)", required=True, format="latitude"),
        Column("installed_at", "date", "installation date"),
        Column("status", "varchar", "在用 / 停用"),
        Column("interval_minutes", "integer", "meters: minutes between readings"),
        Column("base_reading", "decimal", "meters: 表底数 reading at the start of the period"),
        Column("patrol_rounds", "varchar", "patrol points: round times, ;-separated"),
    ),
    key=("device_id",), paths=("device/device_registry.csv",),
)


def _place(name, description, path, columns, key) -> Source:
    return Source(name, description, "place", columns, key=(key,), paths=(path,))


_LON = Column("centre_lon", "decimal", "longitude (WGS 84)", format="longitude")
_LAT = Column("centre_lat", "decimal", "latitude (WGS 84)", format="latitude")
PLACES = (
    _place("community", "社区 communities", "place/communities.csv", (
        COMMUNITY.named("community_code", required=True), Column("community_name", "varchar", "社区名称", required=True),
        Column("street_code", "varchar", "街道/乡镇 9-digit code", required=True), Column("street_name", "varchar", "街道/乡镇名称"),
        Column("banner_code", "varchar", "旗区 6-digit code", required=True), Column("banner_name", "varchar", "旗区名称"),
        Column("kind", "varchar", "urban 社区 or rural 嘎查/村"), _LON, _LAT, Column("side_m", "decimal", "extent, metres"),
    ), "community_code"),
    _place("grid", "网格 grids (polygons in grids.geojson)", "place/grids.csv", (
        GRID.named("grid_code", required=True), Column("grid_name", "varchar", "网格名称"),
        COMMUNITY.named("community_code", required=True),
        _LON.named("centroid_lon"), _LAT.named("centroid_lat"),
    ), "grid_code"),
    _place("estate", "小区 estates", "place/estates.csv", (
        Column("estate_code", "varchar", "小区 code", required=True), Column("estate_name", "varchar", "小区名称"),
        COMMUNITY.named("community_code", required=True), Column("built_year", "integer", "建成年份"),
        Column("property_company_code", "varchar", "物业公司统一社会信用代码", format="credit_code"),
    ), "estate_code"),
    _place("building", "楼栋 buildings", "place/buildings.csv", (
        Column("building_code", "varchar", "楼栋 code", required=True), Column("building_no", "integer", "楼号"),
        Column("estate_code", "varchar", "小区 code", required=True), GRID.named("grid_code", required=True),
        COMMUNITY.named("community_code", required=True), Column("floors", "integer", "层数"), Column("units", "integer", "单元数"),
        _LON.named("lon"), _LAT.named("lat"),
    ), "building_code"),
    _place("unit", "单元 units", "place/units.csv", (
        Column("unit_code", "varchar", "单元 code", required=True), Column("unit_no", "integer", "单元号"),
        Column("building_code", "varchar", "楼栋 code", required=True), Column("floors", "integer", "层数"),
    ), "unit_code"),
    _place("house", "房屋 houses", "place/houses.csv", (
        HOUSE.named("house_code", required=True), Column("unit_code", "varchar", "单元 code", required=True),
        Column("building_code", "varchar", "楼栋 code"), Column("estate_code", "varchar", "小区 code"),
        GRID.named("grid_code", required=True), COMMUNITY.named("community_code", required=True),
        Column("floor", "integer", "楼层"), Column("room_no", "varchar", "室号"),
        Column("area_m2", "decimal", "建筑面积 m²", format="non_negative"), Column("use", "varchar", "房屋用途"),
        Column("ownership", "varchar", "产权性质"), Column("address", "varchar", "地址", free_text=True),
        Column("rented", "boolean", "出租房屋"),
    ), "house_code"),
)

GEOMETRY = tuple(
    Source(f"{layer}_geometry", f"{label} geometry (GeoJSON)", "place", (
        Column(f"{layer}_code", "varchar", f"{label} code", required=True),
        Column("geometry", "varchar", "GeoJSON geometry, WGS 84", required=True),
    ), key=(f"{layer}_code",), paths=(f"place/{layer}s.geojson",))
    for layer, label in (("grid", "网格 grid polygon"), ("building", "楼栋 building point"))
)

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (DOOR_ACCESS, CAMERA_ALARM, BARRIER_GATE, LOCKER, PATROL, METER, WORK_ORDER, REGISTRY, ORGANIZATION,
              GRID_STAFF, VEHICLE, DEVICE_REGISTRY, *PLACES, *GEOMETRY)
}

# The property-management system's tables, read incrementally by ingest.relational (not from files).
_UPDATED_AT = _time("updated_at", "last change in the property system: the incremental-read watermark (Asia/Shanghai)")

PM_OWNER = Source(
    "pm_owner", "业主/住户 owners and tenants in the property-management system (table pm_owner)", "people",
    (
        ID_NO.named("id_no", required=True),
        REGISTRY.column("id_type"),
        NAME.named("name", required=True),
        Column("sex", "varchar", "性别, GB/T 2261.1 code", ("性别",), required=True, values={c: c for c in ("0", "1", "2", "9")}),
        REGISTRY.column("birth_date").named("birth_date", required=False),
        Column("ethnicity", "varchar", "民族, GB/T 3304 code", ("民族",)),
        REGISTRY.column("nationality"),
        PHONE.named("phone"),
        HOUSE.named("house_code", required=True),
        Column("relation", "varchar", "与户主关系, GB/T 4761 code", ("与户主关系",),
               values={row["code"]: row["code"] for row in _RELATIONS}),
        REGISTRY.column("household_no").named("household_no", required=False, fill_down=False),
        REGISTRY.column("population_type"),
        REGISTRY.column("moved_in"),
        _UPDATED_AT,
    ),
    key=("id_no",), paths=(), versions_by="updated_at",
)

PM_VEHICLE = Source(
    "pm_vehicle", "车辆 vehicles in the property-management system (table pm_vehicle)", "thing",
    (
        PLATE.named("plate", required=True),
        VEHICLE.column("owner_id_no"),
        HOUSE.named("house_code"),
        VEHICLE.column("vehicle_type"),
        VEHICLE.column("plate_color"),
        VEHICLE.column("color"),
        _UPDATED_AT,
    ),
    key=("plate",), paths=(), versions_by="updated_at",
)

SOURCES.update({s.name: s for s in (PM_OWNER, PM_VEHICLE)})

# The source system each source comes from: dbt names its staging models stg_<system>__<source>.
SYSTEMS = {
    "iot": ("device_registry", "door_access", "barrier_gate", "locker", "patrol", "camera_alarm", "meter"),
    "grid_system": ("work_order", "organization", "grid_staff"),
    "community_office": ("registry",),
    "gis": tuple(s.name for s in (*PLACES, *GEOMETRY)),
    "property": ("vehicle", "pm_owner", "pm_vehicle"),
}
SYSTEM_OF = {name: system for system, names in SYSTEMS.items() for name in names}
