"""Reading published results. Only post-anonymity values are stored, so every reader is safe."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.errors import Conflict
from coherence_api.rounds import service as rounds
from coherence_core.db.models import Round, RoundSummary, TieScore, UnitScore


class NotScored(Conflict):
    title, type_slug = "Not scored yet", "not-scored"


async def scored_round(session: AsyncSession, *, round_id: uuid.UUID) -> tuple[Round, RoundSummary]:
    row = await rounds.get(session, round_id=round_id)
    summary = await session.scalar(select(RoundSummary).where(RoundSummary.round_id == round_id))
    if summary is None:
        raise NotScored(
            f"Round {round_id} has no results yet (scoring status: {row.scoring_status}); "
            "poll GET /v1/rounds/{id} until scoring.status is 'scored'."
        )
    return row, summary


UNIT_KEY = (
    UnitScore.scale,
    UnitScore.measure,
    UnitScore.perspective,
    UnitScore.unit,
    UnitScore.rollup,
)
TIE_KEY = (TieScore.scale, TieScore.measure, TieScore.from_unit, TieScore.to_unit)


Row = TypeVar("Row", UnitScore, TieScore)


async def _rows(
    session: AsyncSession,
    model: type[Row],
    key: tuple[Any, ...],
    *,
    round_id: uuid.UUID,
    run_id: int,
    filters: dict[str, Any],
    after: list[Any] | None,
    limit: int,
) -> list[Row]:
    """A page of the run's rows in key order; `filters` with a None value are left out."""
    statement = select(model).where(model.round_id == round_id, model.run_id == run_id)
    for column, value in filters.items():
        if value is not None:
            statement = statement.where(getattr(model, column) == value)
    if after is not None:
        statement = statement.where(tuple_(*key) > tuple(after))
    statement = statement.order_by(*key).limit(limit + 1)
    return list((await session.scalars(statement)).all())


async def unit_scores(session: AsyncSession, **query: Any) -> list[UnitScore]:
    return await _rows(session, UnitScore, UNIT_KEY, **query)


async def tie_scores(session: AsyncSession, **query: Any) -> list[TieScore]:
    return await _rows(session, TieScore, TIE_KEY, **query)
