"""Tenancy: every tenant row is reachable only from inside its organisation, and fails closed.

Every table with an ``organization_id`` column belongs to one organisation (its model mixes in
`TenantOwned`). Two independent layers keep organisations apart, so that a mistake in one is
caught by the other:

1. **The ORM layer (this module).** A session is *bound* to one organisation
   (`bind_organization`: the API does it for the caller's key, the worker per job). Every ORM
   SELECT, UPDATE and DELETE on a `TenantOwned` model is then filtered to it, and every new row is
   stamped with it. A session with *no* organisation bound refuses: any ORM statement or flush
   that touches a tenant table raises `TenancyError`, unless the code opts out by name —
   `unscoped(session, reason=...)` or `system_sessionmaker(engine, reason=...)`. Raw SQL and COPY
   do not pass through the ORM; they take the organisation explicitly (as arguments and in the
   rows they write).

2. **Postgres row-level security** (migration ``row_level_security``). The API and the worker
   connect as an application role (``coherence_app``; `DATABASE_URL`) that is neither superuser
   nor table owner nor ``BYPASSRLS``. Every tenant table has row-level security enabled and
   *forced* (so even its owner is held to it) and the policy ``tenant_isolation``: a row can be
   read or written only when its ``organization_id`` equals the transaction's
   ``coherence.organization_id`` setting. No setting, no rows. The setting is made:

   - for ORM sessions, when a bound session begins a transaction (the ``after_begin`` event runs
     ``set_config(..., true)``: for that transaction only, so a pooled connection never carries
     it on). COPY and raw SQL on the session's connection (`bulk.raw_connection`) share it;
   - for the worker's raw asyncpg connection, by `bind_connection` around the job, which resets
     it before the connection goes back to the pool (and closes the connection if it cannot).

   Postgres refuses ``COPY FROM`` into a table under row-level security, so bulk writes go
   through `bulk.copy_to_table`, which stages rows in a temporary table and moves them with one
   ``INSERT … SELECT`` that the policy checks row by row.

The paths that run outside one organisation, all named here:

- *Creating an organisation* (operator) binds the session to the new organisation's id before
  its first statement; *listing organisations* reads ``organization``, the tenant registry,
  which has no ``organization_id`` and no policy.
- *API-key authentication* happens before the organisation is known: the session is `unscoped`
  and *presents* the key's hash (`present_api_key`); the policy ``api_key_lookup`` shows exactly
  the ``api_key`` row with that hash, in whatever organisation. Then the session is bound.
- *The outbox relay and the expiry cron* (worker) are the only paths that cross organisations.
  They connect as the schema owner (`COHERENCE_OWNER_DATABASE_URL`) through a
  `system_sessionmaker`; the policy ``owner_sweep`` lets that role see every row of ``outbox``
  and ``idempotency_key`` — and of no other tenant table.
- *Migrations* run as the owner.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, with_loader_criteria
from sqlalchemy.sql.util import find_tables

from coherence_core.db.base import TenantOwned

#: The transaction setting the row-level security policies compare ``organization_id`` with.
ORGANIZATION_SETTING = "coherence.organization_id"
#: The transaction setting through which a caller presents an API key's hash for lookup.
API_KEY_HASH_SETTING = "coherence.api_key_hash"

_ORG_KEY = "coherence.organization_id"
_UNSCOPED_KEY = "coherence.unscoped"
_DATABASE_BOUND_KEY = "coherence.transaction_organization"
_UNBOUND = object()


class TenancyError(RuntimeError):
    """Tenant rows touched with no organisation bound, or an organisation bound too late."""


def _sync(session: AsyncSession | Session) -> Session:
    return session.sync_session if isinstance(session, AsyncSession) else session


def bind_organization(session: AsyncSession | Session, organization_id: uuid.UUID) -> None:
    """Scope `session` to `organization_id`: ORM statements are filtered to it and each
    transaction sets it for row-level security. Bind before the session's first statement (or
    right after a commit): a transaction that has begun keeps the setting it began with."""
    sync = _sync(session)
    began_with = sync.info.get(_DATABASE_BOUND_KEY, _UNBOUND)
    if began_with is not _UNBOUND and began_with != organization_id:
        raise TenancyError(
            "bind the organisation before the session's first statement, or commit first: "
            "the transaction in progress began without it"
        )
    sync.info[_ORG_KEY] = organization_id
    sync.info.pop(_UNSCOPED_KEY, None)


def bound_organization(session: AsyncSession | Session) -> uuid.UUID | None:
    organization_id: uuid.UUID | None = _sync(session).info.get(_ORG_KEY)
    return organization_id


def unscoped(session: AsyncSession | Session, *, reason: str) -> None:
    """Let `session` run ORM statements on tenant models with no organisation bound, on purpose.

    Nothing is filtered then. Row-level security still holds: under the application role an
    unscoped session sees no tenant rows at all, except those a policy shows it (an API key by
    its hash, see `present_api_key`). `reason` names the path, for readers and for errors."""
    if not reason.strip():
        raise ValueError("say why the session is unscoped")
    sync = _sync(session)
    if sync.info.get(_ORG_KEY) is not None:
        raise TenancyError("this session is bound to an organisation; use another session")
    sync.info[_UNSCOPED_KEY] = reason


def system_sessionmaker(engine: AsyncEngine, *, reason: str) -> async_sessionmaker[AsyncSession]:
    """Sessions that are `unscoped` from the start, for the system paths that cross
    organisations (give it the owner's engine: see the module docstring)."""
    if not reason.strip():
        raise ValueError("say why these sessions are unscoped")
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, info={_UNSCOPED_KEY: reason}
    )


