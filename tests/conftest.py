"""Session-wide services for the tests: one migrated database, one Redis, one queue name.

How real or embedded services are chosen is described in `tests/infra.py`.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra import forget_queue, in_thread, provide_postgres, provide_redis


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A plain postgresql:// URL to a database migrated to head, private to this session."""
    from coherence_core.db.migrate import upgrade

    with provide_postgres(tmp_path_factory.mktemp("embedded-postgres")) as url:
        in_thread(upgrade, url)
        yield url


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


@pytest.fixture(scope="session")
def admin_token() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture(scope="session")
def service_env(
    database_url: str,
    redis_url: str,
    admin_token: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """Point `get_settings()` (and so `create_app()` and the worker) at the test services."""
    from coherence_core.settings import get_settings

    state_dir: Path = tmp_path_factory.mktemp("state")
    values = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "COHERENCE_STATE_DIR": str(state_dir),
        "COHERENCE_ADMIN_TOKEN": admin_token,
        "COHERENCE_SECRET_KEY": secrets.token_urlsafe(32),
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield values
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
