"""The delivery formats of Ordos' source systems, and the defects each one is known to carry."""

from __future__ import annotations

from datetime import datetime, timedelta

from linli.citygen.deliveries import Source


def _same(row, rng, i):
    return row


def _rekey(key: str):
    """A defect row is a new record: give it a key of its own so it is not also a duplicate."""

    def apply(row, i):
        row[key] = f"{row[key]}X{i}"
        return row

    return apply


def _set(key: str, column: str, value):
    rekey = _rekey(key) if key else (lambda r, i: r)

    def defect(row, rng, i):
        row = rekey(dict(row), i)
        row[column] = value(row[column], rng) if callable(value) else value
        return row

    return defect


def _impossible_time(text: str, rng) -> str:
    """Keep the vendor's layout but name a day and hour that do not exist."""
    if text and text[:4].isdigit() and len(text) >= 19:
        sep = text[4]
        return f"{text[:4]}{sep}02{sep}30{text[10]}25{text[13:]}"
    return "2024-02-30 25:00:00"


def _unknown_device(prefix: str):
    def value(_, rng):
        return f"{prefix}9{int(rng.integers(10**13, 10**14))}"

    return value


def _bad_check(value: str, rng) -> str:
    if not value or len(value) != 18:
        return "15060219800101123"
    valid = "0123456789X"
    wrong = [c for c in valid if c != value[17]]
    return value[:17] + wrong[int(rng.integers(0, len(wrong)))]


def _bad_credit(value: str, rng) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    wrong = [c for c in alphabet if c != value[17]]
    return value[:17] + wrong[int(rng.integers(0, len(wrong)))]


def _backwards(row, rng, i):
    row = dict(row)
    drop = float(rng.uniform(1, 20)) * (1000 if row["unit"] == "L" else 1)
    row["reading"] = f"{max(0.0, float(row['reading']) - drop):.3f}"
    # One second after the reading it copies, so it follows that reading (and is below it) and
    # cannot collide with a clean key; readings are minutes apart.
    t = datetime.strptime(row["read_time"], "%Y-%m-%d %H:%M:%S") + timedelta(seconds=1)
    row["read_time"] = t.strftime("%Y-%m-%d %H:%M:%S")
    return row


def _clip_shape(row, rng, i):
    """Rows whose shape is damaged keep their values; LINE_DAMAGE cuts or pads the line."""
    return dict(row)


DOOR = Source(
    "door_access",
    ["event_id", "device_id", "event_time", "id_no", "open_method", "direction", "result", "face_image"],
    "event_id",
)
DOOR.defects = {
    "duplicate_row": _same,
    "impossible_date": _set("event_id", "event_time", _impossible_time),
    "wrong_type": _set("event_id", "direction", "3"),
    "truncated_row": _set("event_id", "result", "success"),
    "unknown_device": _set("event_id", "device_id", _unknown_device("DR")),
}

CAMERA = Source(
    "camera_alarm", ["alarm_id", "camera_id", "alarm_time", "alarm_type", "confidence", "face_image"], "alarm_id"
)
CAMERA.defects = {
    "duplicate_row": _same,
    "wrong_type": _set("alarm_id", "confidence", "high"),
    "truncated_row": _set("alarm_id", "alarm_type", lambda v, rng: v),
    "unknown_device": _set("alarm_id", "camera_id", _unknown_device("CM")),
}

GATE = Source(
    "barrier_gate", ["pass_id", "device_id", "pass_time", "plate", "direction", "vehicle_type", "plate_color"], "pass_id"
)
GATE.defects = {
    "duplicate_row": _same,
    "impossible_date": _set("pass_id", "pass_time", _impossible_time),
    "extra_columns": _set("pass_id", "plate_color", lambda v, rng: v),
    "missing_columns": _set("pass_id", "plate_color", lambda v, rng: v),
    "unknown_device": _set("pass_id", "device_id", _unknown_device("BG")),
}

LOCKER = Source("locker", ["txn_id", "device_id", "txn_time", "txn_type", "amount", "phone"], "txn_id")
LOCKER.defects = {
    "duplicate_row": _same,
    "wrong_type": _set("txn_id", "amount", "十元"),
    "missing_columns": _set("txn_id", "phone", lambda v, rng: v),
    "unknown_device": _set("txn_id", "device_id", _unknown_device("LK")),
}

PATROL = Source("patrol", ["checkin_id", "point_id", "guard_id", "checkin_time", "round_no"], "checkin_id")
PATROL.defects = {
    "duplicate_row": _same,
    "impossible_date": _set("checkin_id", "checkin_time", _impossible_time),
    "extra_columns": _set("checkin_id", "round_no", lambda v, rng: v),
    "unknown_device": _set("checkin_id", "point_id", _unknown_device("PP")),
}

METER = Source("meter", ["meter_id", "read_time", "reading", "unit"], "meter_id|read_time")
METER.defects = {
    "duplicate_row": _same,
    "readings_backwards": _backwards,
    "wrong_type": lambda row, rng, i: {**row, "reading": "ERR", "read_time": row["read_time"][:17] + "30"},
    "missing_columns": lambda row, rng, i: {**row, "read_time": row["read_time"][:17] + "31"},
    "unknown_device": _set(None, "meter_id", _unknown_device("WM")),
}

WORK_ORDER = Source(
    "work_order",
    [
        "工单编号", "事件类别", "事件来源", "所属社区", "所属网格", "上报人电话", "事件描述", "上报时间", "受理时间",
        "派发时间", "处置时间", "办结时间", "评价时间", "满意度", "处置人员", "工单状态",
    ],
    "工单编号",
)
WORK_ORDER.defects = {
    "duplicate_row": _same,
    "impossible_date": _set("工单编号", "上报时间", _impossible_time),
    "wrong_type": _set("工单编号", "满意度", "很满意"),
    "extra_columns": _set("工单编号", "工单状态", lambda v, rng: v),
}

REGISTRY_COLUMNS = [
    "序号", "姓名", "性别", "证件类型", "公民身份号码", "出生日期", "民族", "人口类型", "户号", "与户主关系",
    "所属网格", "房屋编码", "现住址", "联系电话", "特殊人群", "人户一致", "迁入日期", "国籍",
]
REGISTRY = Source("registry", REGISTRY_COLUMNS, "序号")
REGISTRY.defects = {
    "duplicate_row": _same,
    "bad_id_check_digit": lambda row, rng, i: {**row, "公民身份号码": _bad_check(row["公民身份号码"], rng)}
    if row["证件类型"] == "居民身份证"
    else None,
    "impossible_date": lambda row, rng, i: {**row, "出生日期": f"{row['出生日期'][:4]}-02-30"},
}
REGISTRY_CSV = Source("registry", REGISTRY_COLUMNS, "序号", dict(REGISTRY.defects))
REGISTRY_CSV.defects |= {"extra_columns": _clip_shape, "missing_columns": _clip_shape}

ORGANIZATION = Source(
    "organization", ["统一社会信用代码", "机构名称", "机构类型", "所属社区", "法定代表人", "联系电话", "成立日期"], None
)
ORGANIZATION.defects = {
    "bad_credit_code": lambda row, rng, i: {**row, "统一社会信用代码": _bad_credit(row["统一社会信用代码"], rng)}
}
# Header synonyms a registry export may use for the same field (各社区导出模板不一).
REGISTRY_HEADER_VARIANTS = {
    "xlsx": {},
    "gbk": {"公民身份号码": "身份证号", "联系电话": "手机号码"},
    "utf-8-sig": {"公民身份号码": "身份证号码", "现住址": "现居住地址"},
}
