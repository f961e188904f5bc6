"""`Idempotency-Key` for writes, claimed in the same transaction as the write itself.

A request with a key takes a transaction-scoped advisory lock on (organisation, key): a second
request with the key while the first runs gets 409 at once. The claim row is inserted in the
write's transaction and completed with the response before the commit, so either both the write
and the stored response exist, or neither does. A later replay with the same method, path and
body gets the stored status and body back (`Idempotent-Replayed: true`); with anything else, 422.
Claims are kept for at least `COHERENCE_IDEMPOTENCY_TTL_HOURS` (24) and pruned by the worker.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from coherence_api.deps import AnyCaller, SessionDep
from coherence_api.errors import Conflict, InvalidInput
from coherence_core.db.models import IdempotencyKey

HEADER_DOC = (
    "Makes the write safe to retry: a replay with the same body returns the original status and "
    "body; the same key with a different request is 422; while the first is running, 409."
)
REPLAYED = "Idempotent-Replayed"


def lock_id(organization_id: uuid.UUID, key: str) -> int:
    """The advisory-lock id that a request holding (organisation, key) takes."""
    digest = hashlib.sha256(organization_id.bytes + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Idempotency:
    def __init__(
        self, *, key: str | None, session: AsyncSession, caller: AnyCaller, request: Request
    ):
        self.key = key
        self.session = session
        self.organization_id = caller.organization_id
        self.request = request

    def _request_hash(self, body: bytes) -> str:
        digest = hashlib.sha256()
        digest.update(f"{self.request.method} {self.request.url.path}\n".encode())
        digest.update(body)
        return digest.hexdigest()

    async def claim(self, body: bytes | None = None) -> Response | None:
        """The stored response when this is a replay; else claims the key and returns None."""
        if self.key is None:
            return None
        if body is None:
            body = await self.request.body()
        request_hash = self._request_hash(body)
        locked = await self.session.scalar(
            select(func.pg_try_advisory_xact_lock(lock_id(self.organization_id, self.key)))
        )
        if not locked:
            raise Conflict("A request with this Idempotency-Key is still being processed.")
        stored = await self.session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.key == self.key)
        )
        if stored is not None:
            if stored.request_hash != request_hash:
                raise InvalidInput(
                    "This Idempotency-Key was used for a different request.",
                    errors=[{"header": "Idempotency-Key", "detail": "reused with another body"}],
                )
            return Response(
                content=stored.response_body,
                status_code=stored.response_status or 200,
                media_type=stored.response_content_type,
                headers={REPLAYED: "true"},
            )
        self.session.add(
            IdempotencyKey(
                organization_id=self.organization_id, key=self.key, request_hash=request_hash
            )
        )
        await self.session.flush()
        return None

    async def respond(self, result: BaseModel | None, status_code: int = 200) -> Response:
        """Store the response with the claim (if any), commit the write, and return it."""
        content = result.model_dump_json().encode() if result is not None else b""
        media_type = "application/json" if result is not None else None
        if self.key is not None:
            await self.session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == self.key)
                .values(
                    response_status=status_code,
                    response_body=content,
                    response_content_type=media_type,
                    completed_at=func.now(),
                )
            )
        await self.session.commit()
        return Response(content=content, status_code=status_code, media_type=media_type)


async def get_idempotency(
    request: Request,
    session: SessionDep,
    caller: AnyCaller,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=255, description=HEADER_DOC)
    ] = None,
) -> Idempotency:
    return Idempotency(key=idempotency_key, session=session, caller=caller, request=request)


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
