"""Opaque cursor pagination: `?limit=&cursor=` in, `{"items", "next_cursor"}` and `Link` out."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel

from coherence_api.errors import InvalidInput

T = TypeVar("T")
P = TypeVar("P")

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


def encode_cursor(position: list[Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, parse: Callable[[list[Any]], P]) -> P | None:
    """The position in `cursor`, parsed by `parse`; a cursor we did not issue is a 422."""
    if cursor is None:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(position, list):
            raise ValueError(cursor)
        return parse(position)
    except (ValueError, TypeError, IndexError, KeyError):
        raise InvalidInput(
            "The cursor is not valid.",
            errors=[{"parameter": "cursor", "detail": "not a cursor returned by this API"}],
        ) from None


def page(
    items: list[T],
    *,
    limit: int,
    position_of: Any,
    request: Request,
    response: Response,
) -> Page[T]:
    """Build a page from `limit + 1` fetched rows; sets the `Link: rel="next"` header."""
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor(position_of(items[-1]))
        url = request.url.include_query_params(cursor=next_cursor, limit=limit)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return Page[T](items=items, next_cursor=next_cursor)


class Paging:
    """A list request's `limit` and `cursor`, and the page built from its rows."""

    def __init__(
        self,
        request: Request,
        response: Response,
        limit: LimitQuery = DEFAULT_LIMIT,
        cursor: CursorQuery = None,
    ) -> None:
        self.request = request
        self.response = response
        self.limit = limit
        self.cursor = cursor

    def after(self, parse: Callable[[list[Any]], P]) -> P | None:
        """The position after which this page starts (None on the first page)."""
        return decode_cursor(self.cursor, parse)

    def page(self, items: list[T], position_of: Callable[[T], list[Any]]) -> Page[T]:
        """`items` fetched with `limit + 1` rows → the page, `next_cursor` and `Link`."""
        return page(
            items,
            limit=self.limit,
            position_of=position_of,
            request=self.request,
            response=self.response,
        )


PagingDep = Annotated[Paging, Depends(Paging)]
