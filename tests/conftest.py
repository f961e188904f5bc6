"""Session-wide services for the tests: one migrated database, one Redis, one queue name.

How real or embedded services are chosen is described in `tests/infra.py`. The database has
three roles, as a deployment does: the API and the worker run as the application role
(`database_url`), the schema owner runs the migrations and the worker's sweeps
(`owner_database_url`), and a superuser (`admin_engine`) lets tests look at every organisation's
rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.infra import DatabaseRoles, forget_queue, in_thread, provide_postgres, provide_redis


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseRoles]:
    """A database migrated to head by its owner, private to this session, and its roles."""
    from coherence_core.db.migrate import upgrade
    from coherence_core.db.roles import app_role_of

    with provide_postgres(tmp_path_factory.mktemp("embedded-postgres")) as database:
        app_role = app_role_of(database.owner_url, database.app_url)
        in_thread(lambda: upgrade(database.owner_url, app_role=app_role))
        yield database


@pytest.fixture(scope="session")
def database_url(postgres: DatabaseRoles) -> str:
    """A plain postgresql:// URL as the application role (what the API and the worker use)."""
    return postgres.app_url


@pytest.fixture(scope="session")
def owner_database_url(postgres: DatabaseRoles) -> str:
    return postgres.owner_url


@pytest.fixture(scope="session")
async def admin_engine(postgres: DatabaseRoles) -> AsyncIterator[AsyncEngine]:
    """A superuser engine: sees every organisation's rows. For set-up and assertions only."""
    from coherence_core.db.session import create_engine

    engine = create_engine(postgres.admin_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def app_engine(postgres: DatabaseRoles) -> AsyncIterator[AsyncEngine]:
    """The application role's engine, as the API and the worker use it."""
    from coherence_core.db.session import create_engine

    engine = create_engine(postgres.app_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def owner_engine(postgres: DatabaseRoles) -> AsyncIterator[AsyncEngine]:
    """The schema owner's engine, as the worker's sweeps use it."""
    from coherence_core.db.session import create_engine

    engine = create_engine(postgres.owner_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis:// or unix:// URL; possibly shared with other runs, so use `queue_name`."""
    with provide_redis(tmp_path_factory.mktemp("embedded-redis")) as url:
        yield url


@pytest.fixture(scope="session")
def queue_name(redis_url: str) -> Iterator[str]:
    """An arq queue name of this session's own, so concurrent runs on one Redis stay apart."""
    name = f"coherence-test-{uuid.uuid4().hex[:12]}"
    yield name
    forget_queue(redis_url, name)
