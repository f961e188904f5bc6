"""An app wired to the test Postgres and Redis, a client, and an organisation to act as."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from coherence_api.app import create_app
from coherence_core.settings import Settings
from tests.api.support import OPERATOR_TOKEN, Org, new_org


@pytest.fixture(scope="session")
def settings(database_url: str, owner_database_url: str, redis_url: str) -> Settings:
    return Settings(
        DATABASE_URL=database_url,
        COHERENCE_OWNER_DATABASE_URL=owner_database_url,
        REDIS_URL=redis_url,
        COHERENCE_ADMIN_TOKEN=OPERATOR_TOKEN,
        COHERENCE_SECRET_KEY="test-secret-" + secrets.token_hex(8),
        COHERENCE_RESCORE_DEBOUNCE=0,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def org(client: httpx.AsyncClient) -> Org:
    """A fresh organisation per test: tenancy keeps tests apart without truncating tables."""
    return await new_org(client)
