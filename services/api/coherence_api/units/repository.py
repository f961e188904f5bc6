"""The org chart's units (tenant-scoped by the session)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from coherence_api.pagination import Keyset, PageRequest, Rows
from coherence_core.db.models import Unit
from coherence_core.db.repository import Repository

KEYSET = Keyset(Unit.external_id)
_CHUNK = 4000  # rows per INSERT: asyncpg allows 32,767 parameters per statement


class UnitRepository(Repository):
    async def all(self) -> Sequence[Unit]:
        return (await self.session.scalars(select(Unit))).all()

    async def get(self, *, external_id: str) -> Unit | None:
        return await self.session.scalar(select(Unit).where(Unit.external_id == external_id))

    async def page(self, *, page: PageRequest) -> Rows[Unit]:
        return await KEYSET.page(self.session, select(Unit), page)

    async def upsert(self, *, rows: list[dict[str, Any]]) -> None:
        """Insert or update units by (organisation, external id); `rows` hold every column."""
        for start in range(0, len(rows), _CHUNK):
            statement = insert(Unit).values(rows[start : start + _CHUNK])
            statement = statement.on_conflict_do_update(
                index_elements=[Unit.organization_id, Unit.external_id],
                set_={
                    "name": statement.excluded.name,
                    "parent_external_id": statement.excluded.parent_external_id,
                    "headcount": statement.excluded.headcount,
                    "updated_at": statement.excluded.updated_at,
                },
            )
            await self.session.execute(statement)
