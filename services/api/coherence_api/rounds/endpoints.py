from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response

from coherence_api.deps import AdminCaller, AnyCaller, SessionDep
from coherence_api.idempotency import IdempotencyDep
from coherence_api.pagination import Page, PagingDep
from coherence_api.rounds import service
from coherence_api.rounds.schemas import RoundCreate, RoundOut

router = APIRouter(prefix="/v1/rounds", tags=["rounds"])


@router.post("", status_code=201, response_model=RoundOut, summary="Open a round")
async def create_round(
    body: RoundCreate, caller: AdminCaller, session: SessionDep, idempotency: IdempotencyDep
) -> Response:
    """Opens a survey round. The unit tree (all current units, or `units`) is frozen into it:
    later renames and moves do not change it."""
    if replay := await idempotency.claim():
        return replay
    row = await service.create(session, organization_id=caller.organization_id, body=body)
    counts = await service.unit_counts(session, [row.id])
    return await idempotency.respond(RoundOut.of(row, counts.get(row.id, 0)), 201)


@router.get("", response_model=Page[RoundOut], summary="List rounds")
async def list_rounds(caller: AnyCaller, session: SessionDep, paging: PagingDep) -> Page[RoundOut]:
    after = paging.after(lambda p: (datetime.fromisoformat(p[0]), uuid.UUID(p[1])))
    rows = await service.list_page(session, after=after, limit=paging.limit)
    counts = await service.unit_counts(session, [r.id for r in rows])
    items = [RoundOut.of(r, counts.get(r.id, 0)) for r in rows]
    return paging.page(items, lambda r: [r.created_at.isoformat(), str(r.id)])


@router.get("/{round_id}", response_model=RoundOut, summary="Get a round and its scoring status")
async def get_round(round_id: uuid.UUID, caller: AnyCaller, session: SessionDep) -> RoundOut:
    row = await service.get(session, round_id=round_id)
    counts = await service.unit_counts(session, [row.id])
    return RoundOut.of(row, counts.get(row.id, 0))


@router.post("/{round_id}/close", status_code=202, response_model=RoundOut, summary="Close a round")
async def close_round(
    round_id: uuid.UUID, caller: AdminCaller, session: SessionDep, idempotency: IdempotencyDep
) -> Response:
    """No more responses are accepted afterwards (409); a final scoring is queued."""
    if replay := await idempotency.claim():
        return replay
    row = await service.close(session, round_id=round_id)
    counts = await service.unit_counts(session, [row.id])
    return await idempotency.respond(RoundOut.of(row, counts.get(row.id, 0)), 202)


@router.post(
    "/{round_id}/score", status_code=202, response_model=RoundOut, summary="Queue a rescoring"
)
async def score_round(
    round_id: uuid.UUID, caller: AdminCaller, session: SessionDep, idempotency: IdempotencyDep
) -> Response:
    """Queues a scoring of the round's current answers with the organisation's current settings
    (for example after `min_group_size` changed)."""
    if replay := await idempotency.claim():
        return replay
    row = await service.get(session, round_id=round_id, for_update=True)
    await service.request_scoring(session, row)
    await session.flush()
    counts = await service.unit_counts(session, [row.id])
    return await idempotency.respond(RoundOut.of(row, counts.get(row.id, 0)), 202)
