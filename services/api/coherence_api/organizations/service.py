"""Organisations: created with their first admin key."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.api_keys import service as api_keys
from coherence_api.organizations.repository import OrganizationRepository
from coherence_api.organizations.schemas import (
    OrganizationCreate,
    OrganizationCreated,
    OrganizationOut,
)
from coherence_api.pagination import PageRequest, Rows
from coherence_api.scopes import ADMIN
from coherence_core.db.models import Organization
from coherence_core.db.tenancy import bind_organization


async def create(session: AsyncSession, *, body: OrganizationCreate) -> OrganizationCreated:
    organization_id = uuid.uuid4()
    bind_organization(session, organization_id)  # its first key is written inside it
    organization = await OrganizationRepository(session).add(
        id=organization_id, **body.model_dump()
    )
    key = await api_keys.create(
        session, organization_id=organization.id, name="initial admin key", scopes=[ADMIN]
    )
    return OrganizationCreated(
        **OrganizationOut.model_validate(organization).model_dump(), api_key=key
    )


async def list_page(session: AsyncSession, *, page: PageRequest) -> Rows[Organization]:
    return await OrganizationRepository(session).page(page=page)
