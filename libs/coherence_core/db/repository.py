"""What every repository is: the queries of one domain, over one session's transaction.

Repository methods take keyword arguments only and never commit: the caller (a request's write,
or a worker job) owns the transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


class Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session


class ConnectionRepository:
    """A repository over a bare asyncpg connection (the worker's bulk paths: COPY in and out)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
