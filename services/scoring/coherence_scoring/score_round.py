"""The `score_round` job: load, score off the event loop, write the whole result set.

Safe to run twice and concurrently: a per-round advisory lock lets one scoring of a round run at a
time (another attempt retries later), and a round already scored at its current input version
with the same settings is left as it is. Every query is in `repository/`; the transactions are
the `connection.transaction()` blocks here and in `loading.load_round`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import structlog

from coherence_core.db.bulk import driver_connection
from coherence_core.db.tenancy import bind_connection, bind_organization
from coherence_core.instruments import InstrumentDefinition
from coherence_core.lifecycle import RoundStatus
from coherence_core.logging import get_logger
from coherence_core.outbox.repository import OutboxRepository
from coherence_scoring import ledger
from coherence_scoring.context import WorkerContext
from coherence_scoring.engine import (
    METHOD_VERSION,
    LinkedPublication,
    ScoringInput,
    ScoringSettings,
    score,
)
from coherence_scoring.ledger import PublicationKind
from coherence_scoring.loading import load_round
from coherence_scoring.repository.results import ResultRepository
from coherence_scoring.repository.rounds import RoundRepository
from coherence_scoring.writing import write_result

log = get_logger(__name__)

LOCK_RETRY_SECONDS = 2


def _seconds(timings: dict[str, float]) -> dict[str, float]:
    return {phase: round(seconds, 4) for phase, seconds in timings.items()}


async def score_round(context: WorkerContext, round_id: str, organization_id: str) -> str:
    with structlog.contextvars.bound_contextvars(
        round_id=round_id, organization_id=organization_id
    ):
        return await _score(context, uuid.UUID(round_id), uuid.UUID(organization_id))


async def _score(context: WorkerContext, rid: uuid.UUID, oid: uuid.UUID) -> str:
    async with context.engine.connect() as sa_connection:
        connection = await driver_connection(sa_connection)
        rounds = RoundRepository(connection)
        if not await rounds.try_lock(round_id=rid):
            # Another worker is scoring this round. Ask again through the outbox rather than
            # through arq retries, which run out: the request survives however long that takes.
            async with context.sessionmaker() as session, session.begin():
                bind_organization(session, oid)
                await OutboxRepository(session).record_score_round(
                    organization_id=oid, round_id=rid, delay_seconds=LOCK_RETRY_SECONDS
                )
            log.info("scoring.job_finished", outcome="busy: requeued")
            return "busy: requeued"
        try:
            async with bind_connection(connection, oid):  # row-level security: this organisation
                return await _score_locked(connection, rid, oid, context.secret_key)
        finally:
            await rounds.unlock(round_id=rid)


async def _score_locked(
    connection: Any, round_id: uuid.UUID, organization_id: uuid.UUID, secret: str
) -> str:
    rounds = RoundRepository(connection)
    state = await rounds.state(round_id=round_id, organization_id=organization_id)
    if state is None:
        log.warning("scoring.job_finished", outcome="missing")
        return "missing"
    settings = ScoringSettings(
        min_group_size=state.min_group_size,
        weak_below=state.weak_below,
        strong_above=state.strong_above,
    )
    preview = state.status is RoundStatus.OPEN  # an open round publishes previews
    fingerprint = {**settings.__dict__, "method_version": METHOD_VERSION, "preview": preview}
    if state.scored_version == state.input_version and state.last_settings == fingerprint:
        async with connection.transaction():
            await rounds.mark_current(round_id=round_id)
        log.info(
            "scoring.job_finished",
            outcome="up to date",
            input_version=state.input_version,
            preview=preview,
        )
        return "up to date"

    async with connection.transaction():
        run_id = await rounds.start_run(
            organization_id=organization_id,
            round_id=round_id,
            input_version=state.input_version,
            method_version=METHOD_VERSION,
            settings=fingerprint,
        )
    timings: dict[str, float] = {}
    try:
        started = time.perf_counter()
        inputs = await load_round(connection, round_id)
        timings["load_s"] = time.perf_counter() - started
        instrument = InstrumentDefinition.model_validate(state.instrument)
        keys: dict[int, bytes] = {}
        linked: list[tuple[int, LinkedPublication]] = []
        if not preview:  # a final is protected together with every final it shares answers with
            keys = await ledger.respondent_keys(connection, round_id, inputs, instrument)
            linked = await ledger.linked_finals(
                connection,
                organization_id=organization_id,
                round_id=round_id,
                settings=settings,
                method_version=METHOD_VERSION,
                keys=keys,
            )
        timings["link_s"] = time.perf_counter() - started - timings["load_s"]
        scoring_input = ScoringInput(
            instrument=instrument,
            units=inputs.units,
            respondents=inputs.respondents,
            answers=inputs.answers,
            settings=settings,
            preview=preview,
            noise_key=ledger.preview_noise_key(secret, round_id),
            linked=tuple(publication for _, publication in linked),
        )
        started = time.perf_counter()
        result = await asyncio.to_thread(score, scoring_input)  # CPU-bound: off the event loop
        content_digest = await asyncio.to_thread(ledger.digest, result)
        timings["compute_s"] = time.perf_counter() - started
        started = time.perf_counter()
        async with connection.transaction():  # readers switch to the new results at the commit
            await write_result(
                connection,
                organization_id=organization_id,
                round_id=round_id,
                run_id=run_id,
                input_version=inputs.input_version,
                method_version=METHOD_VERSION,
                result=result,
            )
            timings["write_s"] = time.perf_counter() - started
            await ledger.record_publication(
                connection,
                organization_id=organization_id,
                round_id=round_id,
                run_id=run_id,
                input_version=inputs.input_version,
                method_version=METHOD_VERSION,
                settings=settings,
                result=result,
                content_digest=content_digest,
                keys=keys,
                linked=[publication_id for publication_id, _ in linked],
            )
            timings["ledger_s"] = time.perf_counter() - started - timings["write_s"]
            await rounds.finish_run(
                round_id=round_id,
                run_id=run_id,
                input_version=inputs.input_version,
                timings=timings,
            )
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"[:2000]
        log.exception(
            "scoring.job_failed",
            outcome="failed",
            error=message,
            run_id=run_id,
            input_version=state.input_version,
            preview=preview,
            **_seconds(timings),
        )
        async with connection.transaction():
            await rounds.fail_run(round_id=round_id, run_id=run_id, error=message)
        raise
    await ResultRepository(connection).delete_stale_runs(
        round_id=round_id, run_id=run_id, kept_kind=PublicationKind.FINAL.value
    )
    diagnostics = result.diagnostics
    log.info(
        "scoring.job_finished",
        outcome="scored",
        run_id=run_id,
        input_version=inputs.input_version,
        preview=preview,
        **_seconds(timings),
        units=inputs.units.height,
        respondents=inputs.respondents.height,
        answers=inputs.answers.height,
        rows_hidden=diagnostics.get("rows_min_group_size", 0)
        + diagnostics.get("rows_complementary", 0),
        **diagnostics,
    )
    return "scored"
