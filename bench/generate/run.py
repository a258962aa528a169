"""Generator throughput: rows per second and peak RSS for a city of N residents over D days.

    python bench/generate/run.py [--residents 200000] [--days 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=200_000)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="linli-bench-") as tmp:
        out = Path(tmp)
        cmd = [sys.executable, "-m", "linli.cli", "generate", "--out", str(out), "--residents", str(args.residents),
               "--days", str(args.days), "--seed", str(args.seed)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        manifest = json.loads((out / "truth" / "manifest.json").read_text(encoding="utf-8"))
        rows = sum(f["rows"] for f in manifest["files"].values() if not f["file_defect"])
        size = sum(p.stat().st_size for p in (out / "deliveries").rglob("*") if p.is_file())
    print(f"residents {args.residents:,}  days {args.days}")
    print(f"rows written      {rows:,}")
    print(f"wall time         {wall:.1f} s")
    print(f"rows per second   {rows / wall:,.0f}")
    print(f"peak RSS          {peak_mb:,.0f} MB")
    print(f"deliveries size   {size / 2**20:,.0f} MB")


if __name__ == "__main__":
    main()
