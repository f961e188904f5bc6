"""Scaling (issue 3): engine compute time and peak memory from 1,000 to 50,000 respondents.

Each size is generated here (about 120 units per 10,000 respondents, ~12 target units each),
written to parquet, and scored in a fresh subprocess (`python -m benchmarks.scaling engine DIR`)
that only reads the frames and runs `score`: its peak RSS is Python + polars + the input frames
+ the engine's working set, never the generator's. The peak is the child's own `VmHWM` (the
kernel's high-water mark of its address space): a child's `ru_maxrss` is not used because on
Linux it starts from the parent's RSS at fork, so a large parent would show in every child.
The full job (`score_round`: load + compute + write) runs the same way against the bench
database, in a subprocess of its own (`python -m benchmarks.scaling job …`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import psutil

from benchmarks.common import ROOT, BenchConfig, Goal, fmt_int, fmt_mib, fmt_s, log, print_table

FULL_SIZES = (1_000, 5_000, 10_000, 25_000, 50_000)
QUICK_SIZES = (1_000, 5_000, 10_000)
ENGINE_REPEATS = 3
JOB_REPEATS = 2
PHASES = ("load_s", "compute_s", "write_s")  # the job's own timings (scoring_run.timings)


@dataclass(frozen=True)
class ChildResult:
    output: dict[str, Any]
    max_rss: int  # bytes, the child's peak resident set (VmHWM)


def run_child(*args: str) -> ChildResult:
    """`python -m benchmarks.scaling ARGS` in a fresh process; its JSON output and peak RSS."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.scaling", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    output, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"scaling child {args[0]} failed with status {process.returncode}")
    result = json.loads(output)
    return ChildResult(result, result["peak_rss"])


