"""The business glossary: the five libraries (人 地/房 物 事 组织) and the layers above them, and their
terms in Chinese and English, each linked to the columns and tables that hold it.

A term is linked where a column of that name appears (any layer) and to the tables named.
GB/T 31000-2015 supplies the governance terms (实有人口, 户籍/流动/境外, 与户主关系, 户号, 人户一致).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Library:
    key: str  # people | place | thing | event | organization | topic | profile | metrics
    zh: str
    en: str
    definition: str


@dataclass(frozen=True)
class Term:
    key: str  # stable id: the urn is urn:li:glossaryTerm:linli.<key>
    library: str
    zh: str
    en: str
    definition: str
    columns: tuple[str, ...] = ()  # column names that hold the term, wherever they appear
    tables: tuple[str, ...] = ()  # qualified table names (schema.table) that are about the term


LIBRARIES = {lib.key: lib for lib in (
    Library("people", "人", "People", "实有人口基础库: residents, households, residences and special groups (GB/T 31000)."),
    Library("place", "地/房", "Place and house", "地/房基础库: divisions, communities, grids, estates, buildings, units and houses."),
    Library("thing", "物", "Things", "物基础库: IoT devices, vehicles and their locations."),
    Library("event", "事", "Events", "事基础库: door access, vehicle passages, lockers, patrols, alarms, meter readings and 网格事件."),
    Library("organization", "组织", "Organizations", "组织基础库: property companies, merchants, social and party organisations, grid staff."),
    Library("topic", "标签专题", "Topics and tags", "标签专题库: facts derived for action — 独居老人无活动, 空置房屋, 群租, 管道渗漏, 漏巡, 设备离线."),
    Library("profile", "画像", "Profiles", "画像库: one wide row per resident, house and community."),
    Library("metrics", "指标", "Metrics", "指标: handling rate and time, device online rate, patrol completion, alarms, occupancy per grid and community per day."),
)}

TERMS = (
    # 人 people
    Term("actual_population", "people", "实有人口", "Actual population",
         "Everyone actually living in the area, whatever their registration: 户籍人口 + 流动人口 + 境外人员 (GB/T 31000).",
         tables=("people.resident", "raw.registry", "profile.resident_profile")),
    Term("registered_population", "people", "户籍人口", "Registered population",
         "Residents whose household registration (户口) is here: population_type = registered.", columns=("population_type",)),
    Term("floating_population", "people", "流动人口", "Floating population",
         "Residents living here without household registration here: population_type = floating.", columns=("population_type",)),
    Term("foreign_resident", "people", "境外人员", "Foreign resident",
         "Residents holding a foreign passport: population_type = foreign.", columns=("population_type",)),
    Term("household", "people", "户", "Household", "A household under one 户号, with one 户主 (householder).",
         columns=("household_no", "householder_key"), tables=("people.household",)),
    Term("relation_to_householder", "people", "与户主关系", "Relation to householder",
         "The resident's relation to the householder of their household (GB/T 4761).", columns=("relation",)),
    Term("registered_here", "people", "人户一致", "Living where registered",
         "Whether the resident lives at the address of their household registration.", columns=("registered_here",)),
    Term("special_group", "people", "特殊人群", "Special group",
         "Residents needing attention: elderly living alone, disabled, low-income, …", columns=("special_groups",)),
    Term("elderly_living_alone", "people", "独居老人", "Elderly living alone",
         "Residents aged 60 or more living alone; watched for days without door activity.",
         tables=("topic.elderly_alone_inactive",)),
    Term("resident_id_number", "people", "公民身份号码", "Resident ID number",
         "GB 11643 citizen ID number: personal data, kept only as a keyed hash and a masked form.",
         columns=("person_key", "id_no_key", "id_no_masked", "person_id_no_key", "person_id_no_masked", "owner_key",
                  "owner_id_no_key", "owner_id_no_masked", "householder_key")),
    # 地/房 place
    Term("division", "place", "行政区划", "Administrative division",
         "GB/T 2260 banner/district (旗区, 6 digits) and street/town (街道/乡镇, 9 digits).",
         columns=("banner_code", "street_code"), tables=("reference.ordos_divisions",)),
    Term("community", "place", "社区", "Community", "Urban 社区 or rural 嘎查/村: 12-digit code under a street or town.",
         columns=("community_code",), tables=("place.community",)),
    Term("grid", "place", "网格", "Grid", "The unit of grid governance (网格化管理): community code + 3 digits, a polygon, its staff.",
         columns=("grid_code",), tables=("place.grid",)),
    Term("estate", "place", "小区", "Estate", "A residential estate managed by a property company.", columns=("estate_code",)),
    Term("building", "place", "楼栋", "Building", "A building of an estate (GA/T 2000.32 建筑物).", columns=("building_code",),
         tables=("place.building",)),
    Term("unit", "place", "单元", "Unit", "A stairwell unit of a building.", columns=("unit_code",)),
    Term("house", "place", "房屋", "House", "A dwelling or shop: unit + floor + room; area, use, ownership.",
         columns=("house_code",), tables=("place.house",)),
    Term("rented_house", "place", "出租房屋", "Rented house", "A house let to tenants (GB/T 31000 出租房屋).", columns=("rented",)),
    Term("vacant_house", "place", "空置房屋", "Vacant house", "A house whose water use says nobody lives there.",
         tables=("topic.vacant_house",)),
    Term("overcrowded_house", "place", "群租房", "Overcrowded rental", "A house whose residents or water use exceed its size.",
         tables=("topic.overcrowded_house",)),
    # 物 thing
    Term("iot_device", "thing", "物联设备", "IoT device",
         "A door, barrier gate, locker, patrol point, camera or meter of the IoT platform.",
         columns=("device_id", "camera_id", "meter_id", "point_id"), tables=("thing.device",)),
    Term("vehicle", "thing", "车辆", "Vehicle", "A vehicle registered with the property company; the plate is personal data.",
         columns=("plate_key", "plate_masked"), tables=("thing.vehicle",)),
    Term("meter", "thing", "水电气表", "Utility meter", "Water, electricity or gas meter reporting cumulative readings.",
         tables=("event.meter_reading",)),
    Term("device_offline", "thing", "设备离线", "Device offline", "A continuously reporting device silent for 24 hours.",
         tables=("topic.device_offline",)),
    # 事 event
    Term("grid_event", "event", "网格事件", "Grid event (work order)",
         "An issue reported in a grid and handled through reported → accepted → dispatched → handled → closed → evaluated.",
         columns=("order_no",), tables=("event.work_order", "raw.work_order")),
    Term("repair_request", "event", "报事报修", "Repair request", "A resident's report or repair request: a kind of 网格事件.",
         tables=("event.work_order",)),
    Term("handling_rate", "event", "处置率", "Handling rate", "Share of work orders handled within the period.",
         tables=("metrics.grid_daily", "metrics.community_daily")),
    Term("satisfaction", "event", "满意度", "Satisfaction", "The reporter's 1-5 evaluation of a closed work order.",
         columns=("satisfaction",)),
    Term("door_access", "event", "门禁记录", "Door access", "A door opening by face, card, QR code or password: a trajectory.",
         tables=("event.door_access",)),
    Term("vehicle_passage", "event", "车辆通行", "Vehicle passage", "A vehicle passing an estate's barrier gate.",
         tables=("event.vehicle_passage",)),
    Term("camera_alarm", "event", "布控告警", "Camera alarm", "An AI camera's alarm: fall, fight, smoke, clutter, …",
         tables=("event.camera_alarm",)),
    Term("patrol_checkin", "event", "巡更", "Patrol check-in", "A guard's check-in at a patrol point in a round.",
         tables=("event.patrol_checkin",)),
    Term("patrol_missed", "event", "漏巡", "Missed patrol", "A patrol point not checked in a round.", tables=("topic.patrol_missed",)),
    Term("meter_leak", "event", "管道渗漏", "Pipe leak", "A water meter whose night-time flow never stops.", tables=("topic.meter_leak",)),
    # 组织 organization
    Term("credit_code", "organization", "统一社会信用代码", "Unified social credit code",
         "GB 32100 18-character code identifying an organisation.", columns=("credit_code", "property_company_code"),
         tables=("organization.organization",)),
    Term("property_company", "organization", "物业公司", "Property company", "The company managing an estate.",
         columns=("property_company_code",)),
    Term("social_organization", "organization", "社会组织", "Social organisation",
         "Registered social organisations, merchants and party organisations of a community.", tables=("organization.organization",)),
    Term("grid_staff", "organization", "网格员", "Grid staff", "The staff member responsible for a grid.",
         columns=("staff_id", "handler"), tables=("organization.grid_staff",)),
)


def term_urn(term: Term) -> str:
    return f"urn:li:glossaryTerm:linli.{term.key}"


def node_urn(library: str) -> str:
    return f"urn:li:glossaryNode:linli.{library}"


def terms_for_column(column: str) -> list[Term]:
    return [t for t in TERMS if column in t.columns]


def terms_for_table(table: str) -> list[Term]:
    return [t for t in TERMS if table in t.tables]
