"""What the API serves: each resource once — its table, key, area and time columns, scope.

Every mart carries `community_code` (or a grid code, which begins with it), and division codes
nest (banner 6 digits, street 9, community 12, grid 15), so an area is a code prefix and one
predicate confines any resource to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import yaml

from linli.warehouse import PROJECT


@dataclass(frozen=True)
class Resource:
    path: str  # /v1/<scope>/<name>
    table: str
    key: tuple[str, ...]  # unique, ordered: the cursor
    scope: str  # library scope: a key needs `<scope>:read`
    time: str | None = None  # column the from/to filter applies to
    kind: str | None = None  # column the kind filter applies to
    lonlat: tuple[str, str] | None = None  # point geometry for GeoJSON
    geometry: str | None = None  # GeoJSON geometry column (polygons)
    description: str = ""
    area: str | None = "community_code"  # the code areas are prefixes of (grid codes start with their community's);
    # None: city-wide facts, for keys bound to the whole city
    store: str = "build"  # build: the serving store; quality: the quality results

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def personal(self) -> bool:
        """Touches people or trajectories (a column the dbt project tags as personal data): every request is audited."""
        return self.table.split(".", 1)[1] in _personal_marts()


@cache
def _personal_marts() -> frozenset[str]:
    """Marts with a column whose dbt `meta` names a personal-data class, as the catalog tags it."""
    marts = set()
    for path in (PROJECT / "models" / "marts").rglob("*.yml"):
        for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models", []):
            if any((c.get("meta") or c.get("config", {}).get("meta") or {}).get("personal_data") for c in model.get("columns", [])):
                marts.add(model["name"])
    return frozenset(marts)


def _events(name: str, table: str, key: str | tuple[str, ...], time: str, kind: str | None = None, lonlat=None, description=""):
    return Resource(f"events/{name}", f"event.{table}", key if isinstance(key, tuple) else (key,), "events", time=time, kind=kind, lonlat=lonlat,
                    description=description)


RESOURCES = [
    Resource("places/communities", "place.community", ("community_code",), "places", kind="kind", lonlat=("centre_lon", "centre_lat"),
             description="社区 communities under their streets and banners"),
    Resource("places/grids", "place.grid", ("grid_code",), "places", geometry="polygon_geojson", description="网格 grids"),
    Resource("places/buildings", "place.building", ("building_code",), "places", lonlat=("lon", "lat"), description="楼栋 buildings"),
    Resource("places/houses", "place.house", ("house_code",), "places", kind="use", description="房屋 houses"),
    Resource("people/residents", "people.resident", ("person_key",), "people", kind="population_type",
             description="实有人口: pseudonymous keys and masked forms only"),
    Resource("people/households", "people.household", ("household_no",), "people", description="户 households"),
    Resource("things/devices", "thing.device", ("device_id",), "things", kind="kind", lonlat=("lon", "lat"), description="物联设备 devices"),
    Resource("things/vehicles", "thing.vehicle", ("plate_key",), "things", kind="vehicle_type",
             description="登记车辆 vehicles (plates as keys and masked forms)"),
    _events("door_access", "door_access", "event_id", "event_time", kind="open_method", description="门禁 door access: trajectories"),
    _events("camera_alarms", "camera_alarm", "alarm_id", "alarm_time", kind="alarm_type", lonlat=("lon", "lat"), description="AI 摄像头告警"),
    _events("vehicle_passages", "vehicle_passage", "pass_id", "pass_time", kind="direction", description="道闸 vehicle passages"),
    _events("locker_sales", "locker_sale", "txn_id", "txn_time", kind="txn_type", description="快递柜/售货柜 transactions"),
    _events("patrol_checkins", "patrol_checkin", "checkin_id", "checkin_time", description="巡更 patrol check-ins"),
    _events("meter_readings", "meter_reading", ("meter_id", "read_time"), "read_time", kind="kind", description="抄表 meter readings"),
    Resource("events/work_orders", "event.work_order", ("order_no",), "events", time="reported_at", kind="category",
             description="网格事件/报事报修 work orders"),
    Resource("organizations/organizations", "organization.organization", ("credit_code",), "organizations", kind="org_kind",
             description="组织 organisations"),
    Resource("organizations/grid_staff", "organization.grid_staff", ("staff_id",), "organizations", kind="role", description="网格员"),
    *[Resource(f"topics/{t}", f"topic.{t}", k, "topics", description=d) for t, k, d in (
        ("device_offline", ("device_id",), "设备离线"), ("elderly_alone_inactive", ("person_key",), "独居老人无活动"),
        ("meter_leak", ("device_id",), "管道渗漏"), ("overcrowded_house", ("house_code",), "群租"),
        ("patrol_missed", ("device_id", "date", "round_no"), "漏巡"), ("vacant_house", ("house_code",), "空置房屋"))],
    Resource("profiles/communities", "profile.community_profile", ("community_code",), "profiles", lonlat=("centre_lon", "centre_lat"),
             description="社区画像"),
    Resource("profiles/houses", "profile.house_profile", ("house_code",), "profiles", description="房屋画像"),
    Resource("profiles/residents", "profile.resident_profile", ("person_key",), "profiles", description="人员画像"),
    Resource("metrics/communities", "metrics.community_daily", ("community_code", "date"), "metrics", time="date", description="社区日指标"),
    Resource("metrics/grids", "metrics.grid_daily", ("grid_code", "date"), "metrics", time="date", description="网格日指标",
             area="grid_code"),
]
RESOURCES += [
    Resource("quality/results", "quality.latest_results", ("asset", "rule"), "quality", time="checked_at", kind="severity", area=None,
             store="quality", description="the latest result of every quality rule"),
    Resource("quality/scores", "quality.scores", ("subject",), "quality",
             kind="grain", area=None, store="quality", description="quality scores by column, table, library, community and day"),
    Resource("quality/issues", "quality.issues", ("issue_id",), "quality", time="opened_at", kind="status", area=None, store="quality",
             description="quality issues and their workflow state"),
]
CATALOG_SCOPE = "catalog"  # /v1/catalog/search: metadata about the libraries, never their rows
SCOPES = sorted({r.scope for r in RESOURCES} | {CATALOG_SCOPE})
CITY_AREA = "1506"  # all of Ordos: every area a key may have begins with it
CITY_ZONE = "Asia/Shanghai"  # the city's time: every time is served in it, and one without an offset is read in it
CITY_TIME = f"SET TimeZone = '{CITY_ZONE}'"  # a connection's times as the city lives them, +08:00


def is_code(value: str) -> bool:
    """Digits 0-9 only, as division and grid codes are (`str.isdigit` also takes ① and other digits)."""
    return value.isascii() and value.isdigit()


def within(column: str, area: str) -> str:
    """SQL true where the column's code lies in the area, given as the one parameter after it.

    Rows placed in no community (events of a device the registry does not know) are the city's
    alone: the whole city holds them, no narrower area does.
    """
    unplaced = f' OR "{column}" IS NULL' if area == CITY_AREA else ""
    return f'(starts_with("{column}", ?){unplaced})'
