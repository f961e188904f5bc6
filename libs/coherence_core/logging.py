"""One logging setup for every process (API, worker, `coherence run`): structlog over stdlib.

Our own code logs through structlog (`get_logger`) with an event name and fields; everything
else (uvicorn, arq, alembic, asyncio) logs through the standard library. Both end in one stderr
handler whose `structlog.stdlib.ProcessorFormatter` renders every line the same way: one JSON
object per line when stderr is not a terminal (containers, systemd, log shippers), and readable
coloured `key=value` lines on a terminal. Fields bound with `structlog.contextvars` (the request
id in the API, the round and job in the worker) appear on every line logged while bound.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from coherence_core.settings import Settings

#: Loggers that third-party libraries may have given handlers of their own (uvicorn's and arq's
#: default configs do): they are emptied and made to propagate to our root handler.
THIRD_PARTY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "arq")

#: Chatty at info about their own plumbing (pgserver's commands, alembic's plugins): shown from
#: debug on.
CHATTY_LOGGERS = ("pgserver", "alembic.runtime.plugins")

_HANDLER_NAME = "coherence"

#: What every line gets, whether it comes from structlog or from a stdlib logger.
_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _configure_structlog() -> None:
    """structlog hands its events to stdlib logging; the handler decides how they look."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


# Configured at import so that structlog events always reach stdlib logging (and so pytest's
# capture), also in processes that never call `configure_logging`.
_configure_structlog()


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named like a stdlib one (`get_logger(__name__)`)."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def parse_level(level: str | int) -> int:
    """`"info"`, `"DEBUG"`, `20` → a stdlib level number; anything else is a ValueError."""
    if isinstance(level, int):
        return level
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r} (use debug, info, warning or error)")
    return number


def wants_json(log_format: str, stream: TextIO) -> bool:
    """`json`, `console`, or `auto`: JSON unless `stream` is a terminal."""
    if log_format not in ("auto", "json", "console"):
        raise ValueError(f"unknown log format {log_format!r} (use auto, json or console)")
    if log_format == "auto":
        isatty = getattr(stream, "isatty", None)
        return not (isatty is not None and isatty())
    return log_format == "json"


#: Fields a JSON line starts with, so that people reading raw lines find them in one place.
LEADING_FIELDS = ("timestamp", "level", "logger", "event", "request_id")


def _drop_color_message(logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
    """uvicorn passes a coloured copy of its message as an `extra`: the message is enough."""
    event.pop("color_message", None)
    return event


def _leading_fields_first(logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
    leading = {key: event.pop(key) for key in LEADING_FIELDS if key in event}
    leading.update(event)
    return leading


def formatter(*, json: bool) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of our handler: JSON lines, or coloured key=value for people."""
    renderer: Processor
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json:
        final += [structlog.processors.format_exc_info, _leading_fields_first]
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False, default=str)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=True)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder(), _drop_color_message],
        processors=[*final, renderer],
    )


def configure_logging(
    level: str | int = "info", json: bool | None = None, *, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log line of this process to `stream` (stderr), as JSON when `json` is true,
    for people when false, and when None as JSON unless `stream` is a terminal.

    Adds one handler to the root logger (replacing the one an earlier call added) and makes
    uvicorn's and arq's loggers propagate to it. Returns the handler.
    """
    stream = stream if stream is not None else sys.stderr
    number = parse_level(level)
    if json is None:
        json = wants_json("auto", stream)
    _configure_structlog()
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter(json=json))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.NOTSET if number <= logging.DEBUG else logging.WARNING
        )
    for name in _third_party_loggers():
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    logging.captureWarnings(True)
    return handler


def configure_from_settings(settings: Settings) -> logging.Handler:
    """`configure_logging` with `COHERENCE_LOG_LEVEL` and `COHERENCE_LOG_FORMAT`: what every
    start path (`coherence run|api|worker`, the arq settings class) calls first."""
    return configure_logging(
        settings.log_level, wants_json(settings.log_format, sys.stderr), stream=sys.stderr
    )


def _third_party_loggers() -> list[str]:
    existing: dict[str, Any] = logging.root.manager.loggerDict
    return [
        *THIRD_PARTY_LOGGERS,
        *(
            name
            for name in existing
            if name.startswith(tuple(prefix + "." for prefix in THIRD_PARTY_LOGGERS))
            and name not in THIRD_PARTY_LOGGERS
        ),
    ]
