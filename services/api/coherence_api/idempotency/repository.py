"""Idempotency-key claims (tenant-scoped by the session; the worker prunes expired ones)."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import func, select, update

from coherence_core.db.models import IdempotencyKey
from coherence_core.db.repository import Repository


def lock_id(organization_id: uuid.UUID, key: str) -> int:
    """The advisory-lock id that a request holding (organisation, key) takes."""
    digest = hashlib.sha256(organization_id.bytes + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class IdempotencyRepository(Repository):
    async def try_lock(self, *, organization_id: uuid.UUID, key: str) -> bool:
        """Take the key's lock for this transaction; False when another request holds it."""
        locked = await self.session.scalar(
            select(func.pg_try_advisory_xact_lock(lock_id(organization_id, key)))
        )
        return bool(locked)

    async def get(self, *, key: str) -> IdempotencyKey | None:
        return await self.session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == key))

    async def claim(self, *, organization_id: uuid.UUID, key: str, request_hash: str) -> None:
        self.session.add(
            IdempotencyKey(organization_id=organization_id, key=key, request_hash=request_hash)
        )
        await self.session.flush()

    async def complete(
        self, *, key: str, status: int, body: bytes, content_type: str | None
    ) -> None:
        await self.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == key)
            .values(
                response_status=status,
                response_body=body,
                response_content_type=content_type,
                completed_at=func.now(),
            )
        )
