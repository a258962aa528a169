"""The datasets the dashboards read: SQL over the marts, with Chinese column labels and metrics.

Every area dataset carries `community_code` (the code RLS filters by prefix, as the API does) and the
names the dashboards' cascading filters select on: banner_name → street_name → community_name →
grid_name. Datasets select only the columns a chart needs, so no pseudonymous key, masked name or
plate ever reaches a dashboard; people appear only as counts.

Times are shown in Beijing time (the marts keep UTC instants).
"""

from __future__ import annotations

from dataclasses import dataclass

SERVING, QUALITY = "serving", "quality"


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    type: str = "VARCHAR"

    @property
    def is_dttm(self) -> bool:
        return self.type in ("TIMESTAMP", "DATE")


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    expression: str
    d3format: str | None = None


@dataclass(frozen=True)
class Dataset:
    key: str  # table_name in Superset, and the seed of its uuid
    title: str
    sql: str
    columns: tuple[Column, ...]
    metrics: tuple[Metric, ...] = ()
    database: str = SERVING
    time: str | None = None  # the column the date-range filter applies to
    area: bool = True  # rows belong to a community: RLS applies
    description: str = ""

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _case(column: str, labels: dict[str, str]) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in labels.items())
    return f"CASE {column} {whens} ELSE coalesce({column}, '未知') END"


def _local(ts: str) -> str:
    return f"timezone('Asia/Shanghai', {ts})"


# The area columns every area dataset ends with, from place.community `c` (and place.grid `g`).
# Events of a device the registry does not know are placed in no community: they are kept (left
# joined), counted in the city's figures as the API counts them, named 未定位, and hidden from every
# area role (their null community_code matches no row-level filter).
AREA_SQL = ("c.community_code, coalesce(c.community_name, '未定位') AS community_name, c.street_code, "
            "coalesce(c.street_name, '未定位') AS street_name, c.banner_code, coalesce(c.banner_name, '未定位') AS banner_name")
AREA = (Column("community_code", "社区代码"), Column("community_name", "社区"), Column("street_code", "街道代码"),
        Column("street_name", "街道（乡镇）"), Column("banner_code", "旗区代码"), Column("banner_name", "旗区"))
GRID = (Column("grid_code", "网格代码"), Column("grid_name", "网格"))
COUNT = Metric("count", "数量", "COUNT(*)", ",d")

CHANNELS = {"resident_app": "居民App", "grid_staff": "网格员上报", "camera": "摄像头发现", "hotline_12345": "12345热线"}
ORDER_STATUS = {"reported": "已上报", "accepted": "已受理", "dispatched": "已派遣", "handled": "已处置", "closed": "已办结",
                "evaluated": "已评价"}
DEVICE_STATUS = {"online": "在线", "offline": "离线", "not_monitored": "不监测"}
LOCKER_TXN = {"pickup": "取件", "send": "寄件", "purchase": "购物"}
METER_KIND = {"water_meter": "水表", "electricity_meter": "电表", "gas_meter": "燃气表"}
POPULATION_TYPE = {"registered": "户籍人口", "floating": "流动人口", "foreign": "境外人员"}

AREAS = Dataset(
    "区域", "区域：旗区、街道、社区、网格",
    f"SELECT g.grid_code, g.grid_name, {AREA_SQL} FROM place.grid g JOIN place.community c ON c.community_code = g.community_code",
    (*GRID, *AREA), description="The filters' values: every grid under its community, street and banner.")

GRID_ORDERS = Dataset(
    "网格工单", "网格事件工单（含网格边界）",
    f"""SELECT g.grid_code, g.grid_name, {AREA_SQL},
       CAST(json_extract(g.polygon_geojson, '$.coordinates[0]') AS VARCHAR) AS polygon,
       g.centroid_lon, g.centroid_lat,
       w.order_no, w.category, {_case('w.channel', CHANNELS)} AS channel, {_case('w.status', ORDER_STATUS)} AS status,
       w.is_closed, {_local('w.reported_at')} AS reported_at, w.handling_hours
FROM place.grid g JOIN place.community c ON c.community_code = g.community_code
LEFT JOIN event.work_order w ON w.grid_code = g.grid_code""",
    (*GRID, *AREA, Column("polygon", "网格边界"), Column("centroid_lon", "中心经度", "DOUBLE"),
     Column("centroid_lat", "中心纬度", "DOUBLE"), Column("order_no", "工单号"), Column("category", "事件类别"),
     Column("channel", "上报渠道"), Column("status", "办理状态"), Column("is_closed", "已办结", "BOOLEAN"),
     Column("reported_at", "上报时间", "TIMESTAMP"), Column("handling_hours", "办理时长（小时）", "DOUBLE")),
    (Metric("orders", "工单数", "COUNT(order_no)", ",d"),
     Metric("open_orders", "未办结工单", "COUNT(order_no) FILTER (WHERE NOT is_closed)", ",d"),
     Metric("handling_rate", "办结率", "AVG(CASE WHEN is_closed THEN 1.0 ELSE 0.0 END) FILTER (WHERE order_no IS NOT NULL)", ".1%"),
     Metric("mean_hours", "平均办理时长（小时）", "AVG(handling_hours)", ",.1f")),
    time="reported_at", description="Grids (with boundaries) and their work orders; grids with none keep one empty row.")

