"""Fuzzed deliveries: the generator's files mutated, landed into a lake that already holds a city.

Every case takes one generator file of a source matched by a pattern (feeds, work orders,
registries) and applies one to three mutators: truncate, flip bytes, swap the encoding, drop or
add a column, insert a huge field, reorder or duplicate lines, CRLF endings, blank lines, an
empty or header-only file, a wrong extension, or the same bytes twice. The result is written
under a name of its own (so it never supersedes a delivery of the city) and landed by the real
`linli ingest` in a subprocess, a batch of cases at a time. Then:

- the process never dies (exit code 0 for every batch);
- every case's file is in the ledger, and either landed with rows read = landed + quarantined,
  every line number once across the raw and quarantine zones, and (for text) rows read equal to
  the file's own physical lines — or failed / duplicate with a reason;
- every file the lake held before is byte-identical afterwards, and every delivery that was
  current is still current.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb

from bench.reliability.checksums import lake_problems
from ingest.lake import Lake
from ingest.ledger import Ledger

FUZZED_PREFIXES = ("feeds/", "work_orders/", "registry/")
NEWLINES = re.compile(rb"\r\n|\r|\n")

Mutator = Callable[[random.Random, bytes, str], tuple[bytes, str]]  # (rng, content, suffix) → (content, suffix)


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines)


def truncate(rng, data, suffix):
    return data[: rng.randrange(0, max(1, len(data)))], suffix


def flip_bytes(rng, data, suffix):
    b = bytearray(data)
    for _ in range(rng.randint(1, 20)):
        if b:
            b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b), suffix


def swap_encoding(rng, data, suffix):
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data[::-1], suffix  # not text: reversed bytes are as wrong an encoding as any
    target = rng.choice(["gb18030", "utf-8-sig", "utf-16", "utf-16-le", "big5", "latin-1-mojibake", "utf-32"])
    if target == "latin-1-mojibake":  # UTF-8 bytes read as Latin-1 and written back as UTF-8
        return text.encode("utf-8").decode("latin-1").encode("utf-8"), suffix
    return text.encode(target, errors="replace"), suffix


def _csv_edit(data: bytes, edit: Callable[[list[bytes]], list[bytes]]) -> bytes:
    return _join([_join_fields(edit(line.split(b","))) if line else line for line in _lines(data)])


def _join_fields(fields: list[bytes]) -> bytes:
    return b",".join(fields)


def drop_column(rng, data, suffix):
    if suffix == ".jsonl":
        here_and_there = rng.random() < 0.3  # a field missing from rows at random, not one column from all
        column, out = None, []
        for line in _lines(data):
            try:
                obj = json.loads(line)
            except ValueError:
                out.append(line)
                continue
            if isinstance(obj, dict) and obj:
                if here_and_there or column not in obj:
                    column = rng.choice(sorted(obj))
                obj.pop(column)
            out.append(json.dumps(obj, ensure_ascii=False).encode())
        return _join(out), suffix
    width = len(_lines(data)[0].split(b","))
    i = rng.randrange(width) if width else 0
    return _csv_edit(data, lambda f: f[:i] + f[i + 1:]), suffix


def add_column(rng, data, suffix):
    if suffix == ".jsonl":
        return _join([line[:-1] + b', "extra_field": "x"}' if line.endswith(b"}") else line for line in _lines(data)]), suffix
    lines = _lines(data)
    every = rng.random() < 0.5  # the header too, or only some rows (extra fields)
    out = [lines[0] + b",extra_col" if every else lines[0]]
    out += [line + b",x" if line and (every or rng.random() < 0.2) else line for line in lines[1:]]
    return _join(out), suffix


def huge_field(rng, data, suffix):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    size = (17 << 20) if rng.random() < 0.1 else rng.choice([1 << 10, 1 << 16, 1 << 20, 4 << 20])
    lines[i] = lines[i] + (b"," if suffix != ".jsonl" else b"") + b"A" * size
    return _join(lines), suffix


def reorder_lines(rng, data, suffix):
    lines = _lines(data)
    head, body = (lines[:1], lines[1:]) if suffix == ".csv" and rng.random() < 0.8 else ([], lines)
    rng.shuffle(body)
    return _join(head + body), suffix


def duplicate_lines(rng, data, suffix):
    lines = _lines(data)
    picks = [rng.randrange(1, len(lines)) for _ in range(rng.randint(1, 10))] if len(lines) > 1 else []
    return _join(lines + [lines[p] for p in picks]), suffix


def crlf(rng, data, suffix):
    return data.replace(b"\n", b"\r\n"), suffix


def blank_lines(rng, data, suffix):
    lines = _lines(data)
    for _ in range(rng.randint(1, 5)):
        lines.insert(rng.randrange(len(lines) + 1), b"" if rng.random() < 0.7 else b"   ")
    return _join(lines), suffix


def empty_file(rng, data, suffix):
    return (b"" if rng.random() < 0.5 else _lines(data)[0] + b"\n"), suffix


def wrong_extension(rng, data, suffix):
    return data, rng.choice([s for s in (".csv", ".jsonl", ".xlsx", ".txt", ".json", ".geojson", ".pdf", "") if s != suffix])


MUTATORS: dict[str, Mutator] = {f.__name__: f for f in (
    truncate, flip_bytes, swap_encoding, drop_column, add_column, huge_field, reorder_lines, duplicate_lines, crlf,
    blank_lines, empty_file, wrong_extension)}
TEXT_ONLY = {"drop_column", "add_column", "huge_field", "reorder_lines", "duplicate_lines", "crlf", "blank_lines", "empty_file"}
DUPLICATE_FILE = "duplicate_file"  # not a byte mutator: the same bytes under two names


@dataclass
class Case:
    n: int
    base: str
    mutators: list[str]
    files: list[str]  # names under the deliveries directory (two for a duplicated file)
    expected_rows: dict[str, int | None] = field(default_factory=dict)  # physical data lines, for text files


@dataclass
class FuzzResult:
    cases: int = 0
    files: int = 0
    landed: int = 0
    failed: int = 0
    duplicate: int = 0
    rows_read: int = 0
    rows_unaccounted: int = 0
    process_deaths: int = 0
    lake_changes: int = 0
    problems: list[str] = field(default_factory=list)
    by_mutator: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (f"fuzz: {self.cases} cases ({self.files} files: {self.landed} landed, {self.failed} failed with a reason, "
                f"{self.duplicate} duplicate), {self.rows_read:,} rows read, {self.rows_unaccounted} rows unaccounted, "
                f"{self.process_deaths} process deaths, {self.lake_changes} changes to what the lake held, "
                f"{len(self.problems)} problems")


def _physical_rows(data: bytes, suffix: str) -> int | None:
    """Data lines of a text delivery as the file itself has them (universal newlines), or None
    where the count is not the file's own (spreadsheets, GeoJSON, text no accepted encoding reads)."""
    if suffix not in (".csv", ".jsonl", ".json") or not data or b"\x00" in data[: 1 << 20] or data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    lines = NEWLINES.split(data.removeprefix(b"\xef\xbb\xbf"))
    if lines and lines[-1] == b"":
        lines.pop()
    return max(len(lines) - (suffix == ".csv"), 0)


