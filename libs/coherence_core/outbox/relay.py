"""The outbox relay: moves due outbox rows to the arq queue.

Changes that need scoring record an outbox row in the same transaction
(`OutboxRepository.record_score_round`). The relay enqueues due rows with a job id derived from
the row, so enqueueing a row twice is harmless; the job itself is idempotent as well.
"""

from __future__ import annotations

import logging

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coherence_core.outbox.contract import DEFAULT_QUEUE, job_id
from coherence_core.outbox.repository import OutboxRepository

log = logging.getLogger(__name__)


async def relay_outbox(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: ArqRedis,
    *,
    queue_name: str = DEFAULT_QUEUE,
    batch_size: int = 100,
) -> int:
    """Enqueue due outbox rows; returns how many were relayed. Safe to run in many processes."""
    relayed = 0
    async with sessionmaker() as session, session.begin():
        outbox = OutboxRepository(session)
        for row in await outbox.lock_due(limit=batch_size):
            try:
                await redis.enqueue_job(
                    row.job, _job_id=job_id(row), _queue_name=queue_name, **row.payload
                )
            except Exception as exc:  # Redis down: the row stays pending and is retried
                outbox.mark_failed(row, repr(exc))
                log.warning("outbox relay could not enqueue row %s: %r", row.id, exc)
                break
            outbox.mark_enqueued(row)
            relayed += 1
    return relayed
