"""Helpers for driving the API in tests: organisations, units, rounds, scoring, paging."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from arq.connections import RedisSettings, create_pool
from fastapi import FastAPI

from coherence_core.db.session import create_engine, create_sessionmaker
from coherence_core.db.tenancy import system_sessionmaker
from coherence_core.outbox.relay import relay_outbox
from coherence_core.settings import Settings
from coherence_scoring.context import WorkerContext
from coherence_scoring.worker import create_worker

OPERATOR_TOKEN = "test-operator-" + secrets.token_hex(8)


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


async def put_units(client: httpx.AsyncClient, org: Org, units: list[dict[str, Any]]) -> None:
    response = await client.put("/v1/units", json={"units": units}, headers=org.headers)
    assert response.status_code == 200, response.text


async def open_round(client: httpx.AsyncClient, org: Org, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/rounds", json={"name": "Spring", **fields}, headers=org.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def run_scoring(app: FastAPI, settings: Settings, queue_name: str) -> int:
    """Relay the outbox to Redis, then drain the queue with a real worker in burst mode."""
    assert settings.redis_url and settings.owner_url
    redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    owner = create_engine(settings.owner_url, pool_size=1)  # the relay crosses organisations
    try:
        relayed = await relay_outbox(
            system_sessionmaker(owner, reason="tests: relay"), redis, queue_name=queue_name
        )
    finally:
        await redis.aclose()
        await owner.dispose()
    worker = create_worker(
        settings, queue_name=queue_name, relay=False, burst=True, poll_delay=0, handle_signals=False
    )
    try:
        await worker.main()
    finally:
        await worker.close()
    return relayed


def worker_context(app: FastAPI, settings: Settings) -> WorkerContext:
    """The scoring worker's context over the app's engine, to call a job directly."""
    engine = app.state.coherence.engine
    return WorkerContext(
        settings=settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        system_engine=engine,  # the jobs called directly do not sweep
        system_sessionmaker=system_sessionmaker(engine, reason="tests: unused"),
        secret_key="test-secret",
    )


async def fetch_all(
    client: httpx.AsyncClient, org: Org, url: str, **query: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {**query, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=params, headers=org.headers)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items