def make_cases(deliveries: Path, out: Path, n: int, seed: int, start: int = 0) -> list[Case]:
    """Write cases start … start+n-1 under `out` (a deliveries directory of their own)."""
    rng = random.Random(seed * 1_000_003 + start)
    bases = sorted(p.relative_to(deliveries).as_posix() for p in deliveries.rglob("*")
                   if p.is_file() and p.relative_to(deliveries).as_posix().startswith(FUZZED_PREFIXES))
    cases = []
    for i in range(start, start + n):
        base = rng.choice(bases)
        data, suffix = (deliveries / base).read_bytes(), Path(base).suffix
        kinds = [DUPLICATE_FILE] if rng.random() < 0.05 else rng.sample(sorted(MUTATORS), rng.choice([1, 1, 2, 3]))
        if suffix == ".xlsx":
            kinds = [k for k in kinds if k not in TEXT_ONLY] or ["flip_bytes"]
        for k in kinds:
            if k != DUPLICATE_FILE:
                data, suffix = MUTATORS[k](rng, data, suffix)
        stem = Path(base).with_suffix("").as_posix()
        names = [f"{stem}_fuzz{i:05d}{suffix}"] + ([f"{stem}_fuzz{i:05d}_again{suffix}"] if k == DUPLICATE_FILE else [])
        case = Case(i, base, kinds, names)
        for name in names:
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(data)
            case.expected_rows[name] = _physical_rows(data, suffix)
        cases.append(case)
    return cases