DEVICES = Dataset(
    "设备", "物联设备",
    f"""SELECT d.device_id, d.kind_name_zh AS kind, {_case('d.status', DEVICE_STATUS)} AS status, d.lon, d.lat,
       d.grid_code, g.grid_name, {AREA_SQL}
FROM thing.device d LEFT JOIN place.community c ON c.community_code = d.community_code
LEFT JOIN place.grid g ON g.grid_code = d.grid_code
WHERE d.lon IS NOT NULL AND d.lat IS NOT NULL""",
    (Column("device_id", "设备编号"), Column("kind", "设备类型"), Column("status", "状态"), Column("lon", "经度", "DOUBLE"),
     Column("lat", "纬度", "DOUBLE"), *GRID, *AREA),
    (Metric("devices", "设备数", "COUNT(*)", ",d"),
     Metric("online_rate", "设备在线率", "AVG(CASE status WHEN '在线' THEN 1.0 WHEN '离线' THEN 0.0 END)", ".1%")))

CAMERA_ALARMS = Dataset(
    "摄像头告警", "AI 摄像头告警",
    f"""SELECT a.alarm_id, a.alarm_name_zh AS alarm_kind, {_local('a.alarm_time')} AS alarm_time, a.confidence, a.lon, a.lat,
       {AREA_SQL}
FROM event.camera_alarm a LEFT JOIN place.community c ON c.community_code = a.community_code
WHERE a.lon IS NOT NULL AND a.lat IS NOT NULL""",
    (Column("alarm_id", "告警编号"), Column("alarm_kind", "告警类型"), Column("alarm_time", "告警时间", "TIMESTAMP"),
     Column("confidence", "置信度", "DOUBLE"), Column("lon", "经度", "DOUBLE"), Column("lat", "纬度", "DOUBLE"), *AREA),
    (Metric("alarms", "告警数", "COUNT(*)", ",d"),), time="alarm_time")

ACCESS = Dataset(
    "门禁道闸通行", "门禁与道闸通行（按小时）",
    f"""WITH passes AS (
    SELECT '单元门禁' AS kind, {_local('event_time')} AS pass_time, community_code FROM event.door_access
    UNION ALL
    SELECT '车辆道闸', {_local('pass_time')}, community_code FROM event.vehicle_passage)
SELECT p.kind, p.pass_time, lpad(CAST(hour(p.pass_time) AS VARCHAR), 2, '0') || '时' AS hour, {AREA_SQL}
FROM passes p LEFT JOIN place.community c ON c.community_code = p.community_code""",
    (Column("kind", "通行类型"), Column("pass_time", "通行时间", "TIMESTAMP"), Column("hour", "时段"), *AREA),
    (Metric("passes", "通行次数", "COUNT(*)", ",d"),), time="pass_time",
    description="Counts only: who passed is never selected.")

PATROL_MISSED = Dataset(
    "漏巡", "巡更漏巡",
    f"""SELECT p.device_id, p.date, p.round_no, {AREA_SQL}
FROM topic.patrol_missed p LEFT JOIN place.community c ON c.community_code = p.community_code""",
    (Column("device_id", "巡更点"), Column("date", "日期", "DATE"), Column("round_no", "轮次", "BIGINT"), *AREA),
    (Metric("missed", "漏巡次数", "COUNT(*)", ",d"),), time="date")

LOCKER_SALES = Dataset(
    "智能柜交易", "快递柜与售货柜交易",
    f"""SELECT {_case('s.txn_type', LOCKER_TXN)} AS txn_type, {_local('s.txn_time')} AS txn_time, s.amount, {AREA_SQL}
FROM event.locker_sale s LEFT JOIN place.community c ON c.community_code = s.community_code""",
    (Column("txn_type", "交易类型"), Column("txn_time", "交易时间", "TIMESTAMP"), Column("amount", "金额（元）", "DOUBLE"), *AREA),
    (Metric("txns", "交易笔数", "COUNT(*)", ",d"), Metric("amount", "交易金额（元）", "SUM(amount)", ",.2f")), time="txn_time")

