"""What every repository is: the queries of one domain, over one session's transaction.

Repository methods take keyword arguments only and never commit: the caller (a request's write,
or a worker job) owns the transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession


class Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
