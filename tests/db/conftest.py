"""Two organisations with a row in the tables the tenancy tests look at, written as a superuser."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.infra import DatabaseRoles


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    round_id: uuid.UUID
    unit: str
    key_id: uuid.UUID
    key_hash: str


async def add_tenant(engine: AsyncEngine) -> Tenant:
    tenant = Tenant(
        id=uuid.uuid4(),
        round_id=uuid.uuid4(),
        unit=f"u-{secrets.token_hex(4)}",
        key_id=uuid.uuid4(),
        key_hash=hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
    )
    values = {
        "org": tenant.id,
        "round": tenant.round_id,
        "unit": tenant.unit,
        "key": tenant.key_id,
        "hash": tenant.key_hash,
    }
    async with engine.begin() as connection:
        for statement in (
            "INSERT INTO organization (id, name, min_group_size, weak_below, strong_above) "
            "VALUES (:org, 'tenant', 3, 3.5, 4.0)",
            "INSERT INTO unit (organization_id, external_id, name) VALUES (:org, :unit, 'Unit')",
            "INSERT INTO round (id, organization_id, name, instrument_key, instrument, status, "
            "respondents, input_version, scoring_status) VALUES "
            "(:round, :org, 'Round', 'coherence-v1', '{}', 'open', 0, 0, 'pending')",
            "INSERT INTO api_key (id, organization_id, name, prefix, key_hash, scopes) "
            "VALUES (:key, :org, 'key', 'coh_test', :hash, ARRAY['admin'])",
            "INSERT INTO outbox (organization_id, job, dedupe_key, payload, attempts, enqueued_at) "
            "VALUES (:org, 'test', :hash, '{}', 0, now() - interval '30 days')",
            "INSERT INTO idempotency_key (organization_id, key, request_hash) "
            "VALUES (:org, 'k', :hash)",
        ):
            await connection.execute(text(statement), values)
    return tenant


@pytest.fixture
async def tenants(admin_engine: AsyncEngine) -> tuple[Tenant, Tenant]:
    """Organisations A and B, fresh for each test."""
    return await add_tenant(admin_engine), await add_tenant(admin_engine)


@pytest.fixture(autouse=True)
def _separate_roles(postgres: DatabaseRoles) -> None:
    if not postgres.separate_roles:
        pytest.skip("TEST_DATABASE_URL gives one role: nothing to hold to row-level security")
