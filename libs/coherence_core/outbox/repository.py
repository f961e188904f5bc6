"""Every query on the outbox table but housekeeping (the worker's `maintenance` prunes it)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from coherence_core.db.models import Outbox
from coherence_core.db.repository import Repository
from coherence_core.outbox.contract import (
    SCORE_ROUND,
    score_round_dedupe_key,
    score_round_payload,
)


class OutboxRepository(Repository):
    async def record_score_round(
        self, *, organization_id: uuid.UUID, round_id: uuid.UUID, delay_seconds: float = 0.0
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
                dedupe_key=score_round_dedupe_key(round_id),
                payload=score_round_payload(organization_id=organization_id, round_id=round_id),
                available_at=func.now() + timedelta(seconds=delay_seconds),
            )
            .on_conflict_do_nothing(
                index_elements=[Outbox.dedupe_key], index_where=text("enqueued_at IS NULL")
            )
        )
        await self.session.execute(statement)

    async def lock_due(self, *, limit: int) -> Sequence[Outbox]:
        """Due, not yet relayed rows, oldest first, locked; rows another relay holds are skipped."""
        statement = (
            select(Outbox)
            .where(Outbox.enqueued_at.is_(None), Outbox.available_at <= func.now())
            .order_by(Outbox.available_at, Outbox.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(statement)).all()

    @staticmethod
    def mark_enqueued(row: Outbox) -> None:
        row.enqueued_at = func.now()

    @staticmethod
    def mark_failed(row: Outbox, error: str) -> None:
        row.attempts += 1
        row.last_error = error[:1000]
