"""Postgres row-level security, the backstop under the ORM layer (migration row_level_security).

The first test is the meta-test: every table with an ``organization_id`` must force row-level
security under the one tenant policy, and nothing else may widen it. The others check the
application role and what the policies let each role see and write.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

import coherence_core.db.models  # noqa: F401  (registers every table)
from coherence_core.db.base import Base
from coherence_core.db.bulk import copy_to_table
from coherence_core.db.roles import check_sweeping_role, role_facts
from coherence_core.db.tenancy import (
    API_KEY_HASH_SETTING,
    ORGANIZATION_SETTING,
    TenancyError,
    bind_connection,
)
from tests.db.conftest import Tenant

#: The tenant policy's predicate, as the migration writes it (USING and WITH CHECK).
TENANT_PREDICATE = "organization_id = (SELECT nullif(current_setting('coherence.organization_id', true), '')::uuid)"
#: Tables that are not tenant-owned, on purpose.
NOT_TENANT = {"organization", "alembic_version"}
#: The only policies besides tenant_isolation: (table, policy) → command. Each widens what some
#: role sees, so each is named in coherence_core.db.tenancy and counted here.
EXTRA_POLICIES = {
    ("api_key", "api_key_lookup"): "SELECT",
    ("outbox", "owner_sweep"): "ALL",
    ("idempotency_key", "owner_sweep"): "ALL",
}

_TABLES = """
SELECT c.relname AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
               AND a.attname = 'organization_id' AND NOT a.attisdropped) AS tenant
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
  AND c.relpersistence <> 't'
"""
_POLICIES = """
SELECT tablename AS table, policyname AS name, permissive, roles, cmd, qual, with_check
FROM pg_policies WHERE schemaname = current_schema()
"""


async def _canonical(connection: Any, predicate: str) -> str:
    """`predicate` as Postgres prints a policy's expression (pg_policies.qual)."""
    await connection.execute(text("SAVEPOINT canonical"))
    await connection.execute(text("CREATE TEMP TABLE canonical_probe (organization_id uuid)"))
    await connection.execute(text(f"CREATE POLICY p ON canonical_probe USING ({predicate})"))
    printed = await connection.scalar(
        text(
            "SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polname = 'p' "
            "AND polrelid = 'canonical_probe'::regclass"
        )
    )
    await connection.execute(text("ROLLBACK TO SAVEPOINT canonical"))
    return str(printed)


async def rls_problems(connection: Any) -> list[str]:
    """What is wrong with row-level security in the connection's schema; empty when all is well.
    Run it inside a transaction (it uses a savepoint)."""
    expected = await _canonical(connection, TENANT_PREDICATE)
    tables = {r.name: r for r in (await connection.execute(text(_TABLES))).all()}
    policies: dict[str, list[Any]] = {}
    for policy in (await connection.execute(text(_POLICIES))).all():
        policies.setdefault(policy.table, []).append(policy)
    problems = []
    for table in Base.metadata.sorted_tables:
        if "organization_id" in table.c and table.name not in tables:
            problems.append(f"{table.name}: a tenant model without a table")
    for name, table in sorted(tables.items()):
        if not table.tenant:
            if name not in NOT_TENANT:
                problems.append(f"{name}: no organization_id, and not listed as not tenant-owned")
            continue
        if not table.enabled:
            problems.append(f"{name}: row-level security is not enabled")
        if not table.forced:
            problems.append(f"{name}: row-level security is not forced (the owner escapes it)")
        found = False
        for policy in policies.get(name, []):
            if policy.name == "tenant_isolation":
                found = True
                if (
                    policy.permissive != "PERMISSIVE"
                    or list(policy.roles) != ["public"]
                    or policy.cmd != "ALL"
                    or policy.qual != expected
                    or policy.with_check != expected
                ):
                    problems.append(f"{name}: tenant_isolation is not the tenant policy")
            elif EXTRA_POLICIES.get((name, policy.name)) != policy.cmd:
                problems.append(f"{name}: policy {policy.name} widens access")
        if not found:
            problems.append(f"{name}: no tenant_isolation policy")
    return problems


