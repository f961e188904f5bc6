"""Coherence benchmarks: `make bench` (or `.venv/bin/python benchmarks/run.py`).

    --quick                  a smaller, faster variant (under about two minutes)
    --only scoring|privacy|ingest|scaling   one section (may be repeated)

Works in a scratch database `coherence_bench_<hex>` on the local Postgres (127.0.0.1:5432, or
`BENCH_POSTGRES_ADMIN_URL`), migrated and dropped at the end; or in `BENCH_DATABASE_URL` as is.
Redis: `BENCH_REDIS_URL` (default the local one). Tables (markdown) go to stdout, progress to
stderr. Every ratio is measured in this run against a baseline measured in this run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402
import psutil  # noqa: E402

from benchmarks.common import (  # noqa: E402
    BenchConfig,
    Goal,
    fmt_s,
    log,
    print_summary,
    print_table,
    redis_url,
    scratch_database,
    server_version,
)

SECTIONS = ("scoring", "privacy", "scaling", "ingest")


def engine_available() -> str | None:
    """None when `coherence_scoring.engine` exports `score`, else why not."""
    if importlib.util.find_spec("coherence_scoring.engine") is None:
        return "coherence_scoring.engine is missing"
    try:
        from coherence_scoring.engine import score  # noqa: F401
    except ImportError as error:
        return f"coherence_scoring.engine does not export score yet ({error})"
    return None


def print_environment(config: BenchConfig) -> None:
    memory = psutil.virtual_memory().total
    load = os.getloadavg()
    if load[0] > 0.5:
        log(f"the machine is busy (load {load[0]:.2f}): timings will be noisy")
    print_table(
        "Environment",
        ["item", "value"],
        [
            ["variant", "quick" if config.quick else "full"],
            ["python", platform.python_version()],
            ["polars / pandas", f"{pl.__version__} / {pd.__version__}"],
            ["CPUs / RAM", f"{os.cpu_count()} / {memory / 2**30:.0f} GiB"],
            ["PostgreSQL", asyncio.run(server_version(config.dsn))],
            ["load average at start (1/5/15 min)", " / ".join(f"{x:.2f}" for x in load)],
            ["date", time.strftime("%Y-%m-%d %H:%M:%S %Z")],
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster variant")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section")
    args = parser.parse_args(argv)
    sections = [s for s in SECTIONS if not args.only or s in args.only]
    started = time.perf_counter()
    print(f"## Coherence benchmarks ({'quick' if args.quick else 'full'})")
    goals: list[Goal] = []
    skipped: list[str] = []
    with scratch_database() as (database_url, app_database_url):
        config = BenchConfig(
            quick=args.quick,
            database_url=database_url,
            redis_url=redis_url(),
            app_database_url=app_database_url,
        )
        print_environment(config)
        for section in sections:
            if section in ("scoring", "privacy", "scaling") and (why := engine_available()):
                skipped.append(f"{section}: skipped, {why}")
                log(skipped[-1])
                continue
            log(f"section {section}")
            if section == "scoring":
                from benchmarks import scoring

                goals += asyncio.run(scoring.run(config))
            elif section == "privacy":
                from benchmarks import privacy

                goals += privacy.run(config)
            elif section == "scaling":
                from benchmarks import scaling

                goals += scaling.run(config)
            else:
                from benchmarks import ingest

                goals += asyncio.run(ingest.run(config))
    print_summary(goals)
    for line in skipped:
        print(f"- {line}")
    missed = [g.measure for g in goals if not g.met]
    print(f"Goals met: {len(goals) - len(missed)} of {len(goals)}", end="")
    print(f" (missed: {', '.join(missed)})" if missed else "")
    print(f"Total time: {fmt_s(time.perf_counter() - started)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
