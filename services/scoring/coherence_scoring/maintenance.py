"""Scheduled housekeeping: expired idempotency claims and relayed outbox rows."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

#: Relayed outbox rows are kept this long for diagnostics.
OUTBOX_RETENTION_DAYS = 7


async def prune(engine: AsyncEngine, *, idempotency_ttl_hours: float) -> dict[str, int]:
    async with engine.begin() as connection:
        keys = await connection.execute(
            text(
                "DELETE FROM idempotency_key "
                "WHERE created_at < now() - make_interval(secs => :ttl * 3600)"
            ),
            {"ttl": idempotency_ttl_hours},
        )
        outbox = await connection.execute(
            text(
                "DELETE FROM outbox WHERE enqueued_at IS NOT NULL "
                "AND enqueued_at < now() - make_interval(days => :days)"
            ),
            {"days": OUTBOX_RETENTION_DAYS},
        )
    pruned = {"idempotency_keys": keys.rowcount, "outbox": outbox.rowcount}
    log.info("pruned %s", pruned)
    return pruned


async def prune_expired(ctx: dict[str, Any]) -> dict[str, int]:
    """arq cron job: runs every 15 minutes in every worker (deletes are idempotent). Crosses
    organisations: runs on the owner's engine (see coherence_core.db.tenancy)."""
    return await prune(ctx["system_engine"], idempotency_ttl_hours=ctx["idempotency_ttl_hours"])
