"""Results of a scored round: the publication its summary points at, read page by page."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.errors import Conflict
from coherence_api.pagination import PageRequest, Rows
from coherence_api.results.changes import NotComparable, change_of
from coherence_api.results.network import NODE_PERSPECTIVES, build_network
from coherence_api.results.repository import ResultRepository
from coherence_api.results.schemas import ChangeOut, Network
from coherence_api.rounds import service as rounds
from coherence_core.db.models import RoundSummary, TieScore, UnitScore


class NotScored(Conflict):
    title, type_slug = "Not scored yet", "not-scored"


async def scored_round(session: AsyncSession, *, round_id: uuid.UUID) -> RoundSummary:
    """The round's current publication (404 without the round, 409 before its first scoring)."""
    row = await rounds.get(session, round_id=round_id)
    summary = await ResultRepository(session).summary(round_id=round_id)
    if summary is None:
        raise NotScored(
            f"Round {round_id} has no results yet (scoring status: {row.scoring_status}); "
            "poll GET /v1/rounds/{id} until scoring.status is 'scored'."
        )
    return summary


async def compared_rounds(
    session: AsyncSession, *, round_id: uuid.UUID, since: uuid.UUID
) -> tuple[RoundSummary, RoundSummary]:
    """The publications of a round and an earlier one, when they can be compared."""
    summary = await scored_round(session, round_id=round_id)
    earlier = await scored_round(session, round_id=since)
    if earlier.method_version != summary.method_version:
        raise NotComparable(
            f"Round {since} was scored with method {earlier.method_version} and this round with "
            f"method {summary.method_version}; rescore the earlier round "
            f"(POST /v1/rounds/{since}/score) to compare them."
        )
    return summary, earlier


async def unit_scores(
    session: AsyncSession, *, summary: RoundSummary, filters: dict[str, Any], page: PageRequest
) -> Rows[UnitScore]:
    return await ResultRepository(session).unit_scores(
        round_id=summary.round_id, run_id=summary.run_id, filters=filters, page=page
    )


async def tie_scores(
    session: AsyncSession, *, summary: RoundSummary, filters: dict[str, Any], page: PageRequest
) -> Rows[TieScore]:
    return await ResultRepository(session).tie_scores(
        round_id=summary.round_id, run_id=summary.run_id, filters=filters, page=page
    )


async def changes(
    session: AsyncSession,
    *,
    later: RoundSummary,
    earlier: RoundSummary,
    filters: dict[str, Any],
    page: PageRequest,
) -> Rows[ChangeOut]:
    """One row per unit row of `later` that has a counterpart (same unit external id, scale,
    measure, perspective and roll-up flag) in `earlier`."""
    pairs = await ResultRepository(session).change_pairs(
        later=(later.round_id, later.run_id),
        earlier=(earlier.round_id, earlier.run_id),
        filters=filters,
        page=page,
    )
    return Rows([change_of(now, then) for now, then in pairs.items], pairs.next_cursor)


async def network(
    session: AsyncSession,
    *,
    summary: RoundSummary,
    scale: str,
    holes_limit: int,
    weakest_limit: int,
) -> Network:
    results = ResultRepository(session)
    round_id, run_id = summary.round_id, summary.run_id
    return build_network(
        units=await results.round_units(round_id=round_id),
        ties=await results.index_ties(round_id=round_id, run_id=run_id, scale=scale),
        scores=await results.unit_indices(
            round_id=round_id, run_id=run_id, scale=scale, perspectives=NODE_PERSPECTIVES
        ),
        participation=await results.unit_participation(round_id=round_id, run_id=run_id),
        holes_limit=holes_limit,
        weakest_limit=weakest_limit,
    )
