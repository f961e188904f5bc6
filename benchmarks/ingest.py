"""Ingest (issue 4): end-to-end REST ingest against raw COPY and a per-row ORM path.

The real API runs in a subprocess (`coherence api`, i.e. uvicorn) on a free localhost port,
against the bench database and the local Redis. An httpx client with a fixed number of concurrent
connections posts pre-serialised JSON batches (`to_api_batches`) into a round prepared through
the API; every 200 response means the batch's transaction has committed, so answers/s is
answers through to committed Postgres transactions.

Baselines, same run, same Postgres, same `answer` table, the same answers:
  * raw asyncpg `copy_records_to_table`: the same batches, one transaction each, over the same
    number of connections; and the whole set in one COPY on one connection. The faster of the
    two is the baseline.
  * a plain ORM path: `session.add(Answer(...))` per row, commit per batch, on a subset.
Before each measurement the previous one's rows are deleted, the table vacuumed and a checkpoint
taken, so every measurement starts from the same table state.

Memory per request: a fresh server, one small warm-up request, then the largest batch allowed
(`COHERENCE_MAX_BATCH_RESPONSES` responses, within `COHERENCE_MAX_BODY_BYTES`) while the server's
RSS is sampled every 2 ms; the peak is the larger of the samples and the server's VmHWM (its
lifetime peak, which on a fresh server is this request's).
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from benchmarks.api_server import (
    api_server,
    new_organisation,
    open_round,
    post_batches,
)
from benchmarks.common import (
    BenchConfig,
    Goal,
    PeakRss,
    fmt_int,
    fmt_mib,
    fmt_rate,
    fmt_s,
    log,
    print_table,
)
from benchmarks.ingest_baselines import (
    answer_batches,
    answer_records,
    copy_batched,
    copy_single,
    count_round,
    orm_insert,
    reset_table,
)
from coherence_core.settings import Settings
from coherence_core.synthetic import (
    SyntheticOrg,
    generate_organisation,
    to_api_batches,
)

BATCH_RESPONSES = 200
CONCURRENCY = 4
N_UNITS = 120
PATHS = ("rest", "copy_batched", "copy_single", "orm")
ORM_ORGANISATION = uuid.UUID(int=0)  # `answer` has no foreign keys


@dataclass(frozen=True)
class Plan:
    respondents: int
    orm_answers: int  # the ORM baseline's subset
    repeats: int  # every path is run this many times; the best run counts

    @classmethod
    def for_run(cls, quick: bool) -> Plan:
        if quick:
            return cls(respondents=2_000, orm_answers=5_000, repeats=2)
        return cls(respondents=10_000, orm_answers=20_000, repeats=3)


# ------------------------------------------------------------------------------------- the runs


@dataclass(frozen=True)
class Throughput:
    answers: int
    runs: list[float]  # seconds per repetition; the best counts

    @property
    def seconds(self) -> float:
        return min(self.runs)

    @property
    def rate(self) -> float:
        return self.answers / self.seconds


def orm_subset(
    org: SyntheticOrg, batches: list[tuple[range, int]], answers: int, round_id: uuid.UUID
) -> list[list[tuple[Any, ...]]]:
    """Whole respondents from the start until `answers` is reached, in the same batches."""
    subset: list[list[tuple[Any, ...]]] = []
    taken = 0
    for respondents, _ in batches:
        if taken >= answers:
            break
        rows = answer_records(org, respondents, ORM_ORGANISATION, round_id)
        if taken + len(rows) > answers:
            last = rows[answers - taken - 1][2]
            rows = [row for row in rows if row[2] <= last]
        subset.append(rows)
        taken += len(rows)
    return subset


async def measure_throughput(config: BenchConfig, plan: Plan) -> dict[str, Throughput]:
    log(f"ingest: generating {plan.respondents:,} respondents in {N_UNITS} units")
    org = generate_organisation(
        n_respondents=plan.respondents, n_units=N_UNITS, seed=11, resubmission_rate=0.0
    )
    batches = answer_batches(org, BATCH_RESPONSES)
    bodies = [orjson.dumps(b) for b in to_api_batches(org, batch_size=BATCH_RESPONSES)]
    total = sum(n for _, n in batches)
    repeats = plan.repeats
    settings = Settings()
    with api_server(
        config, max_body_bytes=settings.max_body_bytes, max_batch=settings.max_batch_responses
    ) as server:
        async with httpx.AsyncClient(
            base_url=server.base_url,
            timeout=600,
            limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY),
        ) as client:
            organisation = await new_organisation(client, server, org)
            organization_id = organisation[0]
            warmup = await open_round(client, organisation, "warm-up")
            rounds = [await open_round(client, organisation, f"ingest {i}") for i in range(repeats)]
            log("ingest: warm-up (the first batches, into a round of their own)")
            await post_batches(client, warmup, bodies[:CONCURRENCY], CONCURRENCY)
            await reset_table(config, [warmup.round_id])

            # every repetition runs each path once, in turn, so background load falls on all
            copy_round = uuid.uuid4()  # `answer` has no foreign keys: any round id will do
            records = [answer_records(org, r, organization_id, copy_round) for r, _ in batches]
            flat = [row for batch in records for row in batch]
            # The prepared rows are long-lived: keep them out of this process's collections,
            # which would otherwise slow down the in-process baselines (the ORM path above all).
            gc.collect()
            gc.freeze()
            runs: dict[str, list[float]] = {k: [] for k in PATHS}
            orm_answers = 0
            for i, target in enumerate(rounds):
                log(f"ingest: run {i + 1} of {repeats}")
                runs["copy_batched"].append(await copy_batched(config, records, CONCURRENCY))
                await reset_table(config, [copy_round])
                runs["copy_single"].append(await copy_single(config, flat))
                await reset_table(config, [copy_round])

                runs["rest"].append(await post_batches(client, target, bodies, CONCURRENCY))
                stored, respondents = await count_round(config, target.round_id)
                if (stored, respondents) != (total, org.n_respondents):
                    raise RuntimeError(f"REST stored {stored} answers of {respondents} respondents")
                await reset_table(config, [target.round_id])

                orm_round = uuid.uuid4()
                subset = orm_subset(org, batches, plan.orm_answers, orm_round)
                orm_answers = sum(len(b) for b in subset)
                runs["orm"].append(await orm_insert(config, subset))
                stored, _ = await count_round(config, orm_round)
                if stored != orm_answers:
                    raise RuntimeError(f"ORM stored {stored} answers of {orm_answers}")
                await reset_table(config, [orm_round])
                log(
                    "ingest: "
                    + ", ".join(
                        f"{k} {fmt_rate(n / runs[k][-1])}"
                        for k, n in (("rest", total), ("copy_batched", total), ("orm", orm_answers))
                    )
                )
    gc.unfreeze()
    return {
        name: Throughput(orm_answers if name == "orm" else total, times)
        for name, times in runs.items()
    }


@dataclass(frozen=True)
class LargestRequest:
    responses: int
    answers: int
    body_bytes: int
    seconds: float
    rss_before: int
    rss_peak: int
    rss_after: int
    max_body_bytes: int
    max_batch: int


async def measure_largest_request(config: BenchConfig) -> LargestRequest:
    settings = Settings()
    max_batch, max_body = settings.max_batch_responses, settings.max_body_bytes
    log(f"ingest: largest request, {max_batch:,} responses")
    org = generate_organisation(
        n_respondents=max_batch, n_units=N_UNITS, seed=12, resubmission_rate=0.0
    )
    responses = to_api_batches(org, batch_size=max_batch)[0]["responses"]
    body = orjson.dumps({"responses": responses})
    while len(body) > max_body:  # the largest batch that also fits the body limit
        responses = responses[: int(len(responses) * max_body / len(body) * 0.99)]
        body = orjson.dumps({"responses": responses})
    answers = sum(
        len(r["answers"]) + sum(len(items) for items in r["about"].values()) for r in responses
    )
    with api_server(config, max_body_bytes=max_body, max_batch=max_batch) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=600) as client:
            organisation = await new_organisation(client, server, org)
            warmup = await open_round(client, organisation, "warm-up")
            target = await open_round(client, organisation, "largest")
            small = orjson.dumps({"responses": responses[:BATCH_RESPONSES]})
            await post_batches(client, warmup, [small], 1)
            await asyncio.sleep(0.5)
            with PeakRss(server.process.pid) as rss:
                seconds = await post_batches(client, target, [body], 1)
                await asyncio.sleep(0.2)
    stored, _ = await count_round(config, target.round_id)
    if stored != answers:
        raise RuntimeError(f"the largest request stored {stored} answers of {answers}")
    await reset_table(config, [warmup.round_id, target.round_id])
    return LargestRequest(
        responses=len(responses),
        answers=answers,
        body_bytes=len(body),
        seconds=seconds,
        rss_before=rss.start,
        rss_peak=rss.peak,
        rss_after=rss.end,
        max_body_bytes=max_body,
        max_batch=max_batch,
    )


async def run(config: BenchConfig) -> list[Goal]:
    plan = Plan.for_run(config.quick)
    results = await measure_throughput(config, plan)
    largest = await measure_largest_request(config)

    rest, orm = results["rest"], results["orm"]
    copy_name = max(("copy_batched", "copy_single"), key=lambda k: results[k].rate)
    copy = results[copy_name]
    descriptions = {
        "rest": f"REST: JSON batches of {BATCH_RESPONSES} respondents, {CONCURRENCY} connections",
        "copy_batched": f"asyncpg COPY: the same batches, {CONCURRENCY} connections",
        "copy_single": "asyncpg COPY: everything in one COPY, 1 connection",
        "orm": "SQLAlchemy ORM: session.add per row, commit per batch, 1 connection",
    }
    rows = [
        [
            descriptions[k],
            fmt_int(results[k].answers),
            fmt_s(results[k].seconds),
            ", ".join(fmt_s(r) for r in results[k].runs),
            fmt_rate(results[k].rate),
            f"{rest.rate / results[k].rate:.2f}×" if k != "rest" else "",
        ]
        for k in PATHS
    ]
    print_table(
        f"Ingest: {plan.respondents:,} respondents, answers through to committed transactions",
        ["path", "answers", "best", "runs", "rate (best)", "REST / this"],
        rows,
        note=f"Best of {plan.repeats} runs each, the paths taking turns, every run starting from "
        "the same table state (rows of the previous run deleted, VACUUM, CHECKPOINT). "
        f"COPY baseline in the summary: the faster COPY ({descriptions[copy_name]}).",
    )
    print_table(
        "Ingest: memory per request, the largest accepted body",
        ["responses", "answers", "body", "time", "server RSS before", "peak", "delta", "after"],
        [
            [
                fmt_int(largest.responses),
                fmt_int(largest.answers),
                f"{fmt_mib(largest.body_bytes)} (limit {fmt_mib(largest.max_body_bytes)})",
                fmt_s(largest.seconds),
                fmt_mib(largest.rss_before),
                fmt_mib(largest.rss_peak),
                fmt_mib(largest.rss_peak - largest.rss_before),
                fmt_mib(largest.rss_after),
            ]
        ],
        note=f"Peak RSS delta per body byte: "
        f"{(largest.rss_peak - largest.rss_before) / largest.body_bytes:.1f}.",
    )
    return [
        Goal(
            "REST ingest vs raw COPY",
            fmt_rate(rest.rate),
            fmt_rate(copy.rate),
            rest.rate / copy.rate,
            ">=",
            0.35,
        ),
        Goal(
            "REST ingest vs per-row ORM",
            fmt_rate(rest.rate),
            fmt_rate(orm.rate),
            rest.rate / orm.rate,
            ">=",
            10,
        ),
    ]
