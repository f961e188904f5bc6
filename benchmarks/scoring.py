"""Scoring (issue 3): the scoring job against a raw binary COPY, and the engine against pandas.

A synthetic organisation (10,000 respondents, 120 units, about 12 target units each) is written
into the bench database the way the ingest service writes it (`round`, `round_unit`,
`respondent` rows, answers by COPY), but directly, for setup speed. Then, best of N each:

1. baseline: `COPY (SELECT respondent_id, target_idx, item_idx, value FROM answer WHERE
   round_id = …) TO STDOUT (FORMAT binary)` into memory with asyncpg;
2. `coherence_scoring.score_round.score_round` end to end (load + compute + write), with
   `round.input_version` bumped before every run so that each run really rescores; the job's own
   phase timings come from `scoring_run.timings`;
3. the engine's `score` alone against `benchmarks/pandas_baseline.py` on the same frames (the
   ones the job loads), after checking that both give the same numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import polars as pl

from benchmarks import baseline_job, pandas_baseline
from benchmarks.common import (
    BenchConfig,
    Goal,
    Timed,
    fmt_s,
    log,
    print_table,
    timed,
)
from benchmarks.privacy import rule_one_only
from coherence_api.responses.copy import COLUMNS as ANSWER_COLUMNS
from coherence_core.db.models.surveys import NO_TARGET
from coherence_core.settings import Settings
from coherence_core.synthetic import SyntheticOrg, generate_organisation, to_scoring_frames
from coherence_scoring.context import WorkerContext
from coherence_scoring.engine import ScoringInput, ScoringSettings, score
from coherence_scoring.loading import load_round
from coherence_scoring.score_round import score_round

ROUND_UNIT_COLUMNS = (
    "round_id", "organization_id", "idx", "external_id", "name", "parent_idx", "headcount",
)  # fmt: skip
#: The baseline: `COPY (this) TO STDOUT (FORMAT binary)`, as asyncpg's copy_from_query sends it.
RAW_COPY_QUERY = "SELECT respondent_id, target_idx, item_idx, value FROM answer WHERE round_id = $1"
MIN_GROUP_SIZE = 5


@dataclass(frozen=True)
class Plan:
    respondents: int
    units: int
    repeats: int  # COPY and job runs
    compute_repeats: int  # engine and pandas runs

    @classmethod
    def for_run(cls, quick: bool) -> Plan:
        if quick:
            return cls(respondents=3_000, units=units_for(3_000), repeats=3, compute_repeats=3)
        return cls(respondents=10_000, units=units_for(10_000), repeats=3, compute_repeats=5)


def units_for(respondents: int) -> int:
    """About 120 units per 10,000 respondents (units of ~80 people), at least 12."""
    return max(12, round(120 * respondents / 10_000))


# -------------------------------------------------------------------------------------- setup


@dataclass(frozen=True)
class StoredRound:
    organization_id: uuid.UUID
    round_id: uuid.UUID
    respondents: int
    answers: int
    units: int


async def store_round(dsn: str, org: SyntheticOrg) -> StoredRound:
    """Write the organisation's final answers as one closed round, as the API would store them:
    the frozen unit tree indexed in external-id order, one `respondent` row per person (a
    32-byte hash in place of the keyed one), one `answer` row per item (`target_idx` = -1 for
    items asked once)."""
    units, respondents, answers = to_scoring_frames(org)
    external = units["external_id"].to_list()
    position = {e: i for i, e in enumerate(sorted(external))}  # freeze_tree's numbering
    idx = np.array([position[e] for e in external], dtype=np.int64)
    organization_id, round_id = uuid.uuid4(), uuid.uuid4()
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO organization (id, name, min_group_size, weak_below, strong_above, "
                "created_at) VALUES ($1, $2, $3, 3.5, 4.0, now())",
                organization_id,
                f"bench-{organization_id.hex[:8]}",
                MIN_GROUP_SIZE,
            )
            await connection.execute(
                "INSERT INTO round (id, organization_id, name, instrument_key, instrument, status, "
                "respondents, input_version, scoring_status, closed_at) "
                "VALUES ($1, $2, 'bench', $3, $4::jsonb, 'closed', $5, 1, 'pending', now())",
                round_id,
                organization_id,
                org.instrument.key,
                json.dumps(org.instrument.model_dump(mode="json")),
                respondents.height,
            )
            parents = units["parent"].to_list()
            await connection.copy_records_to_table(
                "round_unit",
                records=[
                    (
                        round_id,
                        organization_id,
                        int(idx[u]),
                        external[u],
                        f"Unit {external[u]}",
                        None if parents[u] is None else int(idx[parents[u]]),
                        headcount,
                    )
                    for u, headcount in enumerate(units["headcount"].to_list())
                ],
                columns=ROUND_UNIT_COLUMNS,
            )
            hashes = [
                hashlib.sha256(round_id.bytes + int(r).to_bytes(8, "big")).digest()
                for r in respondents["respondent"].to_list()
            ]
            rows = await connection.fetch(
                "INSERT INTO respondent (organization_id, round_id, respondent_hash, unit_idx, "
                "submitted_at) SELECT $1, $2, h, u, now() "
                "FROM unnest($3::bytea[], $4::int[]) AS t(h, u) RETURNING id, respondent_hash",
                organization_id,
                round_id,
                hashes,
                idx[respondents["unit"].to_numpy()].tolist(),
            )
            by_hash = {bytes(r["respondent_hash"]): r["id"] for r in rows}
            ids = np.array([by_hash[h] for h in hashes], dtype=np.int64)
            target = answers["target"].fill_null(-1).to_numpy()
            value = answers["value"].to_list()
            await connection.copy_records_to_table(
                "answer",
                records=zip(
                    [organization_id] * answers.height,
                    [round_id] * answers.height,
                    ids[answers["respondent"].to_numpy()].tolist(),
                    np.where(target < 0, NO_TARGET, idx[np.maximum(target, 0)]).tolist(),
                    answers["item"].to_list(),
                    value,
                    strict=True,
                ),
                columns=ANSWER_COLUMNS,
            )
        await connection.execute("VACUUM (ANALYZE) answer")
    finally:
        await connection.close()
    return StoredRound(organization_id, round_id, respondents.height, answers.height, len(units))


async def drop_round(dsn: str, stored: StoredRound) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("DELETE FROM answer WHERE round_id = $1", stored.round_id)
        await connection.execute("DELETE FROM organization WHERE id = $1", stored.organization_id)
    finally:
        await connection.close()


# ---------------------------------------------------------------------------------- measuring


async def raw_copy(connection: asyncpg.Connection, round_id: uuid.UUID) -> bytes:
    """The baseline: the round's answers as a binary COPY, into memory."""
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(chunk)

    await connection.copy_from_query(RAW_COPY_QUERY, round_id, output=sink, format="binary")
    return b"".join(chunks)


