"""Format rules as DuckDB SQL macros, registered on every connection that validates data.

The national-standard rules are built from the constants in `linli.standards`, so ingest's
validator and the quality suites (which run these same macros over their batches) apply one
definition.
"""

from __future__ import annotations

import re

import duckdb

from linli.standards import (
    DIVISION_12_PATTERN, GB11643_CHECK, GB11643_PATTERN, GB11643_WEIGHTS, GB32100_ALPHABET, GB32100_PATTERN,
    GB32100_WEIGHTS, MOBILE_PATTERN, PLATE_PATTERN,
)


def _weighted_sum(weights, digit_expr: str) -> str:
    return " + ".join(f"{int(w)} * {digit_expr.format(i=i + 1)}" for i, w in enumerate(weights))


_GB11643_SUM = _weighted_sum(GB11643_WEIGHTS, "TRY_CAST(substr(x, {i}, 1) AS INTEGER)")
_GB32100_SUM = _weighted_sum(GB32100_WEIGHTS, "(instr('" + GB32100_ALPHABET + "', substr(x, {i}, 1)) - 1)")

MACROS = {
    # GB 11643: form, then the ISO 7064 MOD 11-2 check character.
    "gb11643_valid": f"""(x) AS coalesce(regexp_full_match(x, '{GB11643_PATTERN[1:-1]}')
        AND substr(x, 18, 1) = substr('{''.join(GB11643_CHECK)}', (({_GB11643_SUM}) % 11) + 1, 1), false)""",
    # GB 32100: form, then the MOD 31 check character.
    "gb32100_valid": f"""(x) AS coalesce(regexp_full_match(x, '{GB32100_PATTERN[1:-1]}')
        AND substr(x, 18, 1) = substr('{GB32100_ALPHABET}', ((31 - ({_GB32100_SUM}) % 31) % 31) + 1, 1), false)""",
    "mobile_valid": f"(x) AS coalesce(regexp_full_match(x, '{MOBILE_PATTERN[1:-1]}'), false)",
    "plate_valid": f"(x) AS coalesce(regexp_full_match(x, '{PLATE_PATTERN[1:-1]}'), false)",
    "division12_valid": f"(x) AS coalesce(regexp_full_match(x, '{DIVISION_12_PATTERN[1:-1]}'), false)",
    # Masked display forms: enough to recognise one's own record, not enough to identify anyone.
    "mask_id": "(x) AS CASE WHEN length(x) > 10 THEN left(x, 6) || repeat('*', length(x) - 10) || right(x, 4) ELSE repeat('*', length(x)) END",
    "mask_phone": "(x) AS CASE WHEN length(x) = 11 THEN left(x, 3) || '****' || right(x, 4) ELSE repeat('*', length(x)) END",
    "mask_name": "(x) AS left(x, 1) || repeat('*', greatest(length(x) - 1, 1))",
    "mask_plate": "(x) AS left(x, 2) || repeat('*', greatest(length(x) - 4, 1)) || right(x, 2)",
}

# Shanghai has kept +08:00, without summer time, since 1992: from then on a local time is read, and
# an instant's Beijing date found, at that fixed offset, without the zone's calendar (its cost is
# several times a cast's).
FIXED_OFFSET_SINCE = 1992

# Identifiers masked wherever they stand in text (a line too broken to split, free text), each
# keeping enough to recognise one's own record, in the ways people write them: an ID number or a
# mobile number broken up by spaces, dashes, dots or slashes anywhere, a mobile number with +86 or
# its first three digits in brackets, a plate with a dot, a dash or spaces and a 学/警/挂 ending, a
# number right after a label (ID…, Tel…). Digits, letters and spaces in full width are read as
# ASCII, and characters of no width are dropped, wherever something is masked. An ID number's run
# of digits is masked whole however long it runs on, so nothing run together with one stays
# readable, and a cut one from fourteen digits (its region and birth date); a mobile number is
# eleven digits standing alone, so a longer code (150602001001…) is not taken for one. A device
# code (DR150602…) may come out masked, which costs a reader nothing. Python's `re` and DuckDB's
# RE2 read these patterns alike.
_WIDE_DIGITS, _WIDE_MARKS = "０１２３４５６７８９", "＋－．／（）\u3000\u00a0"
_WIDE_LETTERS = "".join(chr(0xFF21 + i) + chr(0xFF41 + i) for i in range(26))
FULL_WIDTH = _WIDE_DIGITS + _WIDE_MARKS + _WIDE_LETTERS
ASCII = "0123456789" + "+-./()  " + "".join(chr(0x41 + i) + chr(0x61 + i) for i in range(26))
NO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
_SEP = "[ ./-]{0,2}"  # what people put between digits
_PLATE_SEP = "[ ./·・•-]{0,2}"
_PROVINCE_CHARS = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# The first two digits of a GB/T 2260 division code: the provinces
_PROVINCE = "(?:" + "|".join(f"{a}{_SEP}[{b}]" for a, b in (("1", "1-5"), ("2", "1-3"), ("3", "1-7"), ("4", "1-6"), ("5", "0-4"),
                                                          ("6", "1-5"), ("7", "1"), ("8", "12"))) + ")"