async def test_every_tenant_table_forces_row_level_security_under_the_tenant_policy(
    admin_engine: AsyncEngine,
) -> None:
    async with admin_engine.begin() as connection:
        assert await rls_problems(connection) == []
        names = {r.name for r in (await connection.execute(text(_TABLES))).all()}
    assert len(names - NOT_TENANT) >= 16  # the check ran over the tenant tables


async def test_the_meta_test_fails_for_a_table_left_open(admin_engine: AsyncEngine) -> None:
    async with admin_engine.connect() as connection:
        await connection.begin()
        await connection.execute(text("CREATE TABLE probe (organization_id uuid, v int)"))
        await connection.execute(text("CREATE TABLE unmarked (v int)"))
        problems = await rls_problems(connection)
        assert "probe: row-level security is not enabled" in problems
        assert "probe: no tenant_isolation policy" in problems
        assert any(p.startswith("unmarked:") for p in problems)
        await connection.execute(text("ALTER TABLE probe ENABLE ROW LEVEL SECURITY"))
        await connection.execute(
            text(
                f"CREATE POLICY tenant_isolation ON probe USING ({TENANT_PREDICATE}) "
                f"WITH CHECK ({TENANT_PREDICATE})"
            )
        )
        problems = await rls_problems(connection)
        assert [p for p in problems if p.startswith("probe")] == [
            "probe: row-level security is not forced (the owner escapes it)"
        ]
        await connection.execute(text("ALTER TABLE probe FORCE ROW LEVEL SECURITY"))
        assert not [p for p in await rls_problems(connection) if p.startswith("probe")]
        await connection.execute(text("CREATE POLICY everyone ON probe FOR SELECT USING (true)"))
        assert "probe: policy everyone widens access" in await rls_problems(connection)
        await connection.execute(text("DROP POLICY tenant_isolation ON probe"))
        await connection.execute(
            text(f"CREATE POLICY tenant_isolation ON probe USING ({TENANT_PREDICATE} OR v = 1)")
        )
        assert "probe: tenant_isolation is not the tenant policy" in await rls_problems(connection)
        await connection.rollback()


async def test_the_application_role_is_neither_superuser_nor_owner_nor_bypassrls(
    app_engine: AsyncEngine,
) -> None:
    facts = await role_facts(app_engine)
    assert not facts.superuser and not facts.bypassrls and not facts.owner
    async with app_engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT bool_or(pg_has_role(current_user, c.relowner, 'MEMBER')) AS tables, "
                    "(SELECT pg_has_role(current_user, d.datdba, 'MEMBER') FROM pg_database d "
                    " WHERE d.datname = current_database()) AS database, "
                    "(SELECT pg_has_role(current_user, n.nspowner, 'MEMBER') FROM pg_namespace n "
                    " WHERE n.nspname = current_schema()) AS schema "
                    "FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
                    "AND c.relkind = 'r'"
                )
            )
        ).one()
    assert row._asdict() == {"tables": False, "database": False, "schema": False}


async def test_with_no_organisation_the_application_role_sees_no_tenant_row(
    app_engine: AsyncEngine, admin_engine: AsyncEngine, tenants: tuple[Tenant, Tenant]
) -> None:
    tenant_tables = sorted(t.name for t in Base.metadata.sorted_tables if "organization_id" in t.c)
    async with admin_engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM round")) >= 2
    async with app_engine.connect() as connection:
        for table in tenant_tables:
            seen = await connection.scalar(text(f"SELECT count(*) FROM {table}"))
            assert seen == 0, table


