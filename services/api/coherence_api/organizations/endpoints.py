"""Organisations: created and listed by the platform operator only."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from sqlalchemy import select, tuple_

from coherence_api.api_keys import service as api_keys
from coherence_api.deps import OperatorDep, SessionDep
from coherence_api.organizations.schemas import (
    OrganizationCreate,
    OrganizationCreated,
    OrganizationOut,
)
from coherence_api.pagination import Page, PagingDep
from coherence_core.db.models import Organization
from coherence_core.db.tenancy import bind_organization

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])


@router.post(
    "", status_code=201, response_model=OrganizationCreated, summary="Create an organisation"
)
async def create_organization(
    body: OrganizationCreate, _: OperatorDep, session: SessionDep
) -> OrganizationCreated:
    """Operator only. Returns the organisation and its first `admin` API key (shown once)."""
    organization = Organization(id=uuid.uuid4(), **body.model_dump())
    bind_organization(session, organization.id)  # its first key is written inside it
    session.add(organization)
    await session.flush()
    key = await api_keys.create(
        session, organization_id=organization.id, name="initial admin key", scopes=["admin"]
    )
    await session.commit()
    return OrganizationCreated(
        **OrganizationOut.model_validate(organization).model_dump(), api_key=key
    )


@router.get("", response_model=Page[OrganizationOut], summary="List organisations")
async def list_organizations(
    _: OperatorDep, session: SessionDep, paging: PagingDep
) -> Page[OrganizationOut]:
    after = paging.after(lambda p: (datetime.fromisoformat(p[0]), uuid.UUID(p[1])))
    statement = (
        select(Organization)
        .order_by(Organization.created_at, Organization.id)
        .limit(paging.limit + 1)
    )
    if after is not None:
        statement = statement.where(tuple_(Organization.created_at, Organization.id) > after)
    rows = (await session.scalars(statement)).all()
    items = [OrganizationOut.model_validate(r) for r in rows]
    return paging.page(items, lambda o: [o.created_at.isoformat(), str(o.id)])
