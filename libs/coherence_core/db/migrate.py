"""Apply the alembic migrations programmatically (used by `coherence run` and the tests)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[3]


def alembic_config(database_url: str, *, app_role: str | None = None) -> Config:
    """`database_url` is the schema owner's; `app_role` the application role to grant to."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["app_role"] = app_role
    return config


def upgrade(database_url: str, revision: str = "head", *, app_role: str | None = None) -> None:
    """Migrate to `revision` as the owner (`database_url`), granting `app_role` what the API and
    the worker need. Safe to call from inside a running event loop (runs in a thread)."""
    config = alembic_config(database_url, app_role=app_role)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(config, revision)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, config, revision).result()
