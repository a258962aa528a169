"""A generated city, landed and built once, cached under bench/out for the benchmarks that read it.

The cache is keyed by what made it (the generator, ingest and the dbt project): a city made by
other code is made again rather than measured as if it were current.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from linli.warehouse import current, project_digest

OUT = Path(__file__).resolve().parent / "out"
ROOT = OUT.parent.parent


def code_digest() -> str:
    """A short digest of the code a prepared city depends on."""
    digest = hashlib.sha256(project_digest().encode())
    for package in ("linli/citygen", "ingest"):
        for f in sorted((ROOT / package).rglob("*.py")):
            digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


def prepared_city(residents: int, days: int, seed: int = 13) -> tuple[Path, Path]:
    """(lake, warehouse) of a `residents` city over `days` days."""
    name = f"r{residents}-d{days}-s{seed}"
    tag = OUT / "cities" / f"{name}-{code_digest()}"
    lake, wh = tag / "lake", tag / "warehouse"
    if current(wh).exists():
        return lake, wh
    for stale in [OUT / "cities" / name, *(OUT / "cities").glob(f"{name}-*")]:  # made by other code
        shutil.rmtree(stale, ignore_errors=True)
    cli = [sys.executable, "-m", "linli.cli"]
    quiet = {"check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([*cli, "generate", "--out", str(tag / "city"), "--residents", str(residents), "--days", str(days), "--seed", str(seed)], **quiet)
    subprocess.run([*cli, "ingest", "--from", str(tag / "city" / "deliveries"), "--lake", str(lake)], **quiet)
    subprocess.run([*cli, "build", "--lake", str(lake), "--warehouse", str(wh), "--full-refresh"], **quiet)
    return lake, wh
