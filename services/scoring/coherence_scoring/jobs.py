"""The `score_round` job: load, score off the event loop, write the whole result set.

Safe to run twice and concurrently: a per-round advisory lock lets one scoring of a round run at a
time (another attempt retries later), and a round already scored at its current input version
with the same settings is left as it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from coherence_core.db.tenancy import bind_connection, bind_organization
from coherence_core.instruments import InstrumentDefinition
from coherence_core.jobs import record_score_round
from coherence_scoring import ledger
from coherence_scoring.engine import (
    METHOD_VERSION,
    LinkedPublication,
    ScoringInput,
    ScoringSettings,
    score,
)
from coherence_scoring.loading import load_round
from coherence_scoring.writing import delete_stale_runs, write_result

log = logging.getLogger(__name__)

LOCK_RETRY_SECONDS = 2

_ROUND_QUERY = """
SELECT r.input_version, r.scored_version, r.scoring_status, r.instrument, r.status,
       o.min_group_size, o.weak_below, o.strong_above,
       (SELECT s.settings FROM scoring_run s WHERE s.round_id = r.id AND s.status = 'scored'
         ORDER BY s.id DESC LIMIT 1) AS last_settings
FROM round r JOIN organization o ON o.id = r.organization_id
WHERE r.id = $1 AND r.organization_id = $2
"""


def round_lock_key(round_id: uuid.UUID) -> int:
    """A signed 64-bit advisory-lock key for the round."""
    return int.from_bytes(round_id.bytes[:8], "big", signed=True)


async def score_round(ctx: dict[str, Any], round_id: str, organization_id: str) -> str:
    engine: AsyncEngine = ctx["engine"]
    rid, oid = uuid.UUID(round_id), uuid.UUID(organization_id)
    async with engine.connect() as sa_connection:
        connection: Any = (await sa_connection.get_raw_connection()).driver_connection
        # Leave SQLAlchemy's implicit transaction: asyncpg manages transactions below.
        await sa_connection.rollback()
        if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", round_lock_key(rid)):
            # Another worker is scoring this round. Ask again through the outbox rather than
            # through arq retries, which run out: the request survives however long that takes.
            async with AsyncSession(engine) as session, session.begin():
                bind_organization(session, oid)
                await record_score_round(
                    session, organization_id=oid, round_id=rid, delay_seconds=LOCK_RETRY_SECONDS
                )
            return "busy: requeued"
        try:
            async with bind_connection(connection, oid):  # row-level security: this organisation
                return await _score_locked(connection, rid, oid, ctx["secret_key"])
        finally:
            await connection.fetchval("SELECT pg_advisory_unlock($1)", round_lock_key(rid))


async def _score_locked(
    connection: Any, round_id: uuid.UUID, organization_id: uuid.UUID, secret: str
) -> str:
    row = await connection.fetchrow(_ROUND_QUERY, round_id, organization_id)
    if row is None:
        log.warning("score_round: round %s does not exist", round_id)
        return "missing"
    settings = ScoringSettings(
        min_group_size=row["min_group_size"],
        weak_below=row["weak_below"],
        strong_above=row["strong_above"],
    )
    preview = row["status"] == "open"
    fingerprint = {**settings.__dict__, "method_version": METHOD_VERSION, "preview": preview}
    last = row["last_settings"]  # jsonb: decoded by the SQLAlchemy pool's asyncpg codec
    if isinstance(last, str):
        last = json.loads(last)
    if row["scored_version"] == row["input_version"] and last == fingerprint:
        await connection.execute(
            "UPDATE round SET scoring_status = 'scored' "
            "WHERE id = $1 AND scoring_status = 'pending' AND scored_version = input_version",
            round_id,
        )
        return "up to date"

    run_id = await connection.fetchval(
        "INSERT INTO scoring_run (organization_id, round_id, input_version, method_version, "
        "settings, status, started_at) VALUES ($1, $2, $3, $4, $5::jsonb, 'running', now()) "
        "RETURNING id",
        organization_id,
        round_id,
        row["input_version"],
        METHOD_VERSION,
        json.dumps(fingerprint),
    )
    await connection.execute("UPDATE round SET scoring_status = 'running' WHERE id = $1", round_id)
    try:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        inputs = await load_round(connection, round_id)
        timings["load_s"] = time.perf_counter() - started
        instrument = InstrumentDefinition.model_validate(row["instrument"])
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
        async with connection.transaction():
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
            await connection.execute(
                "UPDATE round SET scored_version = $2, scored_at = now(), scoring_error = NULL, "
                "scoring_status = CASE WHEN input_version = $2 THEN 'scored' ELSE 'pending' END "
                "WHERE id = $1",
                round_id,
                inputs.input_version,
            )
            timings["ledger_s"] = time.perf_counter() - started - timings["write_s"]
            await connection.execute(
                "UPDATE scoring_run SET status = 'scored', finished_at = now(), "
                "input_version = $2, timings = $3::jsonb WHERE id = $1",
                run_id,
                inputs.input_version,
                json.dumps(timings),
            )
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"[:2000]
        log.exception("score_round failed for round %s", round_id)
        await connection.execute(
            "UPDATE round SET scoring_status = 'failed', scoring_error = $2 WHERE id = $1",
            round_id,
            message,
        )
        await connection.execute(
            "UPDATE scoring_run SET status = 'failed', finished_at = now(), error = $2 "
            "WHERE id = $1",
            run_id,
            message,
        )
        raise
    await delete_stale_runs(connection, round_id=round_id, run_id=run_id)
    log.info("scored round %s at version %s: %s", round_id, inputs.input_version, timings)
    return "scored"
