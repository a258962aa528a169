"""Crash trials: SIGKILL `linli ingest` and `linli build` at random points, run again, compare.

Each trial runs the real command in a process group of its own and kills the whole group (the
Python process and, for a build, its dbt child) with SIGKILL after a random delay, as a machine
or an OOM killer would. Then:
- for ingest: the same command runs again to completion, and the lake must hold exactly what an
  uninterrupted run left (checksums of every raw and quarantine dataset and of the ledger), with
  no file of an uncommitted delivery and every delivery's rows matching its ledger row;
- for a build: while the build is dead, `current.duckdb` must still be the complete build it was
  before (readers never see half a build); the build then runs again and must give the same
  checksums for every table as the uninterrupted reference.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from bench.reliability.checksums import lake_checksums, lake_problems, store_checksums
from linli.warehouse import current

LINLI = [sys.executable, "-m", "linli.cli"]


@dataclass
class Trials:
    kind: str
    trials: int = 0
    killed: int = 0  # the kill landed before the command finished
    mid_work: int = 0  # ... and after the work had begun (some, not all, deliveries in the ledger; dbt started)
    survived: int = 0  # killed, re-run, identical to the reference
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.kind}: {self.trials} trials, {self.killed} killed mid-run ({self.mid_work} mid-work), "
                f"{self.survived} crashes survived, {len(self.problems)} problems")


def _files(d: Path) -> int:
    return sum(1 for p in d.rglob("*") if p.is_file()) if d.exists() else 0


def _run(args: list[str], kill_at: tuple[Path, int, float] | None = None) -> tuple[int, int]:
    """Run `args` in its own process group; with `kill_at` (directory, files, delay), SIGKILL the
    group `delay` seconds after the directory holds that many files.

    Kills are aimed by progress, not by the clock: on a shared machine a run's pace varies too
    much for a time to land mid-work. Returns (returncode, files in the directory at the end).
    """
    errors = tempfile.TemporaryFile()  # a file, not a pipe: a chatty run can never block on it
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
    if kill_at is None:
        proc.wait()
    while proc.poll() is None and kill_at is not None:
        if _files(kill_at[0]) >= kill_at[1]:
            time.sleep(kill_at[2])
            break
        time.sleep(0.02)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    else:
        # the command ended on its own: the group may still hold children; none should outlive it
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    errors.seek(0)
    err = errors.read().decode(errors="replace")
    errors.close()
    if kill_at is None and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[2:])} failed ({proc.returncode}): {err[-2000:]}")
    return proc.returncode, _files(kill_at[0]) if kill_at else 0


def ingest_trials(deliveries: Path, work: Path, n: int, seed: int = 1, log=print) -> Trials:
    """`n` SIGKILL trials of `linli ingest` against an uninterrupted reference run."""
    result = Trials("ingest")
    rng = random.Random(seed)
    ref_lake = work / "ref-lake"
    shutil.rmtree(ref_lake, ignore_errors=True)
    _run([*LINLI, "ingest", "--from", str(deliveries), "--lake", str(ref_lake)])
    reference = lake_checksums(ref_lake)
    total = _files(ref_lake / "ledger")
    for i in range(n):
        lake = work / f"lake-{i}"
        shutil.rmtree(lake, ignore_errors=True)
        args = [*LINLI, "ingest", "--from", str(deliveries), "--lake", str(lake)]
        kills, committed = 0, 0
        for _ in range(1 + (rng.random() < 0.3)):  # some trials crash the re-run too
            if committed >= total - 1:
                break
            # after a random number of deliveries committed, a moment into the next one
            code, committed = _run(args, (lake / "ledger", rng.randint(committed + 1, total - 1), rng.uniform(0, 0.3)))
            if code == -signal.SIGKILL:
                kills += 1
                result.killed += 1
                result.mid_work += 0 < committed < total
        _run(args)
        result.trials += 1
        got, problems = lake_checksums(lake), lake_problems(lake)
        if got != reference:
            problems.append(f"trial {i}: datasets differ from the uninterrupted run: "
                            f"{sorted(k for k in reference.keys() | got.keys() if reference.get(k) != got.get(k))[:5]}")
        result.problems += problems
        result.survived += kills if not problems else 0
        log(f"  ingest trial {i}: {kills} kill(s), {'identical' if not problems else problems[:2]}")
        shutil.rmtree(lake, ignore_errors=True)
    shutil.rmtree(ref_lake, ignore_errors=True)
    return result


def _differing(reference: dict, got: dict) -> list[str]:
    """Tables whose checksums differ, with (reference rows, rows)."""
    return [f"{t} {reference.get(t, (None,))[0]}/{got.get(t, (None,))[0]}" for t in sorted(reference.keys() | got.keys())
            if reference.get(t) != got.get(t)][:10]


def build_trials(lake: Path, reference_build: Path, work: Path, n: int, seed: int = 1, log=print) -> Trials:
    """`n` SIGKILL trials of an incremental `linli build` over a serving store whose current build is
    `reference_build` (a full build of `lake`); an uninterrupted incremental build must match it too."""
    result = Trials("build")
    rng = random.Random(seed)
    reference = store_checksums(reference_build)

    def fresh(name: str) -> Path:
        wh = work / name
        shutil.rmtree(wh, ignore_errors=True)
        (wh / "builds").mkdir(parents=True)
        shutil.copyfile(reference_build, wh / "builds" / "00000000T000000000000.duckdb")
        # Without its record of what it was built from, a build cannot tell that nothing changed
        # since: the next one runs every model (incrementally), which is the work the kills cut.
        con = duckdb.connect(str(wh / "builds" / "00000000T000000000000.duckdb"))
        con.execute("DROP TABLE build.built_project")
        con.close()
        from linli.warehouse import publish

        publish(wh, wh / "builds" / "00000000T000000000000.duckdb")
        return wh

    wh = fresh("wh-ref")
    args = lambda w: [*LINLI, "build", "--lake", str(lake), "--warehouse", str(w)]  # noqa: E731
    _run(args(wh))
    steps = _files(wh / "target" / "run")  # dbt writes a file there for each model and test it runs
    differ = _differing(reference, store_checksums(current(wh).resolve()))
    if differ:
        result.problems.append(f"an uninterrupted incremental build differs from the full build in {differ}")
    else:
        shutil.rmtree(wh, ignore_errors=True)
    for i in range(n):
        wh = fresh(f"wh-{i}")
        before = current(wh).resolve()
        code, _ = _run(args(wh), (wh / "target" / "run", rng.randint(1, steps - 1), rng.uniform(0, 0.5)))
        problems = []
        if code == -signal.SIGKILL:
            result.killed += 1
            result.mid_work += 0 < _files(wh / "target" / "run") < steps
            if current(wh).resolve() != before or store_checksums(current(wh).resolve()) != reference:
                problems.append(f"trial {i}: after the kill, current.duckdb is not the complete build it was")
        _run(args(wh))
        result.trials += 1
        differ = _differing(reference, store_checksums(current(wh).resolve()))
        if differ:
            problems.append(f"trial {i}: the re-run build differs from the uninterrupted one in {differ}")
        result.problems += problems
        result.survived += code == -signal.SIGKILL and not problems
        log(f"  build trial {i}: {'killed' if code == -signal.SIGKILL else 'finished before the kill'}, "
            f"{'identical' if not problems else problems}")
        if not problems:  # a failing trial's serving store is kept for a look
            shutil.rmtree(wh, ignore_errors=True)
    return result
