"""All quality suites beside the same checks as bare DuckDB SQL, on a 200,000-resident city-day.

    python bench/quality/run.py [--residents 200000] [--days 1]

The bare version runs each rule's predicate as `SELECT count(*) FILTER (WHERE …) FROM …` and
nothing else; the suites also count rows per community and day, read samples and slices of
failing rows, and write results, slices and issues. Prints both times and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/city.py

from city import prepared_city
from expectations.run import columns_of, connect, relation_of, run_suites, set_as_of
from expectations.suites import load_suites
from expectations.templates import TEMPLATES
from linli.warehouse import current

OUT = Path(__file__).resolve().parent.parent / "out" / "quality"


def bare(con, suites) -> tuple[float, int]:
    """Each rule's predicate over its relation, one count per rule, nothing kept."""
    relations = {s.asset: relation_of(s) for s in suites}
    t = time.perf_counter()
    n = 0
    for s in suites:
        for rule in s.rules:
            settings = dict(rule.settings)
            rel = settings.pop("over", relations[s.asset])
            if "where" in settings:
                rel = f"(SELECT * FROM {rel} WHERE {settings.pop('where')})"
            check = TEMPLATES[rule.template](rel, settings)
            con.execute(f"SELECT count(*) FILTER (WHERE {check.unexpected}) FROM {check.relation}").fetchone()
            n += 1
    return time.perf_counter() - t, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=200_000)
    ap.add_argument("--days", type=int, default=1)
    args = ap.parse_args()
    lake, wh = prepared_city(args.residents, args.days)
    con = connect(current(wh).resolve(), lake)
    suites = [s for s in load_suites(columns_of(con, {s.asset: relation_of(s) for s in load_suites()}))]
    rows = sum(con.execute(f"SELECT count(*) FROM {relation_of(s)}").fetchone()[0] for s in suites)
    set_as_of(con)
    bare(con, suites)  # warm the file cache for both
    t_bare, n = bare(con, suites)
    shutil.rmtree(OUT / "results", ignore_errors=True)
    t = time.perf_counter()
    results = run_suites(con, OUT / "results", suites=suites)
    t_suites = time.perf_counter() - t
    assert len(results) == n
    print(f"{len(suites)} suites, {n} rules over {rows:,} rows ({args.residents:,} residents, {args.days} day)")
    print(f"{'bare DuckDB SQL':<18}{t_bare:>8.2f} s")
    print(f"{'Linli suites':<18}{t_suites:>8.2f} s")
    print(f"{'ratio':<18}{t_suites / t_bare:>8.2f}   (target <= 1.5)")


if __name__ == "__main__":
    main()
