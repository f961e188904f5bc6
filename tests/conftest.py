"""Session-wide services for the tests: one migrated database, one Redis, one queue name.

How real or embedded services are chosen is described in `tests/infra.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
