from __future__ import annotations

import uuid

from fastapi import APIRouter

from coherence_api.deps import AdminCaller, AnyCaller, SessionDep
from coherence_api.idempotency.dependencies import IdempotencyDep
from coherence_api.pagination import Page, PagingDep
from coherence_api.rounds import service
from coherence_api.rounds.schemas import RoundCreate, RoundOut
from coherence_api.transactions import WriteRoute

router = APIRouter(prefix="/v1/rounds", tags=["rounds"], route_class=WriteRoute)


@router.post("", status_code=201, response_model=RoundOut, summary="Open a round")
async def create_round(
    body: RoundCreate, caller: AdminCaller, session: SessionDep, idempotency: IdempotencyDep
) -> RoundOut:
    """Opens a survey round. The unit tree (all current units, or `units`) is frozen into it:
    later renames and moves do not change it."""
    row = await service.create(session, organization_id=caller.organization_id, body=body)
    (out,) = await service.out(session, rows=[row])
    return out


@router.get("", response_model=Page[RoundOut], summary="List rounds")
async def list_rounds(caller: AnyCaller, session: SessionDep, paging: PagingDep) -> Page[RoundOut]:
    rows = await service.list_page(session, page=paging.asked)
    return paging.page(await service.out(session, rows=rows.items), rows.next_cursor)


@router.get("/{round_id}", response_model=RoundOut, summary="Get a round and its scoring status")
async def get_round(round_id: uuid.UUID, caller: AnyCaller, session: SessionDep) -> RoundOut:
    row = await service.get(session, round_id=round_id)
    (out,) = await service.out(session, rows=[row])
    return out


@router.post("/{round_id}/close", status_code=202, response_model=RoundOut, summary="Close a round")
async def close_round(
    round_id: uuid.UUID, caller: AdminCaller, session: SessionDep, idempotency: IdempotencyDep
) -> RoundOut:
    """No more responses are accepted afterwards (409); a final scoring is queued."""
    row = await service.close(session, round_id=round_id)
    (out,) = await service.out(session, rows=[row])
    return out


@router.post(
    "/{round_id}/score", status_code=202, response_model=RoundOut, summary="Queue a rescoring"
)
async def score_round(
    round_id: uuid.UUID, caller: AdminCaller, session: SessionDep, idempotency: IdempotencyDep
) -> RoundOut:
    """Queues a scoring of the round's current answers with the organisation's current settings
    (for example after `min_group_size` changed)."""
    row = await service.rescore(session, round_id=round_id)
    (out,) = await service.out(session, rows=[row])
    return out
