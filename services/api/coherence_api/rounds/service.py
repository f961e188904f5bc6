"""Rounds: opening with a frozen unit tree, closing, and asking for scoring."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.errors import Conflict, InvalidInput, NotFound, pointer
from coherence_api.instruments import service as instruments
from coherence_api.rounds.schemas import RoundCreate
from coherence_core.db.models import Round, RoundUnit, Unit
from coherence_core.lifecycle import (
    RoundStatus,
    ScoringEvent,
    ScoringStatus,
    can_become,
    scoring_status_after,
)
from coherence_core.outbox.repository import OutboxRepository

_CHUNK = 5000


def freeze_tree(units: list[Unit], chosen: set[str] | None) -> list[dict[str, object]]:
    """The round's units, indexed in external id order; parent = nearest ancestor in the round."""
    by_id = {u.external_id: u for u in units}
    members = sorted(chosen if chosen is not None else by_id)
    index = {external_id: i for i, external_id in enumerate(members)}
    rows = []
    for external_id in members:
        unit = by_id[external_id]
        parent = unit.parent_external_id
        seen = {external_id}
        while parent is not None and parent not in index and parent not in seen:
            seen.add(parent)
            parent = by_id[parent].parent_external_id if parent in by_id else None
        rows.append(
            {
                "idx": index[external_id],
                "external_id": external_id,
                "name": unit.name,
                "parent_idx": index.get(parent) if parent is not None else None,
                "headcount": unit.headcount,
            }
        )
    return rows


async def create(session: AsyncSession, *, organization_id: uuid.UUID, body: RoundCreate) -> Round:
    definition = await instruments.get(session, key=body.instrument)
    units = list((await session.scalars(select(Unit))).all())
    chosen: set[str] | None = None
    if body.units is not None:
        known = {u.external_id for u in units}
        errors = [
            {"pointer": pointer("units", i), "detail": f"unknown unit '{external_id}'"}
            for i, external_id in enumerate(body.units)
            if external_id not in known
        ]
        if errors:
            raise InvalidInput(f"{len(errors)} unknown unit(s)", errors=errors)
        chosen = set(body.units)
    if not (chosen if chosen is not None else units):
        raise InvalidInput(
            "A round needs at least one unit: create units with PUT /v1/units first.",
            errors=[{"pointer": "/units", "detail": "no units"}],
        )
    row = Round(
        organization_id=organization_id,
        name=body.name,
        instrument_key=definition.key,
        instrument=definition.model_dump(mode="json"),
        status=RoundStatus.OPEN,
        respondents=0,
        input_version=0,
        scoring_status=ScoringStatus.PENDING,
    )
    session.add(row)
    await session.flush()
    frozen = freeze_tree(units, chosen)
    for start in range(0, len(frozen), _CHUNK):
        chunk = frozen[start : start + _CHUNK]
        await session.execute(
            insert(RoundUnit),
            [{**r, "round_id": row.id, "organization_id": organization_id} for r in chunk],
        )
    return row


async def get(session: AsyncSession, *, round_id: uuid.UUID, for_update: bool = False) -> Round:
    statement = select(Round).where(Round.id == round_id)
    if for_update:
        statement = statement.with_for_update()
    row = await session.scalar(statement)
    if row is None:
        raise NotFound(f"No round {round_id}.")
    return row


async def unit_counts(session: AsyncSession, round_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        select(RoundUnit.round_id, func.count())
        .where(RoundUnit.round_id.in_(round_ids))
        .group_by(RoundUnit.round_id)
    )
    return {round_id: count for round_id, count in rows.all()}


async def list_page(
    session: AsyncSession, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Round]:
    statement = select(Round).order_by(Round.created_at, Round.id).limit(limit + 1)
    if after is not None:
        statement = statement.where(tuple_(Round.created_at, Round.id) > after)
    return list((await session.scalars(statement)).all())


async def close(session: AsyncSession, *, round_id: uuid.UUID) -> Round:
    row = await get(session, round_id=round_id, for_update=True)
    if not can_become(row.status, RoundStatus.CLOSED):
        raise Conflict(f"Round {round_id} is closed already.")
    row.status = RoundStatus.CLOSED
    row.closed_at = func.now()
    await request_scoring(session, row)
    await session.flush()
    await session.refresh(row)
    return row


async def request_scoring(session: AsyncSession, row: Round, *, delay_seconds: float = 0) -> None:
    await OutboxRepository(session).record_score_round(
        organization_id=row.organization_id, round_id=row.id, delay_seconds=delay_seconds
    )
    row.scoring_status = scoring_status_after(row.scoring_status, ScoringEvent.INPUT_CHANGED)
