"""Reading a responses body: size limit, content type, and parsing into `RawResponse`s."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from coherence_api.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from coherence_api.responses.validation import RawResponse, json_locator

JSON_TYPES = ("application/json",)


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The body, refusing (413) as soon as it exceeds `max_bytes`, without buffering more."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"The body is larger than the limit of {max_bytes} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"The body is larger than the limit of {max_bytes} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "application/json").split(";")[0].strip().lower()


def parse_json_batch(body: bytes, *, max_responses: int) -> list[RawResponse]:
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            "The body is not valid JSON.", errors=[{"pointer": "", "detail": str(exc)}]
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("responses"), list):
        raise InvalidInput(
            "The body must be an object with a 'responses' array.",
            errors=[{"pointer": "/responses", "detail": "required: an array of responses"}],
        )
    extra = [k for k in document if k != "responses"]
    if extra:
        raise InvalidInput(
            "Unknown fields in the body.",
            errors=[{"pointer": f"/{k}", "detail": "unknown field"} for k in extra],
        )
    responses = document["responses"]
    check_batch_size(len(responses), max_responses)
    return [RawResponse(r, json_locator("responses", i)) for i, r in enumerate(responses)]


def check_batch_size(count: int, max_responses: int) -> None:
    if count > max_responses:
        raise InvalidInput(
            f"The batch holds {count} responses; the limit is {max_responses} per request.",
            errors=[{"pointer": "/responses", "detail": f"at most {max_responses} responses"}],
        )


def parse_batch(request: Request, body: bytes, *, max_responses: int) -> list[RawResponse]:
    kind = media_type(request)
    if kind in JSON_TYPES:
        return parse_json_batch(body, max_responses=max_responses)
    raise UnsupportedMediaType(f"Send the batch as {', '.join(JSON_TYPES)}; got '{kind}'.")
