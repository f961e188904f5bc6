"""Where a write commits: once its response is rendered, and before it is sent.

A write endpoint takes `WriteDep`, or `IdempotencyDep` (a write that honours `Idempotency-Key`),
and its router is built with `route_class=WriteRoute`. Once FastAPI has validated the endpoint's
return value against its `response_model` and rendered it, the route hands the response to the
request's write, which commits the transaction (an idempotent write first stores the response
with its key, in the same transaction). An exception before that rolls the whole request back:
the session closes without a commit.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.deps import SessionDep

W = TypeVar("W", bound="Write")


class Write:
    """A write request's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def finish(self, response: Response) -> None:
        """Called by `WriteRoute` with the rendered response, before it is sent."""
        await self.session.commit()


class WriteRoute(APIRoute):
    """Finishes the request's write (if it has one) with the rendered response."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            response = await handler(request)
            write: Write | None = getattr(request.state, "write", None)
            if write is not None:
                await write.finish(response)
            return response

        return handle


def begin(request: Request, write: W) -> W:
    """Make `write` the request's write, finished by its route."""
    if not isinstance(request.scope.get("route"), WriteRoute):
        raise RuntimeError(
            f"{request.method} {request.url.path} writes: build its router with "
            "route_class=WriteRoute, or nothing it does is committed"
        )
    request.state.write = write
    return write


async def get_write(request: Request, session: SessionDep) -> Write:
    return begin(request, Write(session))


WriteDep = Annotated[Write, Depends(get_write)]
