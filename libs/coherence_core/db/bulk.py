"""Bulk data paths: the asyncpg connection under a SQLAlchemy session, for COPY."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


async def raw_connection(session: AsyncSession) -> Any:
    """The asyncpg connection of the session's current transaction (COPY runs inside it)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def driver_connection(connection: AsyncConnection) -> Any:
    """The asyncpg connection under `connection`, outside SQLAlchemy's implicit transaction:
    the caller begins and ends its own transactions on it."""
    raw = await connection.get_raw_connection()
    await connection.rollback()
    return raw.driver_connection
