"""Scheduled housekeeping: expired idempotency claims and relayed outbox rows."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from coherence_scoring.context import WorkerContext
from coherence_scoring.repository.maintenance import MaintenanceRepository

log = logging.getLogger(__name__)

#: Relayed outbox rows are kept this long for diagnostics.
OUTBOX_RETENTION_DAYS = 7


async def prune(engine: AsyncEngine, *, idempotency_ttl_hours: float) -> dict[str, int]:
    async with engine.begin() as connection:
        maintenance = MaintenanceRepository(connection)
        pruned = {
            "idempotency_keys": await maintenance.prune_idempotency_keys(
                older_than_hours=idempotency_ttl_hours
            ),
            "outbox": await maintenance.prune_relayed_outbox(older_than_days=OUTBOX_RETENTION_DAYS),
        }
    log.info("pruned %s", pruned)
    return pruned


async def prune_expired(context: WorkerContext) -> dict[str, int]:
    """Cron job: runs every 15 minutes in every worker (deletes are idempotent). Crosses
    organisations: runs on the owner's engine (see coherence_core.db.tenancy)."""
    return await prune(
        context.system_engine, idempotency_ttl_hours=context.settings.idempotency_ttl_hours
    )
