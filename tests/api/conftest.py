"""An app wired to the test Postgres and Redis, a client, and an organisation to act as."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from coherence_api.app import create_app
from coherence_core.settings import Settings

OPERATOR_TOKEN = "test-operator-" + secrets.token_hex(8)


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        DATABASE_URL=database_url,
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


@dataclass
class Org:
    id: str
    key: str
    body: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def operator_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


async def new_org(client: httpx.AsyncClient, **fields: Any) -> Org:
    body = {"name": f"org-{uuid.uuid4().hex[:8]}", **fields}
    response = await client.post("/v1/organizations", json=body, headers=operator_headers())
    assert response.status_code == 201, response.text
    data = response.json()
    return Org(id=data["id"], key=data["api_key"]["key"], body=data)


@pytest.fixture
async def org(client: httpx.AsyncClient) -> Org:
    """A fresh organisation per test: tenancy keeps tests apart without truncating tables."""
    return await new_org(client)


async def put_units(client: httpx.AsyncClient, org: Org, units: list[dict[str, Any]]) -> None:
    response = await client.put("/v1/units", json={"units": units}, headers=org.headers)
    assert response.status_code == 200, response.text


async def open_round(client: httpx.AsyncClient, org: Org, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/rounds", json={"name": "Spring", **fields}, headers=org.headers
    )
    assert response.status_code == 201, response.text
    return response.json()
