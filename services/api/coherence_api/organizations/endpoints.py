"""Organisations: created and listed by the platform operator only."""

from __future__ import annotations

from fastapi import APIRouter

from coherence_api.deps import OperatorDep, SessionDep
from coherence_api.organizations import service
from coherence_api.organizations.schemas import (
    OrganizationCreate,
    OrganizationCreated,
    OrganizationOut,
)
from coherence_api.pagination import Page, PagingDep
from coherence_api.transactions import WriteDep, WriteRoute

router = APIRouter(prefix="/v1/organizations", tags=["organizations"], route_class=WriteRoute)


@router.post(
    "", status_code=201, response_model=OrganizationCreated, summary="Create an organisation"
)
async def create_organization(
    body: OrganizationCreate, _: OperatorDep, session: SessionDep, write: WriteDep
) -> OrganizationCreated:
    """Operator only. Returns the organisation and its first `admin` API key (shown once)."""
    return await service.create(session, body=body)


@router.get("", response_model=Page[OrganizationOut], summary="List organisations")
async def list_organizations(
    _: OperatorDep, session: SessionDep, paging: PagingDep
) -> Page[OrganizationOut]:
    rows = await service.list_page(session, page=paging.asked)
    return paging.page([OrganizationOut.model_validate(r) for r in rows.items], rows.next_cursor)
