"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from redis.asyncio import Redis

from coherence_api import health
from coherence_api.api_keys.endpoints import router as api_keys_router
from coherence_api.errors import document_problems, install_problem_handlers
from coherence_api.idempotency.dependencies import Replay
from coherence_api.instruments.endpoints import router as instruments_router
from coherence_api.organizations.endpoints import router as organizations_router
from coherence_api.request_log import document_request_ids, install_request_log
from coherence_api.responses.endpoints import router as responses_router
from coherence_api.responses.schemas import ResponsesBatch
from coherence_api.results.endpoints import NotModified
from coherence_api.results.endpoints import router as results_router
from coherence_api.rounds.endpoints import router as rounds_router
from coherence_api.state import AppState
from coherence_api.units.endpoints import router as units_router
from coherence_core.db.roles import check_application_role
from coherence_core.db.session import create_engine, create_sessionmaker
from coherence_core.security import RespondentHasher
from coherence_core.settings import Settings, get_settings

DESCRIPTION = """
Coherence measures organisational coherence — relational capacity, relational leadership and
psychological safety — inside every unit and between every pair of units.

Push units and responses in; read unit, tie and summary results out. Every published number
describes at least the organisation's `min_group_size` people, also by differencing.
Errors are RFC 9457 `application/problem+json`, with a JSON pointer per invalid field.

Every request has an `X-Request-ID`: send your own (a UUID or 32 hex digits) or get a new one.
It comes back in the `X-Request-ID` response header and as `request_id` in every problem body,
and is on every line the service logs for that request: quote it when reporting a problem.
"""


def tune_garbage_collector() -> None:
    """Ingest allocates many short-lived containers (parsed JSON); with the default thresholds
    the collector rescans the long-lived heap (modules, app, caches) over and over. Freezing
    what exists after start-up and collecting the young generation less often removes most of
    that cost without changing what gets collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def redis_client(url: str) -> Redis:
    client: Redis = Redis.from_url(url)
    return client


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("DATABASE_URL and REDIS_URL must be set (`coherence run` sets both).")
    if not settings.admin_token or not settings.secret_key:
        raise RuntimeError("COHERENCE_ADMIN_TOKEN and COHERENCE_SECRET_KEY must be set.")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert settings.database_url and settings.redis_url
        assert settings.admin_token and settings.secret_key
        engine = create_engine(settings.database_url)
        await check_application_role(engine)  # warns unless row-level security holds
        redis = redis_client(settings.redis_url)
        app.state.coherence = AppState(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            redis=redis,
            admin_token=settings.admin_token,
            hasher=RespondentHasher(settings.secret_key),
        )
        tune_garbage_collector()
        try:
            yield
        finally:
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Coherence",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    install_request_log(app)

    @app.exception_handler(NotModified)
    async def _not_modified(request: Request, exc: NotModified) -> Response:
        return Response(status_code=304, headers={"ETag": exc.etag})

    @app.exception_handler(Replay)
    async def _replay(request: Request, exc: Replay) -> Response:
        return exc.response()

    for router in (
        health.router,
        organizations_router,
        api_keys_router,
        units_router,
        instruments_router,
        rounds_router,
        responses_router,
        results_router,
    ):
        app.include_router(router)

    _complete_openapi(app)
    return app


def _complete_openapi(app: FastAPI) -> None:
    """What FastAPI does not see: bodies that endpoints parse themselves, problem bodies, and
    the `X-Request-ID` header that middleware handles."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        extra = ResponsesBatch.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(extra.pop("$defs", {}))
        components["ResponsesBatch"] = extra
        document_problems(schema)
        document_request_ids(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
