"""The charts of the five dashboards, as Superset form data.

Maps are deck.gl layers over the lake's own geometry (grid polygons, device, alarm and grid-centre
points) with no base map: `mapbox_style` is left empty, so nothing is fetched from a tile server and
the dashboards work with no internet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from serving.dashboards import definitions as d

# Ordos; the maps zoom to their data anyway (autozoom).
VIEWPORT = {"longitude": 109.78, "latitude": 39.61, "zoom": 9, "bearing": 0, "pitch": 0}
NO_BASE_MAP = ""


@dataclass(frozen=True)
class Chart:
    key: str  # seed of its uuid
    title: str
    viz: str
    dataset: d.Dataset
    params: dict = field(default_factory=dict)
    width: int = 4  # of 12 columns
    height: int = 50  # grid units (8 px)

    @property
    def is_map(self) -> bool:
        return self.viz.startswith("deck_")

    def form_data(self) -> dict:
        base = {"viz_type": self.viz, "time_range": "No filter", "adhoc_filters": [], "row_limit": 10000}
        if self.dataset.time:
            base["granularity_sqla"] = self.dataset.time
        return {**base, **self.params}


def big_number(key, title, ds, metric, subheader="", filters=(), width=3, height=30) -> Chart:
    return Chart(key, title, "big_number_total", ds,
                 {"metric": metric, "subheader": subheader, "y_axis_format": ds_metric(ds, metric).d3format or "SMART_NUMBER",
                  "header_font_size": 0.4, "subheader_font_size": 0.15, "adhoc_filters": list(filters)}, width=width, height=height)


def pie(key, title, ds, groupby, metric, **kw) -> Chart:
    return Chart(key, title, "pie", ds,
                 {"groupby": [groupby], "metric": metric, "show_labels": True, "label_type": "key_percent",
                  "labels_outside": True, "show_legend": True, "legendOrientation": "right", "donut": True,
                  "number_format": ds_metric(ds, metric).d3format or "SMART_NUMBER", "row_limit": 100,
                  "sort_by_metric": True, "color_scheme": "supersetColors"}, **kw)


def bars(key, title, ds, x, metrics, groupby=(), horizontal=False, stack=False, sort_by_metric=False, **kw) -> Chart:
    params = {"x_axis": x, "metrics": list(metrics), "groupby": list(groupby), "orientation": "horizontal" if horizontal else "vertical",
              "stack": "Stack" if stack else None, "y_axis_format": ds_metric(ds, metrics[0]).d3format or "SMART_NUMBER",
              "show_legend": True, "legendOrientation": "top", "rich_tooltip": True, "row_limit": 10000,
              "x_axis_sort_asc": not sort_by_metric, "color_scheme": "supersetColors", "truncate_metric": True,
              "show_value": False, "zoomable": False, "x_axis_title": ds.column(x).label, "x_axis_title_margin": 30}
    if sort_by_metric:
        params["x_axis_sort"] = metrics[0]
        params["x_axis_sort_asc"] = False
    if ds.column(x).is_dttm:
        params["time_grain_sqla"] = "P1D"
        params["x_axis_time_format"] = "%m月%d日"
    params.update(kw.pop("extra", {}))
    return Chart(key, title, "echarts_timeseries_bar", ds, params, **kw)


def daily_line(key, title, ds, metrics, groupby=(), **kw) -> Chart:
    return Chart(key, title, "echarts_timeseries_line", ds,
                 {"x_axis": ds.time, "time_grain_sqla": "P1D", "metrics": list(metrics), "groupby": list(groupby),
                  "y_axis_format": ds_metric(ds, metrics[0]).d3format or "SMART_NUMBER", "x_axis_time_format": "%m月%d日",
                  "rich_tooltip": True, "show_legend": True, "legendOrientation": "top", "markerEnabled": True,
                  "color_scheme": "supersetColors", "row_limit": 10000}, **kw)


def table(key, title, ds, groupby, metrics, order_by=None, filters=(), time_format="%Y-%m-%d %H:%M", descending=True, **kw) -> Chart:
    return Chart(key, title, "table", ds,
                 {"query_mode": "aggregate", "groupby": list(groupby), "metrics": list(metrics), "all_columns": [],
                  "percent_metrics": [], "adhoc_filters": list(filters), "order_desc": descending,
                  "timeseries_limit_metric": order_by or metrics[0], "row_limit": 1000, "server_pagination": False,
                  "table_timestamp_format": time_format, "include_search": False, "show_cell_bars": True}, **kw)


def polygons(key, title, ds, metric, **kw) -> Chart:
    return Chart(key, title, "deck_polygon", ds,
                 {"line_column": "polygon", "line_type": "json", "metric": metric, "reverse_long_lat": False,
                  "point_radius_fixed": {"type": "fix", "value": 0}, "filled": True, "stroked": True, "extruded": False,
                  "fill_color_picker": {"r": 3, "g": 111, "b": 186, "a": 1}, "stroke_color_picker": {"r": 60, "g": 60, "b": 60, "a": 1},
                  "line_width": 4, "line_width_unit": "pixels", "linear_color_scheme": "schemeYlOrRd", "opacity": 80,
                  "num_buckets": 5, "break_points": [], "legend_position": "tr", "legend_format": ",d",
                  "tooltip_contents": ["grid_name"], "js_columns": ["grid_name"], **_map()}, **kw)


def heat(key, title, ds, lon, lat, metric, **kw) -> Chart:
    return Chart(key, title, "deck_heatmap", ds,
                 {"spatial": {"type": "latlong", "lonCol": lon, "latCol": lat}, "size": metric, "intensity": 1,
                  "radius_pixels": 60, "linear_color_scheme": "schemeYlOrRd", "aggregation": "SUM", **_map()}, **kw)


def points(key, title, ds, dimension, min_px=3, **kw) -> Chart:
    return Chart(key, title, "deck_scatter", ds,
                 {"spatial": {"type": "latlong", "lonCol": "lon", "latCol": "lat"}, "dimension": dimension,
                  # 15 m across, but never under a few pixels: a community's devices stay visible at the city's zoom
                  "point_radius_fixed": {"type": "fix", "value": 15}, "point_unit": "radius_m", "min_radius": min_px,
                  "max_radius": 20, "multiplier": 1, "color_picker": {"r": 0, "g": 122, "b": 135, "a": 1},
                  "color_scheme": "supersetColors", "legend_position": "tr", "legend_format": None, "js_columns": [dimension],
                  "tooltip_contents": [dimension], **_map()}, **kw)


def _map() -> dict:
    # every device of a city of 20,000 residents is about 25,000 points: none left off the map
    return {"mapbox_style": NO_BASE_MAP, "viewport": VIEWPORT, "autozoom": True, "filter_nulls": True, "row_limit": 100_000}


def ds_metric(ds: d.Dataset, name: str) -> d.Metric:
    return next(m for m in ds.metrics if m.name == name)


def _not_passed() -> dict:
    return {"expressionType": "SQL", "clause": "WHERE", "sqlExpression": "NOT passed", "filterOptionName": "failing_only"}


def _open_issues() -> dict:
    return {"expressionType": "SQL", "clause": "WHERE", "sqlExpression": f"status IN {d.OPEN_ISSUE}", "filterOptionName": "open_only"}


def _grain(grain: str) -> dict:
    return {"expressionType": "SQL", "clause": "WHERE", "sqlExpression": f"grain = '{grain}'", "filterOptionName": f"grain_{grain}"}


def _services() -> dict:
    return {"expressionType": "SQL", "clause": "WHERE", "filterOptionName": "repairs_and_services",
            "sqlExpression": "category IN ('设施维修', '物业服务', '民生服务')"}


G, S, R, P, Q = d.GRID_ORDERS, d.DEVICES, d.RESIDENTS, d.PATROL_MISSED, d.QUALITY_SCORES

GOVERNANCE = [
    big_number("gov_open", "未办结工单", G, "open_orders", "件"),
    big_number("gov_rate", "办结率", G, "handling_rate", "已办结 / 全部工单"),
    big_number("gov_hours", "平均办理时长", G, "mean_hours", "小时"),
    big_number("gov_orders", "工单总数", G, "orders", "件"),
    polygons("gov_grid_map", "网格未办结工单分布", G, "open_orders", width=6, height=70),
    heat("gov_heat", "工单热力", G, "centroid_lon", "centroid_lat", "orders", width=6, height=70),
    table("gov_ranking", "网格排名", G, ["grid_name", "community_name"], ["open_orders", "orders", "handling_rate", "mean_hours"],
          width=6, height=60),
    daily_line("gov_trend", "每日工单趋势", G, ["orders", "open_orders"], width=6, height=60),
    pie("gov_categories", "事件类别", G, "category", "orders", width=6),
    pie("gov_channels", "上报渠道", G, "channel", "orders", width=6),
]

SECURITY = [
    big_number("sec_online", "设备在线率", S, "online_rate", "在线 / 应在线设备"),
    big_number("sec_devices", "设备总数", S, "devices", "台"),
    big_number("sec_alarms", "摄像头告警", d.CAMERA_ALARMS, "alarms", "条"),
    big_number("sec_missed", "漏巡次数", P, "missed", "次"),
    points("sec_device_kinds", "设备分布（按类型）", S, "kind", width=6, height=70),
    points("sec_device_status", "设备状态（在线/离线）", S, "status", width=6, height=70),
    points("sec_alarm_map", "摄像头告警分布（按类型）", d.CAMERA_ALARMS, "alarm_kind", min_px=5, width=6, height=70),
    pie("sec_alarm_kinds", "告警类型", d.CAMERA_ALARMS, "alarm_kind", "alarms", width=6, height=70),
    bars("sec_access_hours", "门禁与道闸分时通行", d.ACCESS, "hour", ["passes"], groupby=["kind"], stack=True, width=8, height=60),
    bars("sec_status_by_kind", "各类设备状态", S, "kind", ["devices"], groupby=["status"], stack=True, width=4, height=60),
    table("sec_missed_table", "漏巡明细（按社区、日期）", P, ["community_name", "date"], ["missed"], time_format="%Y-%m-%d",
          width=12, height=40),
]

SERVICE = [
    big_number("svc_amount", "智能柜交易金额", d.LOCKER_SALES, "amount", "元"),
    big_number("svc_txns", "智能柜交易笔数", d.LOCKER_SALES, "txns", "笔"),
    big_number("svc_leaks", "疑似管道渗漏", d.METER_LEAKS, "leaks", "只水表"),
    big_number("svc_houses", "空置与群租房屋", d.HOUSE_FLAGS, "houses", "套"),
    bars("svc_repairs", "报事报修与民生服务", G, "category", ["orders"], groupby=["status"], stack=True, width=6, height=60,
         extra={"adhoc_filters": [_services()]}),
    bars("svc_locker_daily", "智能柜每日交易", d.LOCKER_SALES, "txn_time", ["txns"], groupby=["txn_type"], stack=True,
         width=6, height=60),
    bars("svc_meter_daily", "每日表计用量", d.METER_USE, "read_time", ["consumption"], groupby=["kind"], width=6, height=60),
    table("svc_leak_table", "疑似渗漏（按社区）", d.METER_LEAKS, ["community_name"], ["leaks"], width=6, height=60),
    bars("svc_house_flags", "空置与群租房屋（按社区）", d.HOUSE_FLAGS, "community_name", ["houses"], groupby=["flag"],
         width=12, height=60),
]

POPULATION = [
    big_number("pop_total", "实有人口", R, "residents", "人"),
    big_number("pop_elderly_alone", "独居老人", R, "elderly_alone", "人"),
    big_number("pop_alerts", "独居老人无活动告警", d.ELDERLY_INACTIVE, "alerts", "人（仅计数）"),
    big_number("pop_disabled", "残疾人", R, "disabled", "人"),
    bars("pop_pyramid", "人口金字塔", R, "age_band", ["men_left", "women"], horizontal=True, stack=True, width=6, height=80),
    pie("pop_mix", "户籍 / 流动 / 境外", R, "population_type", "residents", width=6, height=80),
    bars("pop_special", "特殊人群（按社区）", R, "community_name", ["elderly_alone", "disabled", "low_income"], width=6, height=60),
    table("pop_alert_table", "独居老人无活动告警（按社区）", d.ELDERLY_INACTIVE, ["community_name"], ["alerts", "max_silent_hours"],
          width=6, height=60),
]

QUALITY = [
    big_number("dq_score", "总体质量得分", Q, "score", "各基础库平均", width=4, filters=[_grain("library")]),
    big_number("dq_failing", "未通过规则", d.QUALITY_RULES, "failing", "条", width=4),
    big_number("dq_open", "未关闭问题", d.QUALITY_ISSUES, "open_issues", "个", width=4),
    bars("dq_libraries", "各基础库质量得分", Q, "library", ["score"], sort_by_metric=True, width=6, height=60,
         extra={"adhoc_filters": [_grain("library")], "y_axis_format": ".2%", "xAxisLabelRotation": 45}),
    table("dq_assets", "各数据资产质量得分（低分在前）", Q, ["library", "asset"], ["score"], descending=False, width=6, height=60,
          filters=[_grain("table")]),
    table("dq_failing_rules", "未通过的规则", d.QUALITY_RULES, ["asset", "rule", "severity", "dimension"], ["bad_rows"],
          filters=[_not_passed()], width=6, height=60),
    table("dq_issues", "未关闭的质量问题", d.QUALITY_ISSUES, ["asset", "rule", "severity", "status", "assignee"], ["open_issues"],
          filters=[_open_issues()], width=6, height=60),
]
