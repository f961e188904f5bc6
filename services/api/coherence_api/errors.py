"""RFC 9457 problem responses: every error leaves the service through here.

Business errors are exceptions that carry their status; one handler renders them. Validation
errors from FastAPI become the same 422 problem, with a JSON pointer per invalid field. Every
problem carries the request's `request_id` (the `X-Request-ID` header, see `request_log.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from coherence_api.request_log import REQUEST_ID_HEADER, current_request_id
from coherence_core.logging import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://coherence.example/problems/"
#: Most field errors listed in one problem; the rest are counted in `errors_truncated`.
MAX_ERRORS = 1000


def pointer(*parts: object) -> str:
    """A JSON pointer (RFC 6901) from path parts."""
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "".join("/" + p for p in escaped)


class Problem(Exception):
    status = 500
    title = "Internal server error"
    type_slug = "internal"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = list(errors) if errors is not None else None
        self.headers = headers

    def body(self, instance: str | None = None, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.type_slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if request_id:
            body["request_id"] = request_id
        if self.errors is not None:
            body["errors"] = self.errors[:MAX_ERRORS]
            if len(self.errors) > MAX_ERRORS:
                body["errors_truncated"] = len(self.errors) - MAX_ERRORS
        return body


class BadRequest(Problem):
    status, title, type_slug = 400, "Bad request", "bad-request"


class Unauthorized(Problem):
    status, title, type_slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(Problem):
    status, title, type_slug = 403, "Forbidden", "forbidden"


class NotFound(Problem):
    status, title, type_slug = 404, "Not found", "not-found"


class Conflict(Problem):
    status, title, type_slug = 409, "Conflict", "conflict"


class PayloadTooLarge(Problem):
    status, title, type_slug = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(Problem):
    status, title, type_slug = 415, "Unsupported media type", "unsupported-media-type"


class InvalidInput(Problem):
    status, title, type_slug = 422, "Invalid input", "invalid-input"


class ServiceUnavailable(Problem):
    status, title, type_slug = 503, "Service unavailable", "unavailable"


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    instance = request.url.path if request is not None else None
    return JSONResponse(
        problem.body(instance, current_request_id()),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def validation_errors(errors: Iterable[Any]) -> list[dict[str, Any]]:
    """FastAPI/pydantic errors → `{"pointer", "detail"}`; the location prefix becomes the root."""
    out = []
    for error in errors:
        loc = list(error.get("loc", ()))
        where = loc[0] if loc else "body"
        path = loc[1:] if where in ("body", "query", "path", "header") else loc
        entry: dict[str, Any] = {"pointer": pointer(*path), "detail": error.get("msg", "invalid")}
        if where in ("query", "path", "header"):
            entry = {"parameter": str(path[0]) if path else where, "detail": entry["detail"]}
        out.append(entry)
    return out


_STATUS_TO_PROBLEM: dict[int, type[Problem]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        InvalidInput,
        ServiceUnavailable,
    )
}


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc.errors())
        return problem_response(
            InvalidInput(f"{len(errors)} invalid field(s)", errors=errors), request
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = _STATUS_TO_PROBLEM.get(exc.status_code)
        if cls is None:
            problem = Problem(str(exc.detail))
            problem.status = exc.status_code
            problem.title = str(exc.detail)
            problem.type_slug = "http-" + str(exc.status_code)
        else:
            problem = cls(str(exc.detail) if exc.detail else None)
        return problem_response(problem, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette calls this outside every middleware, so the request id middleware cannot
        # add its header to this response: it is set here.
        request_id = current_request_id()
        log.exception(
            "http.unhandled_error",
            method=request.method,
            path=request.url.path,
            request_id=request_id,
        )
        problem = Problem(
            "An unexpected error occurred.", headers={REQUEST_ID_HEADER: request_id or ""}
        )
        return problem_response(problem, request)


#: The OpenAPI schema of every error body.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "An RFC 9457 problem (`application/problem+json`): every error is one.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The path of the request."},
        "request_id": {
            "type": "string",
            "description": "The request's `X-Request-ID` (yours, or the one the service gave "
            "it): quote it when asking about this error.",
        },
        "errors": {
            "type": "array",
            "description": "Every invalid field: a JSON `pointer` (with a `line` for NDJSON, "
            "a `line` and `column` for CSV) or a query/path/header `parameter`.",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {"type": "string"},
                    "parameter": {"type": "string"},
                    "line": {"type": "integer"},
                    "column": {"type": "string"},
                    "detail": {"type": "string"},
                },
                "required": ["detail"],
            },
        },
        "errors_truncated": {"type": "integer", "description": "Errors left out of `errors`."},
    },
}


def document_problems(schema: dict[str, Any]) -> None:
    """Error responses (4xx, 5xx) are documented as problems, in place of FastAPI's default
    `HTTPValidationError`, which this service never sends."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if str(status)[:1] in ("4", "5"):
                    response["content"] = content
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
