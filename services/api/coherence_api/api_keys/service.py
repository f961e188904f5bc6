"""API keys of the caller's organisation (queries are tenant-scoped by the session)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.api_keys.repository import ApiKeyRepository
from coherence_api.api_keys.schemas import ApiKeyCreated
from coherence_api.errors import NotFound
from coherence_api.pagination import PageRequest, Rows
from coherence_core.db.models import ApiKey
from coherence_core.security import new_api_key


async def create(
    session: AsyncSession, *, organization_id: uuid.UUID, name: str, scopes: list[str]
) -> ApiKeyCreated:
    key, prefix, key_hash = new_api_key()
    row = await ApiKeyRepository(session).add(
        organization_id=organization_id, name=name, prefix=prefix, key_hash=key_hash, scopes=scopes
    )
    return ApiKeyCreated(id=row.id, name=name, key=key, scopes=scopes)


async def list_page(session: AsyncSession, *, page: PageRequest) -> Rows[ApiKey]:
    return await ApiKeyRepository(session).page(page=page)


async def revoke(session: AsyncSession, *, key_id: uuid.UUID) -> None:
    repository = ApiKeyRepository(session)
    row = await repository.get(key_id=key_id)
    if row is None:
        raise NotFound(f"No API key {key_id}.")
    repository.revoke(row)