_MOBILE = (rf"(^|[^0-9])(?:(?:\+?86|0086){_SEP})?\(?(1[3-9][0-9])\)?(?:{_SEP}[0-9]){{4}}((?:{_SEP}[0-9]){{4}})([^0-9]|$)",
           r"\1\2****\3\4")
IDENTIFIER_MASKS = (
    # plates first, so that a plate's digits are never read as the start of a number after it
    (rf"([{_PROVINCE_CHARS}]){_PLATE_SEP}([A-Za-z])(?:{_PLATE_SEP}[A-Za-z0-9]){{2,4}}{_PLATE_SEP}([A-Za-z0-9]{{2}}|[A-Za-z0-9][学警挂领使港澳])",
     r"\1\2***\3"),
    # ID numbers, 15 to 18 characters, and cut ones from 14 digits, from a province's code on (so
    # that two dates in a row, 2024-05-01 2024-05-03, are not taken for one)
    (rf"(^|[^0-9])({_PROVINCE}(?:{_SEP}[0-9]){{4}})(?:{_SEP}[0-9]){{4,}}((?:{_SEP}[0-9]){{3}}{_SEP}[0-9Xx])", r"\1\2********\3"),
    # mobile numbers, twice: a match takes the character after it, which may stand before the next
    _MOBILE, _MOBILE,
)
# In text too broken to tell its fields apart, any run of Han characters (Extension A too) or of
# Mongolian script may be a name: each keeps its first character.
_NAME_CHARS = "[\u3400-\u4dbf\u4e00-\u9fff\u1820-\u18af]"
NAME_MASK = (f"({_NAME_CHARS}){_NAME_CHARS}+", r"\1**")


_AS_ASCII = f"translate(x, '{FULL_WIDTH}{NO_WIDTH}', '{ASCII}')"  # characters past the end of the second list are dropped
# Whether text may hold something the masks take, tested on the text as it is: eleven digits or
# more with nothing but separators between them, or a province's character before a letter. The
# masks cost about twenty times as much, and most free text (an address, a name of a company)
# holds neither: it is left as it was, full-width brackets and all.
_GAP = f" ./()\\-{_WIDE_MARKS}{NO_WIDTH}"
_MAY_HOLD = (f"[0-9{_WIDE_DIGITS}][0-9{_WIDE_DIGITS}{_GAP}]{{10,}}",
             f"[{_PROVINCE_CHARS}][{_GAP}·・•]{{0,8}}[A-Za-z{_WIDE_LETTERS}]")


def _masking(x: str, masks) -> str:
    for pattern, replacement in masks:
        x = f"regexp_replace({x}, '{pattern}', '{replacement}', 'g')"
    return x


def scrub_ids(value: str) -> str:
    """Text with its identifiers masked as the `scrub_ids` macro masks them."""
    if not any(re.search(p, value) for p in _MAY_HOLD):
        return value
    value = value.translate(str.maketrans(FULL_WIDTH, ASCII, NO_WIDTH))
    for pattern, replacement in IDENTIFIER_MASKS:
        value = re.sub(pattern, replacement, value)
    return value


def scrub_text(value: str) -> str:
    """A broken line (or a header cell that may be one) masked as the `scrub_text` macro masks it."""
    return re.sub(*NAME_MASK, scrub_ids(value))


