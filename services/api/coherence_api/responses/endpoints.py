from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from coherence_api.deps import SessionDep, StateDep, WriterCaller
from coherence_api.idempotency import IdempotencyDep
from coherence_api.responses import parsing, service
from coherence_api.responses.schemas import ResponsesAccepted

router = APIRouter(prefix="/v1/rounds", tags=["responses"])

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
    idempotency: IdempotencyDep,
) -> Response:
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
    body = await parsing.read_body(request, max_bytes=settings.max_body_bytes)
    replay = await idempotency.claim(body)
    if replay is not None:
        return replay
    raws = parsing.parse_batch(request, body, max_responses=settings.max_batch_responses)
    result = await service.accept_batch(
        session,
        round_id=round_id,
        raws=raws,
        hasher=state.hasher,
        rescore_delay=settings.rescore_debounce,
    )
    return await idempotency.respond(result)
