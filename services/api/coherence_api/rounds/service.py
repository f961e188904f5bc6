"""Rounds: opening with a frozen unit tree, closing, and asking for scoring."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.errors import Conflict, InvalidInput, NotFound, pointer
from coherence_api.instruments import service as instruments
from coherence_api.pagination import PageRequest, Rows
from coherence_api.rounds.repository import RoundRepository
from coherence_api.rounds.schemas import RoundCreate, RoundOut
from coherence_api.units.repository import UnitRepository
from coherence_core.db.models import Round, Unit
from coherence_core.lifecycle import (
    RoundStatus,
    ScoringEvent,
    ScoringStatus,
    can_become,
    scoring_status_after,
)
from coherence_core.outbox.repository import OutboxRepository


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
    units = list(await UnitRepository(session).all())
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
    rounds = RoundRepository(session)
    row = await rounds.add(
        Round(
            organization_id=organization_id,
            name=body.name,
            instrument_key=definition.key,
            instrument=definition.model_dump(mode="json"),
            status=RoundStatus.OPEN,
            respondents=0,
            input_version=0,
            scoring_status=ScoringStatus.PENDING,
        )
    )
    await rounds.add_units(
        organization_id=organization_id, round_id=row.id, units=freeze_tree(units, chosen)
    )
    return row


async def get(session: AsyncSession, *, round_id: uuid.UUID, for_update: bool = False) -> Round:
    row = await RoundRepository(session).get(round_id=round_id, for_update=for_update)
    if row is None:
        raise NotFound(f"No round {round_id}.")
    return row


async def list_page(session: AsyncSession, *, page: PageRequest) -> Rows[Round]:
    return await RoundRepository(session).page(page=page)


async def out(session: AsyncSession, *, rows: list[Round]) -> list[RoundOut]:
    """The rounds as the API shows them (with the number of units frozen into each)."""
    counts = await RoundRepository(session).unit_counts(round_ids=[r.id for r in rows])
    return [RoundOut.of(r, counts.get(r.id, 0)) for r in rows]


async def close(session: AsyncSession, *, round_id: uuid.UUID) -> Round:
    row = await get(session, round_id=round_id, for_update=True)
    if not can_become(row.status, RoundStatus.CLOSED):
        raise Conflict(f"Round {round_id} is closed already.")
    rounds = RoundRepository(session)
    rounds.close(row)
    await request_scoring(session, row)
    await rounds.refresh(row)
    return row


async def rescore(session: AsyncSession, *, round_id: uuid.UUID) -> Round:
    row = await get(session, round_id=round_id, for_update=True)
    await request_scoring(session, row)
    await RoundRepository(session).refresh(row)
    return row


async def request_scoring(session: AsyncSession, row: Round, *, delay_seconds: float = 0) -> None:
    await OutboxRepository(session).record_score_round(
        organization_id=row.organization_id, round_id=row.id, delay_seconds=delay_seconds
    )
    row.scoring_status = scoring_status_after(row.scoring_status, ScoringEvent.INPUT_CHANGED)