METER_USE = Dataset(
    "表计用量", "水电燃气表用量",
    f"""SELECT {_case('m.kind', METER_KIND)} AS kind, m.unit, {_local('m.read_time')} AS read_time, m.consumption,
       m.grid_code, g.grid_name, {AREA_SQL}
FROM event.meter_reading m LEFT JOIN place.community c ON c.community_code = m.community_code
LEFT JOIN place.grid g ON g.grid_code = m.grid_code
WHERE m.kind IS NOT NULL""",
    (Column("kind", "表计类型"), Column("unit", "单位"), Column("read_time", "抄表时间", "TIMESTAMP"),
     Column("consumption", "用量", "DOUBLE"), *GRID, *AREA),
    (Metric("consumption", "用量（水、气 m³；电 kWh）", "SUM(consumption)", ",.1f"),), time="read_time")

METER_LEAKS = Dataset(
    "管道渗漏", "疑似管道渗漏（夜间持续用水）",
    f"""SELECT l.device_id, l.min_night_m3, {AREA_SQL}
FROM topic.meter_leak l LEFT JOIN place.community c ON c.community_code = l.community_code""",
    (Column("device_id", "水表"), Column("min_night_m3", "夜间最小用水（m³）", "DOUBLE"), *AREA),
    (Metric("leaks", "疑似渗漏水表", "COUNT(*)", ",d"),))

HOUSE_FLAGS = Dataset(
    "空置与群租", "空置房屋与群租房屋",
    f"""WITH flagged AS (
    SELECT '空置房屋' AS flag, house_code, grid_code, community_code FROM topic.vacant_house
    UNION ALL
    SELECT '群租房屋', house_code, grid_code, community_code FROM topic.overcrowded_house)
SELECT f.flag, f.grid_code, g.grid_name, {AREA_SQL}
FROM flagged f LEFT JOIN place.community c ON c.community_code = f.community_code
LEFT JOIN place.grid g ON g.grid_code = f.grid_code""",
    (Column("flag", "房屋状况"), *GRID, *AREA),
    (Metric("houses", "房屋数", "COUNT(*)", ",d"),))

RESIDENTS = Dataset(
    "实有人口", "实有人口（仅计数）",
    f"""SELECT CASE r.sex WHEN '1' THEN '男' WHEN '2' THEN '女' ELSE '未说明' END AS sex,
       CASE WHEN r.age >= 90 THEN '90岁以上'
            ELSE lpad(CAST(CAST(floor(r.age / 10) * 10 AS INTEGER) AS VARCHAR), 2, '0') || '-'
                 || lpad(CAST(CAST(floor(r.age / 10) * 10 + 9 AS INTEGER) AS VARCHAR), 2, '0') || '岁' END AS age_band,
       {_case('r.population_type', POPULATION_TYPE)} AS population_type,
       r.is_elderly_alone, r.is_disabled, r.is_low_income, r.grid_code, g.grid_name, {AREA_SQL}
FROM people.resident r LEFT JOIN place.community c ON c.community_code = r.community_code
LEFT JOIN place.grid g ON g.grid_code = r.grid_code""",
    (Column("sex", "性别"), Column("age_band", "年龄段"), Column("population_type", "人口类型"),
     Column("is_elderly_alone", "独居老人", "BOOLEAN"), Column("is_disabled", "残疾人", "BOOLEAN"),
     Column("is_low_income", "低保对象", "BOOLEAN"), *GRID, *AREA),
    (Metric("residents", "实有人口", "COUNT(*)", ",d"),
     # the pyramid's left half: men counted negative
     Metric("men_left", "男", "-SUM(CASE WHEN sex = '男' THEN 1 ELSE 0 END)", ",d"),
     Metric("women", "女", "SUM(CASE WHEN sex = '女' THEN 1 ELSE 0 END)", ",d"),
     Metric("elderly_alone", "独居老人", "COUNT(*) FILTER (WHERE is_elderly_alone)", ",d"),
     Metric("disabled", "残疾人", "COUNT(*) FILTER (WHERE is_disabled)", ",d"),
     Metric("low_income", "低保对象", "COUNT(*) FILTER (WHERE is_low_income)", ",d")),
    description="One row per resident with no identifier at all: the dashboards can only count.")

