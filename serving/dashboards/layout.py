"""The five dashboards: their charts in rows, and their native filters.

Area dashboards get the cascade 旗区 → 街道 → 社区 → 网格 (each list narrowed by the one above it)
and a date range; a chart whose dataset lacks a filter's column simply does not apply it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from serving.dashboards import charts as c
from serving.dashboards import definitions as d

NAMESPACE = uuid.UUID("6f1c2b9e-4a57-4c1e-9d0a-6c696e6c6900")  # Linli's: every asset's uuid is uuid5 of its key


def uid(kind: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{key}"))


@dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    charts: list[c.Chart]
    area_filters: bool = True
    description: str = ""


DASHBOARDS = [
    Dashboard("governance", "社区治理一张图", c.GOVERNANCE, description="网格事件工单：分布、热力、办结率与办理时长、排名、趋势、类别与渠道"),
    Dashboard("security", "社区安防一张图", c.SECURITY, description="设备分布与状态、摄像头告警、门禁道闸通行、设备在线率、漏巡"),
    Dashboard("services", "社区服务一张图", c.SERVICE, description="报事报修与服务、智能柜、表计用量与渗漏、空置与群租房屋"),
    Dashboard("population", "人口概览", c.POPULATION, description="人口结构与特殊人群，仅计数，不含任何个人信息"),
    Dashboard("quality", "数据质量", c.QUALITY, area_filters=False, description="各库与各资产质量得分、未通过规则、未关闭问题"),
]

CASCADE = [("banner", "旗区", "banner_name"), ("street", "街道（乡镇）", "street_name"), ("community", "社区", "community_name"),
           ("grid", "网格", "grid_name")]


def position(board: Dashboard) -> dict:
    """Superset's layout tree: header, grid, rows of charts (a row holds 12 columns)."""
    rows: list[list[c.Chart]] = [[]]
    for chart in board.charts:
        if sum(x.width for x in rows[-1]) + chart.width > 12:
            rows.append([])
        rows[-1].append(chart)
    tree = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": board.title}},
    }
    for i, row in enumerate(rows):
        row_id = f"ROW-{board.slug}-{i}"
        tree["GRID_ID"]["children"].append(row_id)
        tree[row_id] = {"type": "ROW", "id": row_id, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                        "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        for chart in row:
            chart_id = f"CHART-{chart.key}"
            tree[row_id]["children"].append(chart_id)
            tree[chart_id] = {"type": "CHART", "id": chart_id, "children": [], "parents": ["ROOT_ID", "GRID_ID", row_id],
                              "meta": {"width": chart.width, "height": chart.height, "uuid": uid("chart", chart.key),
                                       "sliceName": chart.title, "chartId": 0}}
    return tree


def native_filters(board: Dashboard) -> list[dict]:
    filters = []
    if board.area_filters:
        parent = None
        for key, name, column in CASCADE:
            fid = f"NATIVE_FILTER-{board.slug}-{key}"
            filters.append(_filter(fid, name, "filter_select", [{"datasetUuid": uid("dataset", d.AREAS.key), "column": {"name": column}}],
                                   {"enableEmptyFilter": False, "defaultToFirstItem": False, "multiSelect": True,
                                    "searchAllOptions": False, "inverseSelection": False},
                                   [parent] if parent else []))
            parent = fid
    filters.append(_filter(f"NATIVE_FILTER-{board.slug}-dates", "日期范围", "filter_time", [{}], {}, []))
    return filters


def _filter(fid, name, kind, targets, control_values, parents) -> dict:
    return {"id": fid, "name": name, "filterType": kind, "type": "NATIVE_FILTER", "targets": targets,
            "controlValues": control_values, "cascadeParentIds": parents, "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
            "scope": {"rootPath": ["ROOT_ID"], "excluded": []}, "description": "", "chartsInScope": [], "tabsInScope": []}


def metadata(board: Dashboard) -> dict:
    return {"native_filter_configuration": native_filters(board), "color_scheme": "supersetColors", "refresh_frequency": 0,
            "timed_refresh_immune_slices": [], "expanded_slices": {}, "label_colors": {}, "shared_label_colors": [],
            "color_scheme_domain": [], "cross_filters_enabled": False, "default_filters": "{}", "chart_configuration": {},
            "global_chart_configuration": {"scope": {"rootPath": ["ROOT_ID"], "excluded": []}, "chartsInScope": []}}
