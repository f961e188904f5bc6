from __future__ import annotations

from fastapi import APIRouter

from coherence_api.deps import AdminCaller, AnyCaller, SessionDep
from coherence_api.idempotency.dependencies import IdempotencyDep
from coherence_api.pagination import Page, PagingDep
from coherence_api.transactions import WriteRoute
from coherence_api.units import service
from coherence_api.units.schemas import UnitOut, UnitsUpsert, UnitsUpserted

router = APIRouter(prefix="/v1/units", tags=["units"], route_class=WriteRoute)


@router.put("", response_model=UnitsUpserted, summary="Create or update units in bulk")
async def upsert_units(
    body: UnitsUpsert, caller: AdminCaller, session: SessionDep, idempotency: IdempotencyDep
) -> UnitsUpserted:
    """Upserts the org chart by `external_id`, in any order (a parent may follow its child).

    The request is validated whole against the merged tree: duplicate ids, unknown parents and
    cycles are a 422 with a pointer to each offending unit, and nothing is stored. Rounds already
    opened keep the tree they froze. Up to 20,000 units per request.
    """
    return await service.upsert(session, organization_id=caller.organization_id, units=body.units)


@router.get("", response_model=Page[UnitOut], summary="List units")
async def list_units(caller: AnyCaller, session: SessionDep, paging: PagingDep) -> Page[UnitOut]:
    rows = await service.list_page(session, page=paging.asked)
    return paging.page([UnitOut.model_validate(r) for r in rows.items], rows.next_cursor)


@router.get("/{external_id}", response_model=UnitOut, summary="Get a unit")
async def get_unit(external_id: str, caller: AnyCaller, session: SessionDep) -> UnitOut:
    return UnitOut.model_validate(await service.get(session, external_id=external_id))
