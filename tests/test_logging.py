"""`coherence_core.logging`: one handler for our lines and every library's."""

from __future__ import annotations

import io
import logging
import logging.config

import pytest
import uvicorn.config
from arq.logs import default_log_config

from coherence_core.logging import configure_logging, get_logger, parse_level, wants_json
from tests.log_capture import LogStream, captured_logs, preserved_logging


def test_uvicorn_and_arq_loggers_end_in_the_one_handler():
    with preserved_logging():
        # what `uvicorn` and the `arq` command set up by themselves: handlers of their own
        logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
        logging.config.dictConfig(default_log_config(verbose=False))
        assert logging.getLogger("arq").handlers
        assert not logging.getLogger("uvicorn").propagate
        with captured_logs() as logs:
            logging.getLogger("uvicorn.error").info("Application startup complete.")
            logging.getLogger("uvicorn.error").info(
                "Started server process [%d]", 7, extra={"color_message": "\x1b[36m%d\x1b[0m"}
            )
            logging.getLogger("pgserver").info("Running commandline: initdb")
            logging.getLogger("arq.worker").info("Starting worker for %d functions", 2)
            get_logger("coherence_scoring.test").info("test.event", size=3)
            logging.getLogger("coherence_api.test").debug("not at info")
            # and nothing else writes them a second time, in another format
            assert not logging.getLogger("arq").handlers
            assert not logging.getLogger("uvicorn").handlers
    lines = logs.json_lines()
    assert [(line["logger"], line["event"], line["level"]) for line in lines] == [
        ("uvicorn.error", "Application startup complete.", "info"),
        ("uvicorn.error", "Started server process [7]", "info"),
        ("arq.worker", "Starting worker for 2 functions", "info"),
        ("coherence_scoring.test", "test.event", "info"),
    ]
    assert lines[3]["size"] == 3
    assert "color_message" not in lines[1]
    assert all(line["timestamp"].endswith("Z") for line in lines)


def test_configuring_twice_keeps_one_handler():
    with captured_logs() as first:
        handler = configure_logging("info", stream=first)
        try:
            ours = [h for h in logging.getLogger().handlers if h.get_name() == "coherence"]
            assert ours == [handler]
            get_logger("coherence_core.test").warning("once")
        finally:
            logging.getLogger().removeHandler(handler)
    assert [line["event"] for line in first.json_lines()] == ["once"]


def test_json_unless_a_terminal():
    assert wants_json("auto", LogStream(tty=False))
    assert not wants_json("auto", LogStream(tty=True))
    assert wants_json("json", LogStream(tty=True))
    assert not wants_json("console", io.StringIO())
    with pytest.raises(ValueError):
        wants_json("xml", io.StringIO())


def test_levels():
    assert parse_level("info") == parse_level("INFO") == logging.INFO
    assert parse_level("debug") == logging.DEBUG and parse_level(30) == 30
    with pytest.raises(ValueError):
        parse_level("loud")


def test_exceptions_are_one_field_of_the_line():
    with captured_logs() as logs:
        try:
            raise KeyError("missing")
        except KeyError:
            logging.getLogger("some.library").exception("it failed")
    (line,) = logs.json_lines()
    assert line["event"] == "it failed" and line["level"] == "error"
    assert "KeyError: 'missing'" in line["exception"]
