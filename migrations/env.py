"""Alembic environment: async (asyncpg), as the schema owner.

The URL comes from the config (`coherence migrate` sets it), else `COHERENCE_OWNER_DATABASE_URL`,
else `DATABASE_URL`. The application role to grant to is the `app_role` attribute, else the user
of `DATABASE_URL` when that is not the owner (coherence_core.db.roles.app_role_of).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import coherence_core.db.models  # noqa: F401  (registers every table)
from coherence_core.db.base import Base
from coherence_core.db.roles import app_role_of
from coherence_core.db.session import sqlalchemy_url
from coherence_core.settings import get_settings

config = context.config
# Logging is left to the host process (the CLI, the tests): alembic.ini configures none.

target_metadata = Base.metadata


def _plain_url() -> str:
    url = config.get_main_option("sqlalchemy.url") or get_settings().owner_url
    if not url:
        raise RuntimeError("set COHERENCE_OWNER_DATABASE_URL or DATABASE_URL to migrate")
    return url


def _url() -> str:
    return sqlalchemy_url(_plain_url())


if "app_role" not in config.attributes:  # run by the alembic command line
    config.attributes["app_role"] = app_role_of(_plain_url(), get_settings().database_url)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
