"""The ORM layer of tenancy (coherence_core.db.tenancy): bound sessions, and failing closed.

Most of these run on the superuser's engine, which row-level security does not hold: what keeps
organisations apart there is the ORM layer alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, exists, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from coherence_core.db.models import Organization, Outbox, Round, Unit
from coherence_core.db.session import create_sessionmaker
from coherence_core.db.tenancy import (
    ORGANIZATION_SETTING,
    TenancyError,
    bind_organization,
    system_sessionmaker,
    unscoped,
)
from tests.db.conftest import Tenant


def _statement(name: str, b: Tenant) -> Any:
    """ORM statements that would read or change organisation B's rows if nothing stopped them."""
    return {
        "select an entity": select(Round).where(Round.id == b.round_id),
        "select a column": select(Unit.external_id).where(Unit.external_id == b.unit),
        "an aggregate": select(func.count()).select_from(Round),
        "a subquery": select(Organization.id).where(
            exists(select(Round.id).where(Round.organization_id == Organization.id))
        ),
        "an update": update(Unit).where(Unit.external_id == b.unit).values(name="x"),
        "a delete": delete(Outbox).where(Outbox.organization_id == b.id),
        "an insert": insert(Outbox).values(
            organization_id=b.id, job="x", dedupe_key="x", payload={}, attempts=0
        ),
    }[name]


STATEMENTS = (
    "select an entity",
    "select a column",
    "an aggregate",
    "a subquery",
    "an update",
    "a delete",
    "an insert",
)


@pytest.mark.parametrize("name", STATEMENTS)
async def test_a_session_with_no_organisation_refuses_tenant_statements(
    admin_engine: AsyncEngine, tenants: tuple[Tenant, Tenant], name: str
) -> None:
    _, b = tenants
    sessionmaker = create_sessionmaker(admin_engine)
    async with sessionmaker() as session:
        with pytest.raises(TenancyError, match="no organisation is bound"):
            await session.execute(_statement(name, b))
    async with sessionmaker() as session:  # the tenants' registry is not tenant-owned
        assert await session.scalar(select(Organization.id).where(Organization.id == b.id))
    # Opting out by name is what it would take to see B's rows here (a superuser's engine).
    async with sessionmaker() as session:
        unscoped(session, reason="test: what the refusal prevents")
        assert (await session.scalars(select(Round.id).where(Round.id == b.round_id))).all() == [
            b.round_id
        ]


async def test_a_session_with_no_organisation_refuses_to_write_tenant_rows(
    admin_engine: AsyncEngine, tenants: tuple[Tenant, Tenant]
) -> None:
    _, b = tenants
    async with create_sessionmaker(admin_engine)() as session:
        session.add(Unit(organization_id=b.id, external_id="sneaky", name="Sneaky"))
        with pytest.raises(TenancyError, match="may not write Unit"):
            await session.flush()


async def test_a_bound_session_reads_and_writes_only_its_organisation(
    admin_engine: AsyncEngine, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    async with create_sessionmaker(admin_engine)() as session:
        bind_organization(session, a.id)
        rounds = (await session.scalars(select(Round.id))).all()
        assert a.round_id in rounds and b.round_id not in rounds
        assert await session.scalar(select(Round).where(Round.id == b.round_id)) is None
        renamed = await session.execute(update(Unit).values(name="renamed"))
        assert renamed.rowcount == 1  # type: ignore[attr-defined]
        session.add(Unit(external_id="new", name="New"))
        await session.flush()
        assert {u.organization_id for u in (await session.scalars(select(Unit))).all()} == {a.id}
        session.add(Unit(organization_id=b.id, external_id="sneaky", name="Sneaky"))
        with pytest.raises(TenancyError, match="another organisation"):
            await session.flush()
        await session.rollback()


async def test_the_organisation_is_bound_before_the_first_statement(
    app_engine: AsyncEngine, tenants: tuple[Tenant, Tenant]
) -> None:
    """A transaction that began unbound has no organisation for row-level security: binding
    then is refused until it ends."""
    a, _ = tenants
    async with create_sessionmaker(app_engine)() as session:
        await session.execute(select(Organization.id).limit(1))
        with pytest.raises(TenancyError, match="before the session's first statement"):
            bind_organization(session, a.id)
        await session.commit()
        bind_organization(session, a.id)
        assert (await session.scalars(select(Round.id))).all() == [a.round_id]


async def test_each_transaction_of_a_bound_session_sets_the_organisation_for_itself(
    app_engine: AsyncEngine, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    setting = text(f"SELECT current_setting('{ORGANIZATION_SETTING}', true)")
    async with app_engine.connect() as connection:
        async with AsyncSession(bind=connection) as session:
            bind_organization(session, a.id)
            assert await session.scalar(setting) == str(a.id)
            await session.commit()
            assert await session.scalar(setting) == str(a.id)  # the next one sets it again
            await session.commit()
        # The same connection, after the session: the setting ended with its transactions.
        assert not await connection.scalar(setting)
        assert await connection.scalar(text("SELECT count(*) FROM round")) == 0


async def test_unscoped_sessions_say_why_and_row_level_security_still_holds_them(
    app_engine: AsyncEngine, admin_engine: AsyncEngine, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    async with create_sessionmaker(app_engine)() as session:
        with pytest.raises(ValueError):
            unscoped(session, reason=" ")
        unscoped(session, reason="test")
        assert (await session.scalars(select(Round.id))).all() == []  # the application role
    async with system_sessionmaker(admin_engine, reason="test")() as session:
        ids = set((await session.scalars(select(Round.id))).all())
        assert {a.round_id, b.round_id} <= ids
    async with create_sessionmaker(app_engine)() as session:
        bind_organization(session, a.id)
        with pytest.raises(TenancyError, match="bound to an organisation"):
            unscoped(session, reason="test")


async def test_binding_an_organisation_clears_an_opt_out(
    admin_engine: AsyncEngine, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    async with create_sessionmaker(admin_engine)() as session:
        unscoped(session, reason="test: authenticating")
        bind_organization(session, a.id)
        assert await session.scalar(select(Round).where(Round.id == b.round_id)) is None
