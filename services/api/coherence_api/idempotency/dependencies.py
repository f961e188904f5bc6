"""`Idempotency-Key` for writes, claimed in the same transaction as the write itself.

A request with a key takes a transaction-scoped advisory lock on (organisation, key): a second
request with the key while the first runs gets 409 at once. The claim row is inserted in the
write's transaction, and the rendered response is stored with it just before the commit
(`transactions.WriteRoute`), so either both the write and the stored response exist, or neither
does. A later replay with the same method, path and body gets the stored status and body back,
byte for byte (`Idempotent-Replayed: true`); with anything else, 422. Claims are kept for at least
`COHERENCE_IDEMPOTENCY_TTL_HOURS` (24) and pruned by the worker.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.deps import AnyCaller, SessionDep
from coherence_api.errors import Conflict, InvalidInput
from coherence_api.idempotency.repository import IdempotencyRepository
from coherence_api.transactions import Write, begin
from coherence_core.db.models import IdempotencyKey

HEADER_DOC = (
    "Makes the write safe to retry: a replay with the same body returns the original status and "
    "body; the same key with a different request is 422; while the first is running, 409."
)
REPLAYED = "Idempotent-Replayed"

KeyHeader = Annotated[str | None, Header(min_length=1, max_length=255, description=HEADER_DOC)]


class Replay(Exception):
    """The request repeats an earlier one: its stored response is sent again, as it was."""

    def __init__(self, stored: IdempotencyKey) -> None:
        self.stored = stored

    def response(self) -> Response:
        return Response(
            content=self.stored.response_body,
            status_code=self.stored.response_status or 200,
            media_type=self.stored.response_content_type,
            headers={REPLAYED: "true"},
        )


def request_hash(request: Request, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.url.path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


class Idempotency(Write):
    """A write that honours `Idempotency-Key` (without the header, a plain write)."""

    def __init__(
        self, *, session: AsyncSession, organization_id: uuid.UUID, key: str | None, hash_: str
    ) -> None:
        super().__init__(session)
        self.keys = IdempotencyRepository(session)
        self.organization_id = organization_id
        self.key = key
        self.request_hash = hash_

    async def claim(self) -> None:
        """Claim the key for this request; raises `Replay` when it was answered before."""
        if self.key is None:
            return
        if not await self.keys.try_lock(organization_id=self.organization_id, key=self.key):
            raise Conflict("A request with this Idempotency-Key is still being processed.")
        stored = await self.keys.get(key=self.key)
        if stored is None:
            await self.keys.claim(
                organization_id=self.organization_id, key=self.key, request_hash=self.request_hash
            )
        elif stored.request_hash != self.request_hash:
            raise InvalidInput(
                "This Idempotency-Key was used for a different request.",
                errors=[{"header": "Idempotency-Key", "detail": "reused with another body"}],
            )
        else:
            raise Replay(stored)

    async def finish(self, response: Response) -> None:
        """Store the rendered response with the claim, then commit."""
        if self.key is not None:
            await self.keys.complete(
                key=self.key,
                status=response.status_code,
                body=bytes(response.body),
                content_type=response.media_type,
            )
        await super().finish(response)


async def start_idempotent_write(
    request: Request, *, session: AsyncSession, caller: AnyCaller, key: str | None, body: bytes
) -> Idempotency:
    write = Idempotency(
        session=session,
        organization_id=caller.organization_id,
        key=key,
        hash_=request_hash(request, body),
    )
    await begin(request, write).claim()
    return write


async def json_body(request: Request) -> bytes:
    """The body FastAPI has read already (to parse the endpoint's model)."""
    return await request.body()


async def get_idempotency(
    request: Request,
    session: SessionDep,
    caller: AnyCaller,
    body: Annotated[bytes, Depends(json_body)],
    idempotency_key: KeyHeader = None,
) -> Idempotency:
    return await start_idempotent_write(
        request, session=session, caller=caller, key=idempotency_key, body=body
    )


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
