"""Database roles for row-level security: the application role, the owner, and start-up checks.

Two roles (see `coherence_core.db.tenancy` for the design):

- the **owner** owns the schema and runs the migrations (`COHERENCE_OWNER_DATABASE_URL`); the
  worker's outbox relay and expiry cron use it too. Embedded runs and a fresh server use the
  superuser for this.
- the **application role** (`coherence_app` by default; whatever `DATABASE_URL` names) is what
  the API and the worker run as: not superuser, not owner, not ``BYPASSRLS``. Roles are created
  outside the migrations (creating one takes ``CREATEROLE``); the migration that enables
  row-level security grants the role named by `DATABASE_URL` what it needs.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from coherence_core.db.session import asyncpg_dsn

log = logging.getLogger(__name__)

#: The application role `coherence run` creates for the embedded Postgres.
APP_ROLE = "coherence_app"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def url_for_role(database_url: str, role: str, password: str | None = None) -> str:
    """`database_url` with another user (and its password, or none)."""
    url = make_url(database_url).set(username=role, password=password)
    return url.render_as_string(hide_password=False)


def app_role_of(owner_url: str, app_url: str | None) -> str | None:
    """The application role to grant to: the user of `app_url` when it is not the owner."""
    if not app_url:
        return None
    app, owner = make_url(app_url).username, make_url(owner_url).username
    return app if app and app != owner else None


async def ensure_login_role(admin_url: str, role: str) -> None:
    """Create `role` as a plain login role (no superuser, no BYPASSRLS) unless it exists.
    `admin_url` needs CREATEROLE; concurrent callers are fine."""
    connection = await asyncpg.connect(asyncpg_dsn(admin_url), timeout=10)
    try:
        if await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            return
        # Concurrent callers: one creates it, the others find it created meanwhile.
        with contextlib.suppress(asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            await connection.execute(
                f"CREATE ROLE {quote_ident(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                "NOREPLICATION NOBYPASSRLS"
            )
    finally:
        await connection.close()


@dataclass(frozen=True)
class RoleFacts:
    role: str
    superuser: bool
    bypassrls: bool
    #: owns (or may act as the owner of) a tenant table: could switch row-level security off
    owner: bool
    #: may read every organisation's outbox rows (the relay's and the expiry cron's needs)
    sweeps: bool

    @property
    def held_to_policies(self) -> bool:
        return not (self.superuser or self.bypassrls)


_ROLE_FACTS = """
SELECT current_user AS role, r.rolsuper AS superuser, r.rolbypassrls AS bypassrls,
       EXISTS (SELECT 1 FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
               WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
                 AND a.attname = 'organization_id' AND NOT a.attisdropped
                 AND pg_has_role(current_user, c.relowner, 'USAGE')) AS owner,
       r.rolsuper OR r.rolbypassrls OR EXISTS (
           SELECT 1 FROM pg_policy p, unnest(p.polroles) AS target(oid)
           WHERE p.polrelid = to_regclass('outbox') AND p.polname = 'owner_sweep'
             AND (target.oid = 0 OR pg_has_role(current_user, target.oid, 'USAGE')))
       OR coalesce((SELECT NOT c.relrowsecurity FROM pg_class c
                    WHERE c.oid = to_regclass('outbox')), true) AS sweeps
FROM pg_roles r WHERE r.rolname = current_user
"""


async def role_facts(engine: AsyncEngine) -> RoleFacts:
    async with engine.connect() as connection:
        row = (await connection.execute(text(_ROLE_FACTS))).one()
    return RoleFacts(**row._asdict())


async def check_application_role(engine: AsyncEngine) -> RoleFacts | None:
    """Warn when the API's or the worker's role is not held to row-level security."""
    try:
        facts = await role_facts(engine)
    except (OSError, OperationalError, DBAPIError) as error:  # down now: the app retries later
        log.warning("could not check the database role: %r", error)
        return None
    if not facts.held_to_policies:
        log.warning(
            "DATABASE_URL connects as %r, a superuser or BYPASSRLS role: row-level security "
            "does not apply. Connect as an application role (see README, 'Tenancy').",
            facts.role,
        )
    elif facts.owner:
        log.warning(
            "DATABASE_URL connects as %r, the tables' owner: row-level security holds (it is "
            "forced), but this role could switch it off. Connect as an application role and "
            "give the owner to COHERENCE_OWNER_DATABASE_URL (see README, 'Tenancy').",
            facts.role,
        )
    return facts


async def check_sweeping_role(engine: AsyncEngine) -> None:
    """Refuse to start a relay whose role would see no organisation's outbox rows."""
    try:
        facts = await role_facts(engine)
    except (OSError, OperationalError, DBAPIError) as error:
        log.warning("could not check the owner's database role: %r", error)
        return
    if not facts.sweeps:
        raise RuntimeError(
            f"COHERENCE_OWNER_DATABASE_URL (or DATABASE_URL) connects as {facts.role!r}, which "
            "row-level security keeps from the outbox of every organisation: set it to the role "
            "that owns the schema and ran the migrations."
        )
