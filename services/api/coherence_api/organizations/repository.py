"""Organisations (not tenant-owned: only the operator lists them)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from coherence_api.pagination import Keyset, PageRequest, Rows
from coherence_core.db.models import Organization
from coherence_core.db.repository import Repository

KEYSET = Keyset(Organization.created_at, Organization.id)


class OrganizationRepository(Repository):
    async def add(
        self,
        *,
        id: uuid.UUID,
        name: str,
        min_group_size: int,
        weak_below: float,
        strong_above: float,
    ) -> Organization:
        organization = Organization(
            id=id,
            name=name,
            min_group_size=min_group_size,
            weak_below=weak_below,
            strong_above=strong_above,
        )
        self.session.add(organization)
        await self.session.flush()
        return organization

    async def page(self, *, page: PageRequest) -> Rows[Organization]:
        return await KEYSET.page(self.session, select(Organization), page)