async def present_api_key(session: AsyncSession, key_hash: str) -> None:
    """Make the ``api_key`` row with `key_hash` visible to this transaction (policy
    ``api_key_lookup``), whichever organisation it belongs to: how a key is authenticated
    before its organisation is known. Knowing the hash takes knowing the key."""
    await session.execute(
        text("SELECT set_config(:name, :value, true)"),
        {"name": API_KEY_HASH_SETTING, "value": key_hash},
    )


@asynccontextmanager
async def bind_connection(connection: Any, organization_id: uuid.UUID) -> AsyncIterator[None]:
    """Bind a raw asyncpg connection that one job holds to `organization_id` for the block.

    Every statement and transaction of the block runs with the organisation set; on the way out
    the setting is reset, and if that fails the connection is closed, so a pooled connection never
    carries an organisation to its next user."""
    if connection.is_in_transaction():
        raise TenancyError("bind a connection outside any transaction")
    await connection.execute(
        "SELECT set_config($1, $2, false)", ORGANIZATION_SETTING, str(organization_id)
    )
    try:
        yield
    finally:
        try:
            await connection.execute(f"RESET {ORGANIZATION_SETTING}")
        except BaseException:
            connection.terminate()  # the pool finds it closed and replaces it
            raise


# -------------------------------------------------------------------------------------- events


def _touches_tenant_rows(state: ORMExecuteState) -> bool:
    if any(issubclass(mapper.class_, TenantOwned) for mapper in state.all_mappers):
        return True
    # Every table anywhere in the statement: joins, aliases, subqueries, DML targets.
    statement: Any = state.statement
    tables = find_tables(statement, include_crud=True)
    return any("organization_id" in table.c for table in tables)


@event.listens_for(Session, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    organization_id = state.session.info.get(_ORG_KEY)
    if organization_id is None:
        if _UNSCOPED_KEY not in state.session.info and _touches_tenant_rows(state):
            raise TenancyError(
                "no organisation is bound to this session: bind_organization(session, ...) "
                "first, or opt out by name with unscoped(session, reason=...)"
            )
        return
    if state.is_column_load or state.is_relationship_load:
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
    if organization_id is None and _UNSCOPED_KEY not in session.info:
        touched = [
            type(obj).__name__
            for obj in (*session.new, *session.dirty, *session.deleted)
            if isinstance(obj, TenantOwned)
        ]
        if touched:
            raise TenancyError(
                f"no organisation is bound to this session, so it may not write "
                f"{', '.join(sorted(set(touched)))}"
            )
    for obj in session.new:
        if isinstance(obj, TenantOwned):
            if obj.organization_id is None:
                if organization_id is None:
                    raise TenancyError(f"{type(obj).__name__} created outside an organisation")
                obj.organization_id = organization_id
            elif organization_id is not None and obj.organization_id != organization_id:
                raise TenancyError("row stamped with another organisation")


@event.listens_for(Session, "after_begin")
def _set_database_organization(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    """Row-level security: the bound organisation, for this transaction only."""
    organization_id = session.info.get(_ORG_KEY)
    session.info[_DATABASE_BOUND_KEY] = organization_id
    if organization_id is not None:
        connection.execute(
            text("SELECT set_config(:name, :value, true)"),
            {"name": ORGANIZATION_SETTING, "value": str(organization_id)},
        )


@event.listens_for(Session, "after_transaction_end")
def _forget_database_organization(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_DATABASE_BOUND_KEY, None)
