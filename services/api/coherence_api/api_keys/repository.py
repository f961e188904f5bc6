"""API keys. Lookups by hash run before a caller is known, so they are not tenant-scoped."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from coherence_api.pagination import Keyset, PageRequest, Rows
from coherence_core.db.models import ApiKey, Organization
from coherence_core.db.repository import Repository

KEYSET = Keyset(ApiKey.id)


class ApiKeyRepository(Repository):
    async def add(
        self,
        *,
        organization_id: uuid.UUID,
        name: str,
        prefix: str,
        key_hash: str,
        scopes: list[str],
    ) -> ApiKey:
        row = ApiKey(
            organization_id=organization_id,
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            scopes=scopes,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, *, key_id: uuid.UUID) -> ApiKey | None:
        return await self.session.scalar(select(ApiKey).where(ApiKey.id == key_id))

    async def get_active_by_hash(self, *, key_hash: str) -> tuple[ApiKey, Organization] | None:
        """The unrevoked key with this hash, and its organisation (authentication)."""
        row = (
            await self.session.execute(
                select(ApiKey, Organization)
                .join(Organization, Organization.id == ApiKey.organization_id)
                .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def page(self, *, page: PageRequest) -> Rows[ApiKey]:
        return await KEYSET.page(self.session, select(ApiKey), page)

    @staticmethod
    def revoke(row: ApiKey) -> None:
        if row.revoked_at is None:
            row.revoked_at = func.now()
