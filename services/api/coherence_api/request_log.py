"""Request ids and the access log.

Every request gets an `X-Request-ID`: the caller's when it is a valid id (a UUID or 32 hex
digits, checked by `asgi-correlation-id`), else a new one. It is echoed in the response header,
put in every problem body (`errors.py`), bound into the log context so every line logged while
the request runs carries it, and written on the one access line each request leaves.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from asgi_correlation_id import CorrelationIdMiddleware, correlation_id
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coherence_core.logging import get_logger

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_DOC = (
    "Identifies the request in the service's logs. Send your own (a UUID or 32 hex digits) to "
    "correlate with your logs; anything else is replaced by a new id. Always echoed in the "
    "response and in problem bodies as `request_id`."
)
#: Probes and scrapes are logged at debug level, so that they do not drown the requests.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

log = get_logger("coherence_api.access")


def current_request_id() -> str | None:
    """The id of the request being handled (None outside a request)."""
    return correlation_id.get()


class AccessLogMiddleware:
    """Binds the request id into the log context and logs one `http.request` line per request:
    method, path, route template, status, duration. Runs inside `CorrelationIdMiddleware`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Each request runs in a task of its own under uvicorn: a fresh context.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=correlation_id.get())
        started = time.perf_counter()
        status = 500  # unless a response starts: an unhandled error becomes a 500 outside us

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            route = scope.get("route")
            path: str = scope["path"]
            emit = log.debug if path in QUIET_PATHS and status < 500 else log.info
            if status >= 500:
                emit = log.error
            emit(
                "http.request",
                method=scope["method"],
                path=path,
                route=getattr(route, "path", None),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )


def install_request_log(app: FastAPI) -> None:
    """Request ids outermost (so the access line has one), then the access log."""
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(CorrelationIdMiddleware, header_name=REQUEST_ID_HEADER)


def document_request_ids(schema: dict[str, Any]) -> None:
    """`X-Request-ID`: an optional parameter of every operation, a header of every response."""
    components = schema.setdefault("components", {})
    components.setdefault("headers", {})[REQUEST_ID_HEADER] = {
        "description": REQUEST_ID_DOC,
        "schema": {"type": "string"},
    }
    components.setdefault("parameters", {})[REQUEST_ID_HEADER] = {
        "name": REQUEST_ID_HEADER,
        "in": "header",
        "required": False,
        "description": REQUEST_ID_DOC,
        "schema": {"type": "string"},
    }
    header_ref = {"$ref": f"#/components/headers/{REQUEST_ID_HEADER}"}
    parameter_ref = {"$ref": f"#/components/parameters/{REQUEST_ID_HEADER}"}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            operation.setdefault("parameters", []).append(parameter_ref)
            for response in operation["responses"].values():
                response.setdefault("headers", {})[REQUEST_ID_HEADER] = header_ref
