"""Tenant scoping, in one place.

A session bound to an organisation (`bind_organization`) gets every ORM SELECT, UPDATE and DELETE
on a `TenantOwned` model filtered to that organisation, and every new `TenantOwned` row stamped
with it. Code that forgets to filter cannot see another organisation's rows. Bulk paths that bypass
the ORM (COPY) take the organisation id explicitly.
"""

from __future__ import annotations

import uuid

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from coherence_core.db.base import TenantOwned

_ORG_KEY = "organization_id"


def bind_organization(session: AsyncSession, organization_id: uuid.UUID) -> None:
    session.sync_session.info[_ORG_KEY] = organization_id


@event.listens_for(Session, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    organization_id = state.session.info.get(_ORG_KEY)
    if organization_id is None or state.is_column_load or state.is_relationship_load:
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(
            with_loader_criteria(
                TenantOwned,
                lambda cls: cls.organization_id == organization_id,
                include_aliases=True,
            )
        )


@event.listens_for(Session, "before_flush")
def _stamp_new_rows(session: Session, flush_context: object, instances: object) -> None:
    organization_id = session.info.get(_ORG_KEY)
    for obj in session.new:
        if isinstance(obj, TenantOwned):
            if obj.organization_id is None:
                if organization_id is None:
                    raise RuntimeError(f"{type(obj).__name__} created outside an organisation")
                obj.organization_id = organization_id
            elif organization_id is not None and obj.organization_id != organization_id:
                raise RuntimeError("row stamped with another organisation")