async def test_the_tenant_policy_keeps_reads_and_writes_in_the_organisation(
    app_engine: AsyncEngine, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    async with app_engine.connect() as connection:
        await connection.begin()
        await connection.execute(
            text("SELECT set_config(:name, :value, true)"),
            {"name": ORGANIZATION_SETTING, "value": str(a.id)},
        )
        assert (await connection.execute(text("SELECT id FROM round"))).scalars().all() == [
            a.round_id
        ]
        changed = await connection.execute(text("UPDATE unit SET name = 'x' WHERE true"))
        assert changed.rowcount == 1
        deleted = await connection.execute(
            text("DELETE FROM api_key WHERE organization_id = :b"), {"b": b.id}
        )
        assert deleted.rowcount == 0
        await connection.execute(text("SAVEPOINT s"))
        with pytest.raises(DBAPIError, match="row-level security"):
            await connection.execute(
                text("INSERT INTO unit (organization_id, external_id, name) VALUES (:b, 'x', 'x')"),
                {"b": b.id},
            )
        await connection.execute(text("ROLLBACK TO SAVEPOINT s"))
        with pytest.raises(DBAPIError, match="row-level security"):
            await connection.execute(
                text("UPDATE unit SET organization_id = :b WHERE true"), {"b": b.id}
            )
        await connection.rollback()


async def _raw(connection: Any) -> Any:
    return (await connection.get_raw_connection()).driver_connection


async def test_copy_into_a_tenant_table_is_checked_row_by_row(
    app_engine: AsyncEngine, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    round_id = uuid.uuid4()
    columns = ["organization_id", "round_id", "respondent_id", "target_idx", "item_idx", "value"]
    async with app_engine.connect() as sa_connection:
        raw = await _raw(sa_connection)
        await sa_connection.rollback()
        async with bind_connection(raw, a.id):
            # Postgres refuses a plain COPY FROM under row-level security: why bulk stages.
            with pytest.raises(asyncpg.FeatureNotSupportedError):
                await raw.copy_to_table(
                    "answer", source=io.BytesIO(b""), columns=columns, format="csv"
                )
            async with raw.transaction():
                await copy_to_table(
                    raw, "answer", records=[(a.id, round_id, 1, -1, 0, 4)], columns=columns
                )
                # A second COPY in the same transaction starts from an empty staging table.
                await copy_to_table(
                    raw, "answer", records=[(a.id, round_id, 2, -1, 0, 5)], columns=columns
                )
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                async with raw.transaction():
                    await copy_to_table(
                        raw,
                        "answer",
                        records=[(a.id, round_id, 3, -1, 0, 4), (b.id, round_id, 4, -1, 0, 4)],
                        columns=columns,
                    )
            stored = await raw.fetch(
                "SELECT respondent_id, organization_id FROM answer WHERE round_id = $1 ORDER BY 1",
                round_id,
            )
    assert [tuple(r) for r in stored] == [(1, a.id), (2, a.id)]


async def test_an_api_key_shows_by_its_hash_alone(
    app_engine: AsyncEngine, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    async with app_engine.connect() as connection:
        await connection.begin()
        await connection.execute(
            text("SELECT set_config(:name, :value, true)"),
            {"name": API_KEY_HASH_SETTING, "value": a.key_hash},
        )
        seen = (await connection.execute(text("SELECT id FROM api_key"))).scalars().all()
        assert seen == [a.key_id]
        revoked = await connection.execute(text("UPDATE api_key SET revoked_at = now()"))
        assert revoked.rowcount == 0  # seeing it by its hash is all
        await connection.rollback()
        assert (await connection.execute(text("SELECT id FROM api_key"))).all() == []


async def test_a_job_connection_goes_back_to_the_pool_without_its_organisation(
    app_engine: AsyncEngine, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    async with app_engine.connect() as sa_connection:
        raw = await _raw(sa_connection)
        await sa_connection.rollback()
        async with bind_connection(raw, a.id):
            assert await raw.fetchval("SELECT id FROM round") == a.round_id  # autocommit
            async with raw.transaction():
                assert await raw.fetchval("SELECT count(*) FROM unit") == 1
        assert await raw.fetchval("SELECT count(*) FROM round") == 0
        with pytest.raises(ZeroDivisionError):
            async with bind_connection(raw, a.id):
                raise ZeroDivisionError
        assert not await raw.fetchval(f"SELECT current_setting('{ORGANIZATION_SETTING}', true)")
        async with raw.transaction():
            with pytest.raises(TenancyError):
                async with bind_connection(raw, a.id):
                    pass


async def test_the_owner_sweeps_the_outbox_and_idempotency_keys_and_nothing_else(
    owner_engine: AsyncEngine, app_engine: AsyncEngine, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    await check_sweeping_role(owner_engine)
    with pytest.raises(RuntimeError, match="keeps from the outbox"):
        await check_sweeping_role(app_engine)
    async with owner_engine.connect() as connection:
        for table in ("outbox", "idempotency_key"):
            seen = set(
                (await connection.execute(text(f"SELECT organization_id FROM {table}"))).scalars()
            )
            assert {a.id, b.id} <= seen, table
        for table in ("round", "unit", "api_key", "answer"):
            assert await connection.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table
