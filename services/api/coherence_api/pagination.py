"""Opaque keyset pagination: `?limit=&cursor=` in, `{"items", "next_cursor"}` and `Link` out.

Each list's order is one `Keyset`, declared once beside its query in the domain's repository:
the model columns it sorts by. The repository fetches a page with it, and the next page's cursor
is the last row's values of those columns; endpoints only pass cursors through.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from coherence_api.errors import InvalidInput

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S", bound=Select[*tuple[Any, ...]])

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

LimitQuery = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (default {DEFAULT_LIMIT}).")
]
CursorQuery = Annotated[
    str | None, Query(description="The `next_cursor` of the previous page.", max_length=2000)
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class PageRequest:
    """What a list request asks for: the page after `cursor` (None: the first), `limit` rows."""

    cursor: str | None
    limit: int


@dataclass(frozen=True)
class Rows(Generic[R]):
    """One page of rows, and the cursor of the page after it (None on the last page)."""

    items: list[R]
    next_cursor: str | None


def _invalid_cursor() -> InvalidInput:
    return InvalidInput(
        "The cursor is not valid.",
        errors=[{"parameter": "cursor", "detail": "not a cursor returned by this API"}],
    )


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _load(value: Any, kind: type) -> Any:
    if kind is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if kind is uuid.UUID and isinstance(value, str):
        return uuid.UUID(value)
    if kind in (str, bool, int) and type(value) is kind:
        return value
    raise ValueError(value)


class Keyset:
    """A list's sort key: model columns, compared as a row. `collation` applies to its strings."""

    def __init__(self, *columns: InstrumentedAttribute[Any], collation: str | None = None) -> None:
        self.names = tuple(column.key for column in columns)
        self.kinds = tuple(column.type.python_type for column in columns)
        self.model = columns[0].class_
        self.collation = collation

    def columns(self, entity: Any = None) -> list[ColumnElement[Any]]:
        """The key's columns on the model, or on `entity` (an alias of it)."""
        source = self.model if entity is None else entity
        out = []
        for name, kind in zip(self.names, self.kinds, strict=True):
            column = getattr(source, name)
            out.append(column.collate(self.collation) if self.collation and kind is str else column)
        return out

    def decode(self, cursor: str | None) -> tuple[Any, ...] | None:
        """The position a cursor points after; a cursor we did not issue is a 422."""
        if cursor is None:
            return None
        try:
            position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if not isinstance(position, list) or len(position) != len(self.names):
                raise ValueError(cursor)
            return tuple(_load(v, k) for v, k in zip(position, self.kinds, strict=True))
        except (ValueError, TypeError):
            raise _invalid_cursor() from None

    def encode(self, row: Any) -> str:
        position = [_dump(getattr(row, name)) for name in self.names]
        raw = json.dumps(position, separators=(",", ":"), default=str).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def select(self, statement: S, page: PageRequest, *, entity: Any = None) -> S:
        """`statement` in key order, after the cursor's position, with one row beyond the page
        (to tell whether another page follows)."""
        columns = self.columns(entity)
        after = self.decode(page.cursor)
        if after is not None:
            statement = statement.where(tuple_(*columns) > after)
        return statement.order_by(*columns).limit(page.limit + 1)

    def rows(
        self, fetched: Sequence[R], page: PageRequest, key: Callable[[R], Any] = lambda r: r
    ) -> Rows[R]:
        """The page of `fetched` (selected with `select`); `key` finds the keyed row in each."""
        items = list(fetched[: page.limit])
        more = len(fetched) > page.limit
        return Rows(items, self.encode(key(items[-1])) if more else None)

    async def page(
        self, session: AsyncSession, statement: Select[Any], page: PageRequest
    ) -> Rows[Any]:
        """One page of ORM rows of `statement` (a select of the keyset's model)."""
        fetched = (await session.scalars(self.select(statement, page))).all()
        return self.rows(fetched, page)


class Paging:
    """A list request's `limit` and `cursor`, and the page built from the rows fetched."""

    def __init__(
        self,
        request: Request,
        response: Response,
        limit: LimitQuery = DEFAULT_LIMIT,
        cursor: CursorQuery = None,
    ) -> None:
        self.request = request
        self.response = response
        self.asked = PageRequest(cursor=cursor, limit=limit)

    def page(self, items: list[T], next_cursor: str | None) -> Page[T]:
        """The page body; sets `Link: rel="next"` when another page follows."""
        if next_cursor is not None:
            url = self.request.url.include_query_params(cursor=next_cursor, limit=self.asked.limit)
            self.response.headers["Link"] = f'<{url}>; rel="next"'
        return Page[T](items=items, next_cursor=next_cursor)


PagingDep = Annotated[Paging, Depends(Paging)]
