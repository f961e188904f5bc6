from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from coherence_api.deps import AnyCaller, SessionDep, StateDep, WriterCaller
from coherence_api.idempotency.dependencies import (
    Idempotency,
    KeyHeader,
    start_idempotent_write,
)
from coherence_api.responses import parsing, service
from coherence_api.responses.schemas import ResponsesAccepted
from coherence_api.transactions import WriteRoute

router = APIRouter(prefix="/v1/rounds", tags=["responses"], route_class=WriteRoute)


async def batch_body(request: Request, state: StateDep) -> bytes:
    """The body, refused (413) as soon as it exceeds the limit, without buffering more."""
    return await parsing.read_body(request, max_bytes=state.settings.max_body_bytes)


BatchBody = Annotated[bytes, Depends(batch_body)]


async def batch_idempotency(
    request: Request,
    session: SessionDep,
    caller: AnyCaller,
    body: BatchBody,
    idempotency_key: KeyHeader = None,
) -> Idempotency:
    return await start_idempotent_write(
        request, session=session, caller=caller, key=idempotency_key, body=body
    )


_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ResponsesBatch"}},
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "One response object per line."}
            },
            "text/csv": {
                "schema": {
                    "type": "string",
                    "description": "Header respondent,unit,target,item,value; one answer per "
                    "row; empty target for items asked once, empty value for don't know.",
                }
            },
        },
    }
}


@router.post(
    "/{round_id}/responses",
    response_model=ResponsesAccepted,
    summary="Submit a batch of responses",
    openapi_extra=_BODY_DOC,
    responses={
        409: {"description": "The round is closed, or this Idempotency-Key is in use."},
        413: {"description": "The body exceeds the size limit (32 MiB by default)."},
        415: {"description": "Unsupported content type."},
        422: {"description": "Invalid batch: every error with a pointer; nothing stored."},
    },
)
async def submit_responses(
    round_id: uuid.UUID,
    request: Request,
    caller: WriterCaller,
    session: SessionDep,
    state: StateDep,
    idempotency: Annotated[Idempotency, Depends(batch_idempotency)],
    body: BatchBody,
) -> ResponsesAccepted:
    """Validates the whole batch against the round's instrument and frozen units, then stores
    it atomically: either every response is stored or none is.

    Bodies: `application/json` (`{"responses": [...]}`), `application/x-ndjson` (one response
    per line) or `text/csv` (header `respondent,unit,target,item,value`, one answer per row, the
    rows of one respondent together; empty `target` for items asked once, empty `value` for
    "don't know"). All three are validated by one code path and stored identically.

    Any invalid response gives one 422 problem listing every error (up to 1,000; the rest are
    counted in `errors_truncated`), each with a JSON pointer, or a `line` (and `pointer` within
    it for NDJSON, `column` for CSV). A respondent sending again replaces their earlier
    submission in this round; a respondent twice in one batch is a 422. Respondent ids are
    stored only as a keyed hash. A closed round answers 409. Limits: the body size limit
    (`COHERENCE_MAX_BODY_BYTES`, 32 MiB by default; 413) and `COHERENCE_MAX_BATCH_RESPONSES`
    (5,000 by default; 422). Send `Idempotency-Key` to make retries safe."""
    settings = state.settings
    raws = parsing.parse_batch(request, body, max_responses=settings.max_batch_responses)
    return await service.accept_batch(
        session,
        round_id=round_id,
        raws=raws,
        hasher=state.hasher,
        rescore_delay=settings.rescore_debounce,
    )
