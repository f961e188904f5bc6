"""Capture what `configure_logging` writes, and put the process's logging back afterwards."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from coherence_core.logging import CHATTY_LOGGERS, THIRD_PARTY_LOGGERS, configure_logging

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class LogStream(io.StringIO):
    """A buffer that says whether it is a terminal, as `configure_logging` asks."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def json_lines(self) -> list[dict[str, Any]]:
        """Every line, parsed: fails if any line is not one JSON object."""
        lines = [json.loads(line) for line in self.getvalue().splitlines() if line.strip()]
        assert all(isinstance(line, dict) for line in lines)
        return lines

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.json_lines() if line.get("event") == event]

    def plain_text(self) -> str:
        return ANSI.sub("", self.getvalue())


@contextmanager
def preserved_logging() -> Iterator[None]:
    """Restore the root level and the loggers `configure_logging` changes as they were (pytest's
    own capture handlers on the root logger are left alone)."""
    root = logging.getLogger()
    names = [
        name
        for name in [*logging.root.manager.loggerDict, *THIRD_PARTY_LOGGERS]
        if name.split(".")[0] in THIRD_PARTY_LOGGERS
    ] + list(CHATTY_LOGGERS)
    saved = {
        name: (list(lg.handlers), lg.propagate, lg.level, lg.disabled)
        for name in names
        if isinstance(lg := logging.getLogger(name), logging.Logger)
    }
    root_level = root.level
    try:
        yield
    finally:
        root.setLevel(root_level)
        for name, (handlers, propagate, level, disabled) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.propagate, logger.level, logger.disabled = propagate, level, disabled
        logging.captureWarnings(False)


@contextmanager
def captured_logs(level: str = "info", *, tty: bool = False) -> Iterator[LogStream]:
    """`configure_logging(level)` (format chosen by the stream) writing into a buffer."""
    stream = LogStream(tty)
    with preserved_logging():
        handler = configure_logging(level, stream=stream)
        try:
            yield stream
        finally:
            logging.getLogger().removeHandler(handler)
