"""Request ids (header, problem bodies, log lines) and the access log."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from coherence_api.app import create_app
from coherence_core.logging import get_logger
from coherence_core.settings import Settings
from tests.api.support import Org
from tests.log_capture import captured_logs

NEW_ID = re.compile(r"^[0-9a-f]{32}$")


def request_id(response: httpx.Response) -> str:
    values = response.headers.get_list("X-Request-ID")
    assert len(values) == 1, values
    return values[0]


async def test_a_request_without_an_id_gets_a_new_one(client: httpx.AsyncClient):
    first, second = await client.get("/healthz"), await client.get("/healthz")
    assert NEW_ID.match(request_id(first)) and NEW_ID.match(request_id(second))
    assert request_id(first) != request_id(second)


@pytest.mark.parametrize("given", [str(uuid.uuid4()), uuid.uuid4().hex])
async def test_a_valid_id_is_echoed(client: httpx.AsyncClient, given: str):
    response = await client.get("/healthz", headers={"X-Request-ID": given})
    assert request_id(response) == given


@pytest.mark.parametrize(
    "given", ["not-an-id", "g" * 32, "1234", str(uuid.uuid4()) + "x", "<script>alert(1)</script>"]
)
async def test_a_malformed_id_is_replaced(client: httpx.AsyncClient, given: str):
    response = await client.get("/healthz", headers={"X-Request-ID": given})
    assert NEW_ID.match(request_id(response)) and request_id(response) != given


async def _problems(client: httpx.AsyncClient, org: Org, headers: dict[str, str]) -> dict:
    return {
        401: await client.get("/v1/units", headers=headers),
        404: await client.get("/v1/units/no-such-unit", headers={**org.headers, **headers}),
        "404 route": await client.get("/v1/no-such-thing", headers=headers),
        405: await client.delete("/v1/units", headers={**org.headers, **headers}),
        422: await client.post(
            "/v1/rounds", json={"name": 5, "units": "x"}, headers={**org.headers, **headers}
        ),
        "422 query": await client.get("/v1/units?limit=0", headers={**org.headers, **headers}),
    }


async def test_every_problem_carries_the_request_id(client: httpx.AsyncClient, org: Org):
    for case, response in (await _problems(client, org, {})).items():
        assert str(response.status_code) == str(case).split()[0], (case, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert NEW_ID.match(body["request_id"]) and body["request_id"] == request_id(response)


async def test_a_given_id_comes_back_in_the_problem(client: httpx.AsyncClient, org: Org):
    given = str(uuid.uuid4())
    for case, response in (await _problems(client, org, {"X-Request-ID": given})).items():
        assert response.json()["request_id"] == given == request_id(response), case


@pytest.fixture
async def failing_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The real app with two extra routes that log and then fail unexpectedly."""
    app = create_app(settings)

    @app.get("/test/fails/{thing}")
    async def fails(thing: str) -> None:
        logging.getLogger("some.library").warning("about to fail on %s", thing)
        get_logger("coherence_api.test").info("test.step", thing=thing)
        raise RuntimeError("kaput")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield app, client


async def test_an_unhandled_error_is_a_500_problem_with_the_request_id(failing_app):
    _, client = failing_app
    given = uuid.uuid4().hex
    with captured_logs() as logs:
        response = await client.get("/test/fails/this", headers={"X-Request-ID": given})
        anonymous = await client.get("/test/fails/that")
    assert response.status_code == 500
    assert response.json()["request_id"] == given == request_id(response)
    assert "kaput" not in response.text  # never a stack trace or an internal message
    assert anonymous.json()["request_id"] == request_id(anonymous)
    assert NEW_ID.match(request_id(anonymous))

    # (httpx, the test's client, logs after the response in the same context: not ours)
    ours = [
        line
        for line in logs.json_lines()
        if line.get("request_id") == given and line["logger"] != "httpx"
    ]
    by_event = {line["event"]: line for line in ours}
    assert set(by_event) == {
        "about to fail on this",
        "test.step",
        "http.unhandled_error",
        "http.request",
    }
    assert by_event["test.step"]["thing"] == "this"
    assert by_event["about to fail on this"]["logger"] == "some.library"
    assert "RuntimeError: kaput" in by_event["http.unhandled_error"]["exception"]
    assert by_event["http.request"]["status"] == 500
    assert by_event["http.request"]["level"] == "error"


async def test_each_request_leaves_one_json_access_line(client: httpx.AsyncClient, org: Org):
    given = str(uuid.uuid4())
    with captured_logs() as logs:
        await client.get("/v1/units/u-17", headers={**org.headers, "X-Request-ID": given})
        await client.get("/v1/units", headers=org.headers)
    lines = logs.json_lines()  # every line is one JSON object
    assert all({"timestamp", "level", "logger", "event"} <= set(line) for line in lines)
    access = [line for line in logs.events("http.request") if line["path"] == "/v1/units/u-17"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == given and line["logger"] == "coherence_api.access"
    assert line["method"] == "GET" and line["status"] == 404
    assert line["route"] == "/v1/units/{external_id}"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    other = [line for line in logs.events("http.request") if line["path"] == "/v1/units"]
    assert len(other) == 1 and other[0]["request_id"] not in (given, None)


async def test_probes_are_logged_at_debug_only(client: httpx.AsyncClient):
    with captured_logs("info") as logs:
        await client.get("/healthz")
    assert logs.events("http.request") == []
    with captured_logs("debug") as logs:
        await client.get("/healthz")
    assert [line["path"] for line in logs.events("http.request")] == ["/healthz"]


async def test_on_a_terminal_lines_are_for_people(client: httpx.AsyncClient, org: Org):
    given = uuid.uuid4().hex
    with captured_logs(tty=True) as logs:
        await client.get("/v1/units", headers={**org.headers, "X-Request-ID": given})
    text = logs.plain_text()
    assert "http.request" in text and f"request_id={given}" in text and "status=200" in text
    assert not any(line.lstrip().startswith("{") for line in text.splitlines())
    assert "\x1b[" in logs.getvalue()  # coloured


async def test_the_openapi_documents_request_ids(client: httpx.AsyncClient):
    spec = (await client.get("/openapi.json")).json()
    assert "X-Request-ID" in spec["info"]["description"]
    assert "X-Request-ID" in spec["components"]["headers"]
    problem = spec["components"]["schemas"]["Problem"]
    assert "request_id" in problem["properties"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    header_ref = {"$ref": "#/components/headers/X-Request-ID"}
    parameter_ref = {"$ref": "#/components/parameters/X-Request-ID"}
    operations = [op for item in spec["paths"].values() for op in item.values()]
    assert operations
    for operation in operations:
        assert parameter_ref in operation["parameters"]
        for status, response in operation["responses"].items():
            assert response["headers"]["X-Request-ID"] == header_ref, (operation, status)
            if status.startswith(("4", "5")):
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}
