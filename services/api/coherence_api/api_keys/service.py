"""API keys of the caller's organisation (queries are tenant-scoped by the session)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.api_keys.schemas import ApiKeyCreated
from coherence_api.errors import NotFound
from coherence_core.db.models import ApiKey
from coherence_core.security import new_api_key


async def create(
    session: AsyncSession, *, organization_id: uuid.UUID, name: str, scopes: list[str]
) -> ApiKeyCreated:
    key, prefix, key_hash = new_api_key()
    row = ApiKey(
        organization_id=organization_id, name=name, prefix=prefix, key_hash=key_hash, scopes=scopes
    )
    session.add(row)
    await session.flush()
    return ApiKeyCreated(id=row.id, name=name, key=key, scopes=scopes)


async def list_page(session: AsyncSession, *, after: uuid.UUID | None, limit: int) -> list[ApiKey]:
    statement = select(ApiKey).order_by(ApiKey.id).limit(limit + 1)
    if after is not None:
        statement = statement.where(ApiKey.id > after)
    return list((await session.scalars(statement)).all())


async def revoke(session: AsyncSession, *, key_id: uuid.UUID) -> None:
    row = await session.scalar(select(ApiKey).where(ApiKey.id == key_id))
    if row is None:
        raise NotFound(f"No API key {key_id}.")
    if row.revoked_at is None:
        row.revoked_at = func.now()