def _snapshot(lake: Path) -> dict[str, str]:
    return {p.relative_to(lake).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for zone in ("raw", "quarantine", "ledger") for p in sorted((lake / zone).rglob("*")) if p.is_file()}


def _line_accounting(lake: Path, ids: list[str]) -> dict[str, tuple[int, int]]:
    """delivery → (rows in raw + quarantine, distinct line numbers among them)."""
    con = duckdb.connect()
    raw = [str(p) for p in (lake / "raw").rglob("*.parquet") if p.stem.split("_")[0] in ids]
    quarantine = [str(p) for p in (lake / "quarantine").rglob("*.parquet") if p.stem in ids]
    parts = []
    if raw:
        parts.append(f"SELECT _delivery_id AS d, _line AS line FROM read_parquet({raw}, union_by_name = true)")
    if quarantine:
        parts.append(f"SELECT _delivery_id AS d, line FROM read_parquet({quarantine}, union_by_name = true)")
    if not parts:
        return {}
    rows = con.execute(f"SELECT d, count(*), count(DISTINCT line) FROM ({' UNION ALL '.join(parts)}) GROUP BY d").fetchall()
    return {d: (n, distinct) for d, n, distinct in rows}


def run(deliveries: Path, lake: Path, work: Path, cases: int, seed: int = 1, batch: int = 50, log=print) -> FuzzResult:
    """Fuzz `cases` cases into `lake` (which already holds the city of `deliveries`)."""
    result = FuzzResult()
    before = _snapshot(lake)
    current_before = set(Ledger(Lake(lake)).current)
    for start in range(0, cases, batch):
        batch_dir = work / f"batch-{start:05d}"
        shutil.rmtree(batch_dir, ignore_errors=True)
        made = make_cases(deliveries, batch_dir, min(batch, cases - start), seed, start)
        proc = subprocess.run([sys.executable, "-m", "linli.cli", "ingest", "--from", str(batch_dir), "--lake", str(lake)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            result.process_deaths += 1
            result.problems.append(f"batch {start}: ingest exited {proc.returncode}: {proc.stderr[-1500:]}")
        latest = Ledger(Lake(lake)).latest
        ids = [latest[f]["delivery_id"] for c in made for f in c.files if f in latest]
        lines = _line_accounting(lake, ids)
        for c in made:
            result.cases += 1
            for k in c.mutators:
                result.by_mutator[k] = result.by_mutator.get(k, 0) + 1
            for f in c.files:
                result.files += 1
                row = latest.get(f)
                if row is None:
                    result.problems.append(f"case {c.n} ({c.mutators} of {c.base}): {f} is not in the ledger")
                    result.rows_unaccounted += c.expected_rows[f] or 0
                    continue
                status = row["status"]
                if status in ("failed", "duplicate"):
                    result.failed += status == "failed"
                    result.duplicate += status == "duplicate"
                    if not row["error"]:
                        result.problems.append(f"case {c.n}: {f} {status} without a reason")
                    continue
                result.landed += 1
                read, landed, quarantined = row["rows_read"], row["rows_landed"], row["rows_quarantined"]
                result.rows_read += read
                stored, distinct = lines.get(row["delivery_id"], (0, 0))
                missing = abs(read - (landed + quarantined)) + abs(read - stored) + (stored - distinct)
                expected = c.expected_rows[f]
                if expected is not None and row["encoding"] in ("utf-8", "utf-8-sig", "gb18030"):
                    missing += abs(expected - read)
                if missing:
                    result.rows_unaccounted += missing
                    result.problems.append(f"case {c.n} ({c.mutators} of {c.base}): file lines {expected}, read {read}, "
                                           f"landed {landed} + quarantined {quarantined}, in the lake {stored} ({distinct} distinct lines)")
        shutil.rmtree(batch_dir, ignore_errors=True)
        log(f"  fuzz: {result.cases}/{cases} cases, {result.rows_unaccounted} rows unaccounted, {len(result.problems)} problems")
    after = _snapshot(lake)
    changed = [f for f, h in before.items() if after.get(f) != h]
    result.lake_changes = len(changed) + len(current_before - set(Ledger(Lake(lake)).current))
    result.problems += [f"{f}: changed or removed" for f in changed[:10]]
    result.problems += lake_problems(lake)
    return result
