"""The arq worker: the job registry, and the lifecycle around it (context, outbox relay).

`coherence worker` is the one way to start it (`create_worker(settings).run()`); tests run the
same worker in burst mode. Each job receives the `WorkerContext` built at startup.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import structlog
from arq import Worker, cron, func
from arq.connections import RedisSettings
from arq.typing import WorkerCoroutine

from coherence_core.db.roles import check_application_role, check_sweeping_role
from coherence_core.outbox.contract import DEFAULT_QUEUE, SCORE_ROUND
from coherence_core.outbox.relay import relay_outbox
from coherence_core.settings import Settings, get_settings
from coherence_scoring.context import WorkerContext
from coherence_scoring.maintenance import prune_expired
from coherence_scoring.score_round import score_round

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: Where startup keeps the context in arq's own per-worker `ctx` dict.
CONTEXT = "coherence"


def with_context(job: Callable[Concatenate[WorkerContext, P], Awaitable[R]]) -> WorkerCoroutine:
    """`job(context, ...)` as arq calls jobs: `job(ctx, ...)`, with arq's ctx dict; the job's
    log lines carry arq's job id."""

    @functools.wraps(job)
    async def run(ctx: dict[Any, Any], *args: P.args, **kwargs: P.kwargs) -> R:
        with structlog.contextvars.bound_contextvars(job_id=ctx.get("job_id")):
            return await job(ctx[CONTEXT], *args, **kwargs)

    return run


FUNCTIONS = [
    func(with_context(score_round), name=SCORE_ROUND, timeout=900, max_tries=5, keep_result=3600)
]
CRON_JOBS = [
    cron(with_context(prune_expired), minute={0, 15, 30, 45}, run_at_startup=True, unique=True)
]


async def _relay_forever(
    context: WorkerContext, redis: Any, queue_name: str, interval: float
) -> None:
    while True:
        try:
            while await relay_outbox(context.system_sessionmaker, redis, queue_name=queue_name):
                pass
        except Exception:
            log.exception("outbox relay sweep failed; retrying")
        await asyncio.sleep(interval)


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
    relay_task: asyncio.Task[None] | None = None

    async def startup(ctx: dict[str, Any]) -> None:
        nonlocal relay_task
        context = ctx[CONTEXT] = WorkerContext.open(settings)
        await check_application_role(context.engine)  # warns unless row-level security holds
        await check_sweeping_role(context.system_engine)
        if relay:
            relay_task = asyncio.create_task(
                _relay_forever(context, ctx["redis"], queue_name, settings.relay_interval)
            )

    async def shutdown(ctx: dict[str, Any]) -> None:
        if relay_task is not None:
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
        if CONTEXT in ctx:
            await ctx[CONTEXT].close()

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