@dataclass(frozen=True)
class JobRun:
    seconds: float
    timings: dict[str, float]  # the job's own phases (scoring_run.timings)
    max_stall: float  # the event loop's longest stall while the job ran


async def _watch_loop(interval: float, stalls: list[float]) -> None:
    """Tick every `interval`; record how late each tick comes (the loop's stalls)."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(interval)
        stalls.append(time.perf_counter() - before - interval)


async def run_job(
    config: BenchConfig, context: WorkerContext, stored: StoredRound, *, protected: bool = True
) -> JobRun:
    """`score_round` end to end; `input_version` is bumped first so that it really rescores.
    ``protected=False``: the same job publishing rule 1 only (the protection's baseline)."""
    connection = await asyncpg.connect(config.dsn)
    try:
        await connection.execute(
            "UPDATE round SET input_version = input_version + 1, scoring_status = 'pending' "
            "WHERE id = $1",
            stored.round_id,
        )
        stalls: list[float] = []
        watcher = asyncio.create_task(_watch_loop(0.005, stalls))
        started = time.perf_counter()
        with contextlib.nullcontext() if protected else rule_one_only():
            outcome = await score_round(
                context,
                str(stored.round_id),
                str(stored.organization_id),
            )
        seconds = time.perf_counter() - started
        watcher.cancel()
        if outcome != "scored":
            raise RuntimeError(f"score_round returned {outcome!r}, not 'scored'")
        timings = await connection.fetchval(
            "SELECT timings FROM scoring_run WHERE round_id = $1 ORDER BY id DESC LIMIT 1",
            stored.round_id,
        )
    finally:
        await connection.close()
    return JobRun(seconds, json.loads(timings), max(stalls, default=0.0))


async def timed_copy(dsn: str, round_id: uuid.UUID) -> tuple[float, int]:
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        data = await raw_copy(connection, round_id)
        return time.perf_counter() - started, len(data)
    finally:
        await connection.close()


async def measure_job(config: BenchConfig, stored: StoredRound, plan: Plan) -> dict[str, Any]:
    """Baseline and job alternate (COPY, job, COPY, job, …) after one warm-up of each, so that
    background load falls on both alike."""
    context = WorkerContext.open(
        Settings(
            DATABASE_URL=config.app_url,  # the job runs as deployed
            COHERENCE_OWNER_DATABASE_URL=config.database_url,
            COHERENCE_SECRET_KEY="bench-secret",
        ),
        pool_size=2,
    )
    try:
        _, size = await timed_copy(config.dsn, stored.round_id)  # warm-up: the table in cache
        await run_job(config, context, stored)  # warm-up, as a long-running worker would be
        await run_job(config, context, stored, protected=False)
        copies, runs, unprotected, before = [], [], [], []
        with baseline_job.materialise() as folder:
            for i in range(plan.repeats):
                copies.append((await timed_copy(config.dsn, stored.round_id))[0])
                runs.append(await run_job(config, context, stored))
                unprotected.append(await run_job(config, context, stored, protected=False))
                before += await asyncio.to_thread(
                    baseline_job.run_baseline,
                    folder,
                    config.database_url,
                    str(stored.round_id),
                    str(stored.organization_id),
                    1,
                )
                log(
                    f"scoring: run {i + 1}: COPY {fmt_s(copies[-1])}, job "
                    f"{fmt_s(runs[-1].seconds)}, rule 1 only {fmt_s(unprotected[-1].seconds)}, "
                    f"the job before issue 7 {fmt_s(before[-1])}"
                )
    finally:
        await context.close()
    connection = await asyncpg.connect(config.dsn)
    try:
        inputs = await load_round(connection, stored.round_id)
    finally:
        await connection.close()
    return {
        "copy": Timed(min(copies), copies),
        "copy_bytes": size,
        "runs": runs,
        "unprotected": unprotected,
        "before": Timed(min(before), before),
        "inputs": inputs,
    }


def measure_compute(inputs: Any, instrument: Any, plan: Plan) -> dict[str, Any]:
    """Engine and pandas alternate after one warm-up of each, on the frames the job loads."""
    scoring_input = ScoringInput(
        instrument=instrument,
        units=inputs.units,
        respondents=inputs.respondents,
        answers=inputs.answers,
        settings=ScoringSettings(min_group_size=MIN_GROUP_SIZE),
    )
    data = pandas_baseline.from_polars(instrument, inputs.units, inputs.respondents, inputs.answers)
    result = score(scoring_input)
    frames = pandas_baseline.score_pandas(data)
    agreement = pandas_baseline.check_agreement(result, *frames)
    engine_runs, pandas_runs = [], []
    for i in range(plan.compute_repeats):
        engine_runs.append(timed(lambda: score(scoring_input)))
        pandas_runs.append(timed(lambda: pandas_baseline.score_pandas(data)))
        log(
            f"scoring: run {i + 1}: engine {fmt_s(engine_runs[-1])}, pandas {pandas_runs[-1]:.2f} s"
        )
    return {
        "engine": Timed(min(engine_runs), engine_runs),
        "pandas": Timed(min(pandas_runs), pandas_runs),
        "agreement": agreement,
        "result": result,
    }


def _phase_order(item: tuple[str, float]) -> tuple[int, str]:
    known = ["load_s", "compute_s", "write_s"]
    return (known.index(item[0]) if item[0] in known else len(known), item[0])


def _ties(result: Any) -> int:
    return int(result.tie_scores.filter(pl.col("measure") == "index").height)


async def run(config: BenchConfig) -> list[Goal]:
    plan = Plan.for_run(config.quick)
    log(f"scoring: generating {plan.respondents:,} respondents in {plan.units} units")
    org = generate_organisation(
        n_respondents=plan.respondents, n_units=plan.units, targets_per_respondent=12, seed=1
    )
    started = time.perf_counter()
    stored = await store_round(config.dsn, org)
    log(f"scoring: stored {stored.answers:,} answers in {fmt_s(time.perf_counter() - started)}")
    try:
        job = await measure_job(config, stored, plan)
    finally:
        await drop_round(config.dsn, stored)
    compute = measure_compute(job["inputs"], org.instrument, plan)

    copy: Timed = job["copy"]
    runs: list[JobRun] = job["runs"]
    best = min(runs, key=lambda r: r.seconds)
    bare = min(job["unprotected"], key=lambda r: r.seconds)
    phases = sum(best.timings.values())
    print_table(
        f"Scoring: {stored.respondents:,} respondents, {stored.units} units, "
        f"{stored.answers:,} answers, {_ties(compute['result']):,} ties",
        ["step", "best", "runs"],
        [
            [
                f"baseline: raw binary COPY of the answers into memory "
                f"({job['copy_bytes'] / 2**20:.1f} MiB)",
                fmt_s(copy.best),
                ", ".join(fmt_s(r) for r in copy.runs),
            ],
            [
                "score_round end to end (load + compute + write)",
                fmt_s(best.seconds),
                ", ".join(fmt_s(r.seconds) for r in runs),
            ],
            *[
                [f"  job phase {name.removesuffix('_s')} (best run)", fmt_s(value), ""]
                for name, value in sorted(best.timings.items(), key=_phase_order)
            ],
            [
                "  job, outside the phases (lock, bookkeeping)",
                fmt_s(best.seconds - phases),
                "",
            ],
            ["ratio job / COPY", f"{best.seconds / copy.best:.2f}×", ""],
            [
                "the same job publishing rule 1 only (no protection, no audit, no ledger links)",
                fmt_s(bare.seconds),
                ", ".join(fmt_s(r.seconds) for r in job["unprotected"]),
            ],
            ["ratio job / job without the protection", f"{best.seconds / bare.seconds:.2f}×", ""],
            [
                f"the job as it was before issue 7 (commit {baseline_job.REVISION}, method 1)",
                fmt_s(job["before"].best),
                ", ".join(fmt_s(r) for r in job["before"].runs),
            ],
            ["ratio job / job before issue 7", f"{best.seconds / job['before'].best:.2f}×", ""],
            [
                "worker event loop: longest stall while the job ran",
                fmt_s(max(r.max_stall for r in runs)),
                ", ".join(fmt_s(r.max_stall) for r in runs),
            ],
        ],
        note=f"Best of {plan.repeats}, COPY and job alternating, after one warm-up each; "
        "`round.input_version` is bumped before every job run so that each one rescores.",
    )
    engine: Timed = compute["engine"]
    pandas: Timed = compute["pandas"]
    agreement = compute["agreement"]
    print_table(
        "Scoring: engine compute vs a straightforward pandas implementation (same frames)",
        ["implementation", "best", "runs"],
        [
            [
                "engine `score` (everything it publishes)",
                fmt_s(engine.best),
                ", ".join(fmt_s(r) for r in engine.runs),
            ],
            [
                "pandas baseline (unit + tie measures, roll-ups; no anonymity/rwg/summary)",
                fmt_s(pandas.best),
                ", ".join(fmt_s(r) for r in pandas.runs),
            ],
            ["ratio pandas / engine", f"{pandas.best / engine.best:.2f}×", ""],
        ],
        note=f"Best of {plan.compute_repeats}, engine and pandas alternating, after one warm-up "
        f"each. Agreement checked on every published engine row: {agreement.unit_rows:,} unit "
        f"and {agreement.tie_rows:,} tie rows, same n, mean and sd (max |Δmean| "
        f"{agreement.max_abs_diff:.1e}).",
    )
    return [
        Goal(
            "scoring job vs the job before issue 7 (time)",
            fmt_s(best.seconds),
            fmt_s(job["before"].best),
            best.seconds / job["before"].best,
            "<=",
            1.5,
        ),
        Goal(
            "scoring job vs raw COPY (time)",
            fmt_s(best.seconds),
            fmt_s(copy.best),
            best.seconds / copy.best,
            "<=",
            4,
        ),
        Goal(
            "engine vs pandas (speed-up)",
            fmt_s(engine.best),
            fmt_s(pandas.best),
            pandas.best / engine.best,
            ">=",
            5,
        ),
    ]