ELDERLY_INACTIVE = Dataset(
    "独居老人无活动", "独居老人无活动告警（仅计数）",
    f"""SELECT e.silent_hours, e.grid_code, g.grid_name, {AREA_SQL}
FROM topic.elderly_alone_inactive e LEFT JOIN place.community c ON c.community_code = e.community_code
LEFT JOIN place.grid g ON g.grid_code = e.grid_code""",
    (Column("silent_hours", "无活动时长（小时）", "BIGINT"), *GRID, *AREA),
    (Metric("alerts", "告警人数", "COUNT(*)", ",d"), Metric("max_silent_hours", "最长无活动（小时）", "MAX(silent_hours)", ",.0f")),
    description="Never names or keys: a count per community and grid.")

QUALITY_LIBRARIES = {"raw": "原始区", "place": "地（房）", "people": "人", "thing": "物", "event": "事", "organization": "组织",
                     "topic": "专题", "profile": "画像", "metrics": "指标"}

SEVERITY = {"error": "错误（阻断）", "warn": "警告"}
DIMENSIONS = {"completeness": "完整性", "uniqueness": "唯一性", "format": "格式", "range": "取值范围", "referential": "参照完整性",
              "consistency": "一致性", "freshness": "及时性", "volume": "数据量"}
ISSUE_STATUS = {"open": "待处理", "assigned": "已分派", "fixed": "已修复", "verified": "已验证", "closed": "已关闭"}
OPEN_ISSUE = ("待处理", "已分派", "已修复")  # verified and closed issues are done with

QUALITY_SCORES = Dataset(
    "质量得分", "数据质量得分",
    f"""SELECT grain, {_case('library', QUALITY_LIBRARIES)} AS library, asset, "column" AS column_name, community_code, day, score,
       rules, CAST(rows_checked AS BIGINT) AS rows_checked, CAST(unexpected_count AS BIGINT) AS unexpected_count
FROM quality.scores""",
    (Column("grain", "粒度"), Column("library", "基础库"), Column("asset", "数据资产"), Column("column_name", "字段"),
     Column("community_code", "社区代码"), Column("day", "日期", "DATE"), Column("score", "得分", "DOUBLE"),
     Column("rules", "规则数", "BIGINT"), Column("rows_checked", "检查行数", "BIGINT"), Column("unexpected_count", "问题行数", "BIGINT")),
    (Metric("score", "质量得分", "AVG(score)", ".2%"),), database=QUALITY, area=False)

QUALITY_RULES = Dataset(
    "质量规则结果", "质量规则最新结果",
    f"""SELECT asset, {_case('library', QUALITY_LIBRARIES)} AS library, rule, {_case('dimension', DIMENSIONS)} AS dimension,
       {_case('severity', SEVERITY)} AS severity, passed, rows_checked,
       unexpected_count, unexpected_percent / 100.0 AS unexpected_share, {_local('checked_at')} AS checked_at
FROM quality.latest_results""",
    (Column("asset", "数据资产"), Column("library", "基础库"), Column("rule", "规则"), Column("dimension", "质量维度"),
     Column("severity", "级别"), Column("passed", "通过", "BOOLEAN"), Column("rows_checked", "检查行数", "BIGINT"),
     Column("unexpected_count", "问题行数", "BIGINT"), Column("unexpected_share", "问题占比", "DOUBLE"),
     Column("checked_at", "检查时间", "TIMESTAMP")),
    (Metric("failing", "未通过规则", "COUNT(*) FILTER (WHERE NOT passed)", ",d"),
     Metric("bad_rows", "问题行数", "SUM(unexpected_count)", ",d")),
    database=QUALITY, area=False, time="checked_at")

QUALITY_ISSUES = Dataset(
    "质量问题", "数据质量问题单",
    f"""SELECT issue_id, asset, rule, {_case('severity', SEVERITY)} AS severity, {_case('status', ISSUE_STATUS)} AS status,
       coalesce(assignee, '未分派') AS assignee,
       {_local('opened_at')} AS opened_at, {_local('updated_at')} AS updated_at
FROM quality.issues""",
    (Column("issue_id", "问题编号"), Column("asset", "数据资产"), Column("rule", "规则"), Column("severity", "级别"),
     Column("status", "状态"), Column("assignee", "处理人"), Column("opened_at", "发现时间", "TIMESTAMP"),
     Column("updated_at", "更新时间", "TIMESTAMP")),
    (Metric("open_issues", "未关闭问题", f"COUNT(*) FILTER (WHERE status IN {OPEN_ISSUE})", ",d"),),
    database=QUALITY, area=False, time="opened_at")

DATASETS = [AREAS, GRID_ORDERS, DEVICES, CAMERA_ALARMS, ACCESS, PATROL_MISSED, LOCKER_SALES, METER_USE, METER_LEAKS,
            HOUSE_FLAGS, RESIDENTS, ELDERLY_INACTIVE, QUALITY_SCORES, QUALITY_RULES, QUALITY_ISSUES]