def peak_rss() -> int:
    """This process's peak resident set size in bytes (VmHWM)."""
    status = Path("/proc/self/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024  # kB


# ------------------------------------------------------------------------------------ children


def child_engine(directory: Path, repeats: int) -> dict[str, Any]:
    from coherence_core.instruments import builtin_instrument
    from coherence_scoring.engine import ScoringInput, ScoringSettings, score

    inputs = ScoringInput(
        instrument=builtin_instrument("coherence-v1"),
        units=pl.read_parquet(directory / "units.parquet"),
        respondents=pl.read_parquet(directory / "respondents.parquet"),
        answers=pl.read_parquet(directory / "answers.parquet"),
        settings=ScoringSettings(min_group_size=5),
    )
    rss_inputs = psutil.Process().memory_info().rss
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = score(inputs)
        times.append(time.perf_counter() - started)
    return {
        "times": times,
        "rss_inputs": rss_inputs,
        "unit_rows": result.unit_scores.height,
        "tie_rows": result.tie_scores.height,
    }


async def child_job(
    database_url: str, app_database_url: str, round_id: str, organization_id: str, repeats: int
) -> Any:
    """The job as deployed (the application role); set-up and timings as the owner."""
    import asyncpg

    from coherence_core.db.session import asyncpg_dsn
    from coherence_core.settings import Settings
    from coherence_scoring.context import WorkerContext
    from coherence_scoring.score_round import score_round

    context = WorkerContext.open(
        Settings(
            DATABASE_URL=app_database_url,  # the job as deployed
            COHERENCE_OWNER_DATABASE_URL=database_url,
            COHERENCE_SECRET_KEY="bench-secret",
        ),
        pool_size=1,
    )
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    times, timings = [], []
    try:
        for _ in range(repeats):
            await connection.execute(
                "UPDATE round SET input_version = input_version + 1, scoring_status = 'pending' "
                "WHERE id = $1",
                uuid.UUID(round_id),
            )
            started = time.perf_counter()
            if await score_round(context, round_id, organization_id) != "scored":
                raise RuntimeError("the round was not rescored")
            times.append(time.perf_counter() - started)
            timings.append(
                json.loads(
                    await connection.fetchval(
                        "SELECT timings FROM scoring_run WHERE round_id = $1 "
                        "ORDER BY id DESC LIMIT 1",
                        uuid.UUID(round_id),
                    )
                )
            )
    finally:
        await connection.close()
        await context.close()
    return {"times": times, "timings": timings}


# --------------------------------------------------------------------------------------- parent


@dataclass(frozen=True)
class SizeResult:
    respondents: int
    units: int
    answers: int
    engine: ChildResult
    job: ChildResult | None


def measure_size(config: BenchConfig, respondents: int, with_job: bool) -> SizeResult:
    from benchmarks.scoring import drop_round, store_round, units_for
    from coherence_core.synthetic import generate_organisation, to_scoring_frames

    units = units_for(respondents)
    org = generate_organisation(
        n_respondents=respondents, n_units=units, targets_per_respondent=12, seed=3
    )
    with tempfile.TemporaryDirectory(prefix="coherence-scaling-") as scratch:
        directory = Path(scratch)
        frames = to_scoring_frames(org)
        answers = frames[2].height
        for name, frame in zip(("units", "respondents", "answers"), frames, strict=True):
            frame.write_parquet(directory / f"{name}.parquet")
        del frames
        engine = run_child("engine", str(directory), str(ENGINE_REPEATS))
    job = None
    if with_job:
        stored = asyncio.run(store_round(config.dsn, org))
        try:
            job = run_child(
                "job",
                config.database_url,
                config.app_url,
                str(stored.round_id),
                str(stored.organization_id),
                str(JOB_REPEATS),
            )
        finally:
            asyncio.run(drop_round(config.dsn, stored))
    return SizeResult(respondents, units, answers, engine, job)


def run(config: BenchConfig, *, with_job: bool = True) -> list[Goal]:
    sizes = QUICK_SIZES if config.quick else FULL_SIZES
    results = []
    for respondents in sizes:
        log(f"scaling: {respondents:,} respondents")
        results.append(measure_size(config, respondents, with_job))
        engine = results[-1].engine
        log(
            f"scaling: {respondents:,}: compute {fmt_s(min(engine.output['times']))}, "
            f"peak {fmt_mib(engine.max_rss)}"
        )
    rows = []
    for r in results:
        best = min(r.engine.output["times"])
        row = [
            fmt_int(r.respondents),
            fmt_int(r.units),
            fmt_int(r.answers),
            fmt_int(r.engine.output["unit_rows"] + r.engine.output["tie_rows"]),
            fmt_s(best),
            fmt_s(best / r.answers * 1e6),
            fmt_mib(r.engine.max_rss),
            fmt_mib(r.engine.max_rss - r.engine.output["rss_inputs"]),
        ]
        if r.job is not None:
            times = r.job.output["times"]
            best_job = min(times)
            phases = r.job.output["timings"][times.index(best_job)]
            split = " / ".join(fmt_s(phases.get(k, float("nan"))) for k in PHASES)
            row += [fmt_s(best_job), split, fmt_mib(r.job.max_rss)]
        rows.append(row)
    headers = [
        "respondents",
        "units",
        "answers",
        "result rows",
        "engine compute",
        "per 1M answers",
        "peak RSS",
        "of which scoring",
    ]
    if with_job:
        headers += ["full job", "load / compute / write", "job peak RSS"]
    print_table(
        "Scaling: engine compute and peak memory (one fresh process per size)",
        headers,
        rows,
        note=f"Engine: best of {ENGINE_REPEATS} in a process that only reads the frames and "
        "scores them; peak RSS is that process's VmHWM, 'of which scoring' the peak minus "
        "the RSS with the input frames loaded. Full job: `score_round` (load + compute + "
        f"write) against the bench database, best of {JOB_REPEATS}, in a process of its own.",
    )
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description="a scaling child process (see run)")
    commands = parser.add_subparsers(dest="command", required=True)
    engine = commands.add_parser("engine")
    engine.add_argument("directory", type=Path)
    engine.add_argument("repeats", type=int)
    job = commands.add_parser("job")
    job.add_argument("database_url")
    job.add_argument("app_database_url")
    job.add_argument("round_id")
    job.add_argument("organization_id")
    job.add_argument("repeats", type=int)
    args = parser.parse_args()
    if args.command == "engine":
        output = child_engine(args.directory, args.repeats)
    else:
        output = asyncio.run(
            child_job(
                args.database_url,
                args.app_database_url,
                args.round_id,
                args.organization_id,
                args.repeats,
            )
        )
    output["peak_rss"] = peak_rss()
    print(json.dumps(output))


if __name__ == "__main__":
    main()
