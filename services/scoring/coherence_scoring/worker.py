"""The arq worker: settings, lifecycle (engine, outbox relay) and the job registry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from arq import Worker, cron, func
from arq.connections import RedisSettings

from coherence_core.db.roles import check_application_role, check_sweeping_role
from coherence_core.db.session import create_engine, create_sessionmaker
from coherence_core.db.tenancy import system_sessionmaker
from coherence_core.jobs import DEFAULT_QUEUE, SCORE_ROUND, relay_outbox
from coherence_core.settings import Settings, get_settings
from coherence_scoring.jobs import score_round
from coherence_scoring.maintenance import prune_expired

log = logging.getLogger(__name__)

FUNCTIONS = [func(score_round, name=SCORE_ROUND, timeout=900, max_tries=5, keep_result=3600)]
CRON_JOBS = [cron(prune_expired, minute={0, 15, 30, 45}, run_at_startup=True, unique=True)]


async def _relay_forever(ctx: dict[str, Any], interval: float) -> None:
    while True:
        try:
            while await relay_outbox(
                ctx["system_sessionmaker"], ctx["redis"], queue_name=ctx["queue_name"]
            ):
                pass
        except Exception:
            log.exception("outbox relay sweep failed; retrying")
        await asyncio.sleep(interval)


def _lifecycle(settings: Settings, queue_name: str, relay: bool) -> tuple[Any, Any]:
    async def startup(ctx: dict[str, Any]) -> None:
        assert settings.database_url
        if not settings.secret_key:
            raise RuntimeError("COHERENCE_SECRET_KEY must be set (`coherence run` sets it).")
        ctx["secret_key"] = settings.secret_key
        ctx["engine"] = create_engine(settings.database_url, pool_size=4)
        ctx["sessionmaker"] = create_sessionmaker(ctx["engine"])
        # The outbox relay and the expiry cron cross organisations: the owner's role.
        assert settings.owner_url
        ctx["system_engine"] = create_engine(settings.owner_url, pool_size=2)
        ctx["system_sessionmaker"] = system_sessionmaker(
            ctx["system_engine"], reason="worker: outbox relay across organisations"
        )
        await check_application_role(ctx["engine"])
        await check_sweeping_role(ctx["system_engine"])
        ctx["queue_name"] = queue_name
        ctx["idempotency_ttl_hours"] = settings.idempotency_ttl_hours
        if relay:
            ctx["relay_task"] = asyncio.create_task(_relay_forever(ctx, settings.relay_interval))

    async def shutdown(ctx: dict[str, Any]) -> None:
        task = ctx.get("relay_task")
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for engine in ("engine", "system_engine"):
            if engine in ctx:
                await ctx[engine].dispose()

    return startup, shutdown


def create_worker(
    settings: Settings | None = None,
    *,
    queue_name: str = DEFAULT_QUEUE,
    relay: bool = True,
    **overrides: Any,
) -> Worker:
    """A worker for `settings` (tests pass `burst=True`, `relay=False`)."""
    settings = settings or get_settings()
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("DATABASE_URL and REDIS_URL must be set (`coherence run` sets both).")
    startup, shutdown = _lifecycle(settings, queue_name, relay)
    return Worker(
        functions=FUNCTIONS,
        cron_jobs=CRON_JOBS,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        queue_name=queue_name,
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=4,
        handle_signals=overrides.pop("handle_signals", True),
        **overrides,
    )


class WorkerSettings:
    """For `arq coherence_scoring.worker.WorkerSettings`; `coherence worker` is the usual way."""

    functions = FUNCTIONS
    cron_jobs = CRON_JOBS
    queue_name = DEFAULT_QUEUE
    redis_settings = (
        RedisSettings.from_dsn(os.environ["REDIS_URL"]) if os.environ.get("REDIS_URL") else None
    )
    max_jobs = 4

    @staticmethod
    async def on_startup(ctx: dict[str, Any]) -> None:
        await _lifecycle(get_settings(), DEFAULT_QUEUE, True)[0](ctx)

    @staticmethod
    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await _lifecycle(get_settings(), DEFAULT_QUEUE, True)[1](ctx)


def run() -> None:
    """Run one worker until SIGINT/SIGTERM."""
    logging.basicConfig(level=get_settings().log_level.upper())
    create_worker().run()
