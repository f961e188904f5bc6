"""Reading published results: summaries, unit and tie rows, change pairs, the network's rows.

Every list is keyset-paged in SQL by its `Keyset`. Only post-anonymity values are stored, so
every reader is safe.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import aliased

from coherence_api.pagination import Keyset, PageRequest, Rows
from coherence_core.db.models import RoundSummary, RoundUnit, TieScore, UnitParticipation, UnitScore
from coherence_core.db.repository import Repository

UNIT_KEYSET = Keyset(
    UnitScore.scale, UnitScore.measure, UnitScore.perspective, UnitScore.unit, UnitScore.rollup
)
TIE_KEYSET = Keyset(TieScore.scale, TieScore.measure, TieScore.from_unit, TieScore.to_unit)
#: Changes are ordered by code point (as they were when sorted in Python), not by collation.
CHANGE_KEYSET = Keyset(
    UnitScore.scale,
    UnitScore.measure,
    UnitScore.perspective,
    UnitScore.unit,
    UnitScore.rollup,
    collation="C",
)
#: What matches a unit row of one round to a unit row of another.
CHANGE_MATCH = ("unit", "scale", "measure", "perspective", "rollup")

Row = TypeVar("Row", UnitScore, TieScore)

_S = TypeVar("_S", bound=Select[*tuple[Any, ...]])


def _filtered(statement: _S, entity: Any, filters: dict[str, Any]) -> _S:
    """`filters` with a None value are left out."""
    for column, value in filters.items():
        if value is not None:
            statement = statement.where(getattr(entity, column) == value)
    return statement


class ResultRepository(Repository):
    async def summary(self, *, round_id: uuid.UUID) -> RoundSummary | None:
        return await self.session.scalar(
            select(RoundSummary).where(RoundSummary.round_id == round_id)
        )

    async def _page(
        self,
        model: type[Row],
        keyset: Keyset,
        *,
        round_id: uuid.UUID,
        run_id: int,
        filters: dict[str, Any],
        page: PageRequest,
    ) -> Rows[Row]:
        statement = select(model).where(model.round_id == round_id, model.run_id == run_id)
        return await keyset.page(self.session, _filtered(statement, model, filters), page)

    async def unit_scores(
        self, *, round_id: uuid.UUID, run_id: int, filters: dict[str, Any], page: PageRequest
    ) -> Rows[UnitScore]:
        return await self._page(
            UnitScore, UNIT_KEYSET, round_id=round_id, run_id=run_id, filters=filters, page=page
        )

    async def tie_scores(
        self, *, round_id: uuid.UUID, run_id: int, filters: dict[str, Any], page: PageRequest
    ) -> Rows[TieScore]:
        return await self._page(
            TieScore, TIE_KEYSET, round_id=round_id, run_id=run_id, filters=filters, page=page
        )

    async def change_pairs(
        self,
        *,
        later: tuple[uuid.UUID, int],
        earlier: tuple[uuid.UUID, int],
        filters: dict[str, Any],
        page: PageRequest,
    ) -> Rows[tuple[UnitScore, UnitScore]]:
        """A page of (later row, earlier row): the unit rows of the `later` (round, run) that
        have a counterpart in the `earlier` one."""
        now, then = aliased(UnitScore), aliased(UnitScore)
        statement = (
            select(now, then)
            .join(
                then,
                (then.round_id == earlier[0])
                & (then.run_id == earlier[1])
                & and_(*(getattr(now, name) == getattr(then, name) for name in CHANGE_MATCH)),
            )
            .where(now.round_id == later[0], now.run_id == later[1])
        )
        statement = CHANGE_KEYSET.select(_filtered(statement, now, filters), page, entity=now)
        pairs: list[tuple[UnitScore, UnitScore]] = [
            (a, b) for a, b in (await self.session.execute(statement)).all()
        ]
        return CHANGE_KEYSET.rows(pairs, page, key=lambda pair: pair[0])

    async def round_units(self, *, round_id: uuid.UUID) -> Sequence[RoundUnit]:
        statement = select(RoundUnit).where(RoundUnit.round_id == round_id).order_by(RoundUnit.idx)
        return (await self.session.scalars(statement)).all()

    async def index_ties(
        self, *, round_id: uuid.UUID, run_id: int, scale: str
    ) -> Sequence[TieScore]:
        statement = select(TieScore).where(
            TieScore.round_id == round_id,
            TieScore.run_id == run_id,
            TieScore.scale == scale,
            TieScore.measure == "index",
        )
        return (await self.session.scalars(statement)).all()

    async def unit_indices(
        self, *, round_id: uuid.UUID, run_id: int, scale: str, perspectives: list[str]
    ) -> Sequence[UnitScore]:
        """The run's `index` rows of `scale` for single units (not roll-ups)."""
        statement = select(UnitScore).where(
            UnitScore.round_id == round_id,
            UnitScore.run_id == run_id,
            UnitScore.scale == scale,
            UnitScore.measure == "index",
            UnitScore.rollup.is_(False),
            UnitScore.perspective.in_(perspectives),
        )
        return (await self.session.scalars(statement)).all()

    async def unit_participation(
        self, *, round_id: uuid.UUID, run_id: int
    ) -> Sequence[UnitParticipation]:
        statement = select(UnitParticipation).where(
            UnitParticipation.round_id == round_id,
            UnitParticipation.run_id == run_id,
            UnitParticipation.rollup.is_(False),
        )
        return (await self.session.scalars(statement)).all()
