"""Bulk data paths: the asyncpg connection under a SQLAlchemy session, for COPY."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def raw_connection(session: AsyncSession) -> Any:
    """The asyncpg connection of the session's current transaction (COPY runs inside it)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection
