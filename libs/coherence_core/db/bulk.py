"""Bulk data paths: the asyncpg connection under a SQLAlchemy session, and COPY into tenant tables.

Postgres refuses ``COPY FROM`` into a table under row-level security ("COPY FROM not supported
with row-level security") for every role the policies apply to. `copy_to_table` therefore
copies into a temporary table of the connection's own — invisible to every other session, so it
needs no policy — and moves the rows with one ``INSERT … SELECT``, which the table's policy checks
row by row (``WITH CHECK``): a row of another organisation fails the whole statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def copy_to_table(
    connection: Any,
    table: str,
    *,
    columns: Sequence[str],
    source: Any = None,
    records: Iterable[Sequence[Any]] | None = None,
    **options: Any,
) -> None:
    """COPY `source` (asyncpg's ``copy_to_table``, with `options` such as ``format``) or
    `records` (``copy_records_to_table``) into `table`, under its row-level security policy.

    Call inside a transaction: the staging table empties itself at commit."""
    if not connection.is_in_transaction():
        raise RuntimeError("copy_to_table runs inside a transaction")
    if (source is None) == (records is None):
        raise ValueError("give either source or records")
    staging = f"{table}_copy_in"
    await connection.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_quote(staging)} "
        f"(LIKE {_quote(table)}) ON COMMIT DELETE ROWS"
    )
    if records is not None:
        await connection.copy_records_to_table(
            staging, records=records, columns=list(columns), schema_name="pg_temp"
        )
    else:
        await connection.copy_to_table(
            staging, source=source, columns=list(columns), schema_name="pg_temp", **options
        )
    names = ", ".join(_quote(c) for c in columns)
    # One round trip (no arguments: the simple query protocol takes both statements). The
    # TRUNCATE leaves the staging table empty for a second COPY in this transaction; it is
    # cheaper than emptying it with DELETE … RETURNING as the rows are moved.
    await connection.execute(
        f"INSERT INTO {_quote(table)} ({names}) SELECT {names} FROM pg_temp.{_quote(staging)}; "
        f"TRUNCATE pg_temp.{_quote(staging)}"
    )
