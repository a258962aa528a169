"""Tampering with the audit log at random: every edit, deletion, insertion, reordering or cut is detected."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from serving.api.audit import verify

KINDS = ("edit", "delete", "insert", "reorder", "truncate")


@dataclass
class TamperResult:
    trials: int = 0
    detected: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"audit tampering: {self.detected}/{self.trials} detected ({', '.join(f'{k} {n}' for k, n in self.by_kind.items())})"


def _edit(rng: random.Random, line: str) -> str:
    entry = json.loads(line)
    field_ = rng.choice(["rows", "status", "key_id", "endpoint", "time", "params"])
    entry[field_] = {"rows": lambda v: v + 1, "status": lambda v: 200 if v != 200 else 403, "key_id": lambda v: "someoneelse",
                     "endpoint": lambda v: v + "x", "time": lambda v: "2000-01-01T00:00:00+00:00", "params": lambda v: {**v, "area": "1506"}}[field_](entry[field_])
    return json.dumps(entry, ensure_ascii=False)


def tamper_trials(log: Path, work: Path, n: int, seed: int = 1) -> TamperResult:
    """`n` tamperings of a copy of an intact log (and its head), each checked by `verify`."""
    rng, result = random.Random(seed), TamperResult()
    pristine = Path(log).read_text().splitlines()
    assert len(pristine) >= 3 and verify(log) == [], "tampering trials need an intact log of a few entries"
    work.mkdir(parents=True, exist_ok=True)
    copy = work / "audit.jsonl"
    shutil.copy(Path(log).with_suffix(".head"), copy.with_suffix(".head"))
    for t in range(n):
        kind = KINDS[t % len(KINDS)]
        lines = list(pristine)
        i = rng.randrange(len(lines))
        if kind == "edit":
            lines[i] = _edit(rng, lines[i])
        elif kind == "delete":
            del lines[i]
        elif kind == "insert":
            lines.insert(rng.randrange(len(lines) + 1), lines[rng.randrange(len(lines))])
        elif kind == "reorder":
            j = rng.choice([k for k in range(len(lines)) if k != i])
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines = lines[: rng.randrange(len(lines))]
        copy.write_text("\n".join(lines) + ("\n" if lines else ""))
        result.trials += 1
        result.by_kind[kind] = result.by_kind.get(kind, 0) + 1
        if verify(copy):
            result.detected += 1
        else:
            result.missed.append(f"{kind} at {i}")
    return result
