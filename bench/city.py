"""A generated city, landed and built once, cached under bench/out for the benchmarks that read it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from linli.warehouse import current

OUT = Path(__file__).resolve().parent / "out"


def prepared_city(residents: int, days: int, seed: int = 13) -> tuple[Path, Path]:
    """(lake, warehouse) of a `residents` city over `days` days."""
    tag = OUT / "cities" / f"r{residents}-d{days}-s{seed}"
    lake, wh = tag / "lake", tag / "warehouse"
    if current(wh).exists():
        return lake, wh
    shutil.rmtree(tag, ignore_errors=True)
    cli = [sys.executable, "-m", "linli.cli"]
    quiet = {"check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([*cli, "generate", "--out", str(tag / "city"), "--residents", str(residents), "--days", str(days), "--seed", str(seed)], **quiet)
    subprocess.run([*cli, "ingest", "--from", str(tag / "city" / "deliveries"), "--lake", str(lake)], **quiet)
    subprocess.run([*cli, "build", "--lake", str(lake), "--warehouse", str(wh), "--full-refresh"], **quiet)
    return lake, wh
