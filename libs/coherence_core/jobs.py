"""The job contract between the API and the scoring worker: names, ids and the outbox.

Changes that need scoring record an outbox row in the same transaction (`record_score_round`).
The relay (`relay_outbox`) moves due rows to the arq queue with a job id derived from the row, so
enqueueing a row twice is harmless; the job itself is idempotent as well.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from arq.connections import ArqRedis
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coherence_core.db.models import Outbox

log = logging.getLogger(__name__)

SCORE_ROUND = "score_round"
DEFAULT_QUEUE = "coherence:queue"


def job_id(row: Outbox) -> str:
    """Stable per outbox row, and unique beyond this database (the dedupe key names the round)."""
    return f"{row.dedupe_key}:{row.id}"


async def record_score_round(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    round_id: uuid.UUID,
    delay_seconds: float = 0.0,
) -> None:
    """Ask for `round_id` to be scored, in the caller's transaction.

    While a request for the round is still pending, further requests join it, so a burst of
    changes scores once, at most `delay_seconds` after the first of them.
    """
    statement = (
        insert(Outbox)
        .values(
            organization_id=organization_id,
            job=SCORE_ROUND,
            dedupe_key=f"{SCORE_ROUND}:{round_id}",
            payload={"round_id": str(round_id), "organization_id": str(organization_id)},
            available_at=func.now() + timedelta(seconds=delay_seconds),
        )
        .on_conflict_do_nothing(
            index_elements=[Outbox.dedupe_key], index_where=text("enqueued_at IS NULL")
        )
    )
    await session.execute(statement)


async def relay_outbox(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: ArqRedis,
    *,
    queue_name: str = DEFAULT_QUEUE,
    batch_size: int = 100,
) -> int:
    """Enqueue due outbox rows; returns how many were relayed. Safe to run in many processes.

    Crosses organisations: give it a `tenancy.system_sessionmaker` on the owner's engine."""
    relayed = 0
    async with sessionmaker() as session, session.begin():
        rows = (
            await session.scalars(
                select(Outbox)
                .where(Outbox.enqueued_at.is_(None), Outbox.available_at <= func.now())
                .order_by(Outbox.available_at, Outbox.id)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            try:
                await redis.enqueue_job(
                    row.job, _job_id=job_id(row), _queue_name=queue_name, **row.payload
                )
            except Exception as exc:  # Redis down: the row stays pending and is retried
                row.attempts += 1
                row.last_error = repr(exc)[:1000]
                log.warning("outbox relay could not enqueue row %s: %r", row.id, exc)
                break
            row.enqueued_at = func.now()
            relayed += 1
    return relayed