# Parsing and scrubbing used while landing: any vendor's time layout into one instant, dates,
# yes/no, and identifiers masked inside text.
MACROS |= {
    "scrub_ids": f"""(x) AS CASE WHEN {' OR '.join(f"regexp_matches(x, '{p}')" for p in _MAY_HOLD)}
        THEN {_masking(_AS_ASCII, IDENTIFIER_MASKS)} ELSE x END""",
    "scrub_text": f"(x) AS {_masking('scrub_ids(x)', (NAME_MASK,))}",
    # A line too broken to split, as quarantine keeps it: masked before it is cut, so that a cut
    # leaves no identifier too short for its pattern. A long run of base64 is an image (a face
    # snapshot cut off with its line), and JSON's \\uXXXX escapes may spell a name: neither is kept.
    # Nor is a run of eight digits or more that no pattern took: part of an ID number whose
    # quoted field a line break cut in two, the other part on the next line.
    "kept_line": r"""(x) AS left(regexp_replace(scrub_text(regexp_replace(regexp_replace(x,
        '[A-Za-z0-9+/]{64,}={0,2}', '<base64>', 'g'), '(\\u[0-9A-Fa-f]{4})(\\u[0-9A-Fa-f]{4})+', '\1**', 'g')),
        '[0-9]{8,}', '********', 'g'), 2000)""",
    # A JSON document kept by the names of its fields, never its values: a value may be an
    # identifier no pattern recognises (a name in Latin letters).
    "field_names": "(x) AS scrub_text('fields: ' || array_to_string(json_keys(x), ', '))",
    # ISO text first: most feeds send it, and a cast is far cheaper than a pattern (no cast reads 13 digits)
    "parse_time": rf"""(x) AS coalesce(
        CASE WHEN length(x) = 19 AND x >= '{FIXED_OFFSET_SINCE}' THEN try_cast(x || '+08:00' AS TIMESTAMPTZ) END,
        try_cast(x AS TIMESTAMPTZ),
        CASE WHEN regexp_full_match(x, '[0-9]{{13}}') THEN to_timestamp(x::BIGINT / 1000) END,
        timezone('Asia/Shanghai', try_strptime(x, '%Y/%m/%d %H:%M:%S')))""",
    "parse_date": r"""(x) AS coalesce(try_strptime(x, '%Y-%m-%d'), try_strptime(x, '%Y/%m/%d'), try_strptime(x, '%Y%m%d'))::DATE""",
    "shanghai_date": rf"""(t) AS CASE WHEN t >= TIMESTAMPTZ '{FIXED_OFFSET_SINCE}-01-01 00:00:00+08:00'
        THEN CAST(make_timestamp(epoch_us(t) + 28800000000) AS DATE) ELSE CAST(timezone('Asia/Shanghai', t) AS DATE) END""",
    # trim() copies every value; only a value that may have a space to strip at either end goes
    # through it (an ASCII value ends in no other space character trim() removes).
    "trimmed": r"""(x) AS CASE WHEN starts_with(x, ' ') OR ends_with(x, ' ') OR strlen(x) <> length(x) THEN trim(x) ELSE x END""",
    # A CSV line none of whose fields can start or end with a space (nor hold a quoted field).
    "plain_line": r"""(x) AS strlen(x) = length(x) AND NOT (starts_with(x, ' ') OR ends_with(x, ' ')
        OR contains(x, ' ,') OR contains(x, ', ') OR contains(x, '"'))""",
    "parse_bool": r"""(x) AS CASE WHEN lower(x) IN ('true', '1', '是', 'yes', 'y') THEN true
        WHEN lower(x) IN ('false', '0', '否', 'no', 'n') THEN false END""",
}

# How a personal identifier is written before it is checked, hashed and masked, so one person gets
# one key however a clerk typed it: an ID number's check character in either case, a mobile
# number with spaces, dashes or the country code (+86 176 0662 2289).
NORMALISE = {
    "id_number": "upper(x)",
    "mobile": r"regexp_replace(regexp_replace(x, '[ \-]', '', 'g'), '^(\+86|0086|86)(1[3-9][0-9]{9})$', '\2')",
}

# Format rules: SQL condition on a value `x` (never null here) that must hold.
FORMATS = {
    "id_number": "gb11643_valid(x) OR regexp_full_match(x, '[A-Z][0-9]{8}')",  # resident ID, or a passport
    "mobile": "mobile_valid(x)",
    "plate": "plate_valid(x)",
    "credit_code": "gb32100_valid(x)",
    "division12": "division12_valid(x)",
    "grid": "regexp_full_match(x, '15[0-9]{13}')",
    "house": "regexp_full_match(x, '15[0-9]{10}B[0-9]{9}')",
    "unit_interval": "TRY_CAST(x AS DOUBLE) BETWEEN 0 AND 1",
    "non_negative": "TRY_CAST(x AS DOUBLE) >= 0",
    "satisfaction": "TRY_CAST(x AS INTEGER) BETWEEN 1 AND 5",
    "longitude": "TRY_CAST(x AS DOUBLE) BETWEEN 73 AND 136",
    "latitude": "TRY_CAST(x AS DOUBLE) BETWEEN 3 AND 54",
    # a code a clerk types (a household number): an ID or mobile number in its place is refused, not landed;
    # also checked on a row number as the lake holds it, an integer
    "no_identifier": "scrub_ids(x::VARCHAR) = x::VARCHAR",
}


def register(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    for name, body in MACROS.items():
        con.execute(f"CREATE OR REPLACE MACRO {name}{body}")
    for name, condition in FORMATS.items():
        con.execute(f"CREATE OR REPLACE MACRO format_{name}(x) AS coalesce({condition}, false)")
        con.execute(f"CREATE OR REPLACE MACRO normalise_{name}(x) AS {NORMALISE.get(name, 'x')}")
    return con


def format_check(rule: str, column_sql: str) -> str:
    """SQL that is true where the column satisfies the named format rule."""
    return f"format_{rule}({column_sql})"
