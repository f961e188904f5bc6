"""Housekeeping deletes: expired idempotency claims and relayed outbox rows, across tenants."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


class MaintenanceRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def prune_idempotency_keys(self, *, older_than_hours: float) -> int:
        result = await self.connection.execute(
            text(
                "DELETE FROM idempotency_key "
                "WHERE created_at < now() - make_interval(secs => :ttl * 3600)"
            ),
            {"ttl": older_than_hours},
        )
        return result.rowcount

    async def prune_relayed_outbox(self, *, older_than_days: int) -> int:
        result = await self.connection.execute(
            text(
                "DELETE FROM outbox WHERE enqueued_at IS NOT NULL "
                "AND enqueued_at < now() - make_interval(days => :days)"
            ),
            {"days": older_than_days},
        )
        return result.rowcount
