"""Rounds and the unit trees frozen into them (tenant-scoped by the session)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select

from coherence_api.pagination import Keyset, PageRequest, Rows
from coherence_core.db.models import Round, RoundUnit
from coherence_core.db.repository import Repository
from coherence_core.lifecycle import RoundStatus

KEYSET = Keyset(Round.created_at, Round.id)
_CHUNK = 5000


class RoundRepository(Repository):
    async def add(self, row: Round) -> Round:
        self.session.add(row)
        await self.session.flush()
        return row

    async def add_units(
        self, *, organization_id: uuid.UUID, round_id: uuid.UUID, units: list[dict[str, Any]]
    ) -> None:
        for start in range(0, len(units), _CHUNK):
            await self.session.execute(
                insert(RoundUnit),
                [
                    {**unit, "round_id": round_id, "organization_id": organization_id}
                    for unit in units[start : start + _CHUNK]
                ],
            )

    async def get(self, *, round_id: uuid.UUID, for_update: bool = False) -> Round | None:
        statement = select(Round).where(Round.id == round_id)
        if for_update:
            statement = statement.with_for_update()
        return await self.session.scalar(statement)

    @staticmethod
    def close(row: Round) -> None:
        row.status = RoundStatus.CLOSED
        row.closed_at = func.now()

    async def refresh(self, row: Round) -> None:
        """Read back what the database set (`closed_at = now()`)."""
        await self.session.flush()
        await self.session.refresh(row)

    async def page(self, *, page: PageRequest) -> Rows[Round]:
        return await KEYSET.page(self.session, select(Round), page)

    async def unit_counts(self, *, round_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        rows = await self.session.execute(
            select(RoundUnit.round_id, func.count())
            .where(RoundUnit.round_id.in_(round_ids))
            .group_by(RoundUnit.round_id)
        )
        return {round_id: count for round_id, count in rows.all()}

    async def unit_external_ids(self, *, round_id: uuid.UUID) -> Sequence[str]:
        """The round's units by round-local index."""
        statement = (
            select(RoundUnit.external_id)
            .where(RoundUnit.round_id == round_id)
            .order_by(RoundUnit.idx)
        )
        return (await self.session.scalars(statement)).all()
