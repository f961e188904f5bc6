from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from coherence_api.deps import AdminCaller, AnyCaller, SessionDep
from coherence_api.idempotency.dependencies import IdempotencyDep
from coherence_api.instruments import service
from coherence_api.transactions import WriteRoute
from coherence_core.instruments import InstrumentDefinition

router = APIRouter(prefix="/v1/instruments", tags=["instruments"], route_class=WriteRoute)


def _out(definition: InstrumentDefinition) -> dict[str, Any]:
    return definition.model_dump(mode="json")


@router.get("", summary="List instruments", response_model=dict[str, list[InstrumentDefinition]])
async def list_instruments(caller: AnyCaller, session: SessionDep) -> dict[str, Any]:
    """The built-in `coherence-v1` and the organisation's own instruments."""
    return {"items": [_out(d) for d in await service.list_all(session)]}


@router.get("/{key}", summary="Get an instrument", response_model=InstrumentDefinition)
async def get_instrument(key: str, caller: AnyCaller, session: SessionDep) -> dict[str, Any]:
    return _out(await service.get(session, key=key))


@router.post(
    "", status_code=201, summary="Create a custom instrument", response_model=InstrumentDefinition
)
async def create_instrument(
    body: InstrumentDefinition,
    caller: AdminCaller,
    session: SessionDep,
    idempotency: IdempotencyDep,
) -> InstrumentDefinition:
    """Scales (targeting `unit` or `self`), subscales, items, response range, reversal, recode
    maps and texts per locale. Validated whole; instruments are immutable once created."""
    return await service.create(session, organization_id=caller.organization_id, definition=body)
