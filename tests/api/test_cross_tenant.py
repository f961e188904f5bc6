"""Cross-tenant access, generated from /openapi.json: organisation A's admin key against B's ids.

Every operation with path parameters is called with A's key and B's ids (B's rounds, units, API
key, instrument; B's rounds in id query parameters too, and then with A's own round in the path)
and must answer 404; every list must hold none of B's rows. An operation added later is covered
by itself; a new kind of path parameter fails the test until B gets an id for it.

It runs with both layers of tenancy, with each alone — the ORM filter switched off (row-level
security alone), and the API connected as a superuser (the ORM filter alone) — and, to show it
can fail, with neither, where B's rows do leak.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.orm import Session

from coherence_api.app import create_app
from coherence_core.db import tenancy
from coherence_core.db.roles import role_facts
from coherence_core.db.session import create_engine
from coherence_core.settings import Settings
from tests.api.support import Org, new_org, open_round, put_units, run_scoring
from tests.infra import DatabaseRoles

INSTRUMENT = {
    "name": {"en": "Pulse"},
    "scales": [
        {
            "key": "climate",
            "targeting": "self",
            "response_min": 1,
            "response_max": 5,
            "items": [{"key": "cl_safe", "text": {"en": "I feel safe."}}],
        }
    ],
}


@dataclass
class World:
    a: Org
    b: Org
    #: path and query parameter → A's own value / B's value
    a_ids: dict[str, str]
    b_ids: dict[str, str]
    #: strings only B's rows contain: no answer to A may hold one
    b_markers: list[str] = field(default_factory=list)


def _people(unit: str, n: int = 4) -> dict[str, Any]:
    return {
        "responses": [
            {
                "respondent": f"p-{unit}-{i}",
                "unit": unit,
                "answers": {"ps_safe_risk": 4, "ps_raise_problems": 3, "rl_frame_direction": 5},
                "about": {unit: {"rc_timely": 4, "rc_shared_goals": 3}},
            }
            for i in range(n)
        ]
    }


async def _scored_round(client: httpx.AsyncClient, org: Org, unit: str, *, close: bool) -> str:
    round_id: str = (await open_round(client, org))["id"]
    response = await client.post(
        f"/v1/rounds/{round_id}/responses", json=_people(unit), headers=org.headers
    )
    assert response.status_code == 200, response.text
    if close:
        assert (
            await client.post(f"/v1/rounds/{round_id}/close", headers=org.headers)
        ).status_code == 202
    return round_id


async def build_world(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, queue_name: str
) -> World:
    tag = secrets.token_hex(4)
    a = await new_org(client, min_group_size=3)
    b = await new_org(client, min_group_size=3)
    await put_units(client, a, [{"external_id": f"a-{tag}", "name": "A's unit"}])
    b_unit = f"b-unit-{tag}"
    await put_units(client, b, [{"external_id": b_unit, "name": "B's unit"}])
    b_instrument = f"b-pulse-{tag}"
    created = await client.post(
        "/v1/instruments", json={"key": b_instrument, **INSTRUMENT}, headers=b.headers
    )
    assert created.status_code == 201, created.text
    b_key = await client.post(
        "/v1/api-keys", json={"name": f"b-key-{tag}", "scopes": ["results:read"]}, headers=b.headers
    )
    assert b_key.status_code == 201, b_key.text
    a_round = await _scored_round(client, a, f"a-{tag}", close=True)
    b_final = await _scored_round(client, b, b_unit, close=True)
    b_open = await _scored_round(client, b, b_unit, close=False)
    await run_scoring(app, settings, queue_name)
    for org, round_id in ((a, a_round), (b, b_final)):
        got = (await client.get(f"/v1/rounds/{round_id}", headers=org.headers)).json()
        assert got["scoring"]["status"] == "scored", got
    return World(
        a=a,
        b=b,
        a_ids={"round_id": a_round, "since": a_round},
        b_ids={
            "round_id": b_final,
            "since": b_open,
            "key_id": b_key.json()["id"],
            "external_id": b_unit,
            "key": b_instrument,
        },
        b_markers=[b.id, b_final, b_open, b_key.json()["id"], b_unit, b_instrument, f"b-key-{tag}"],
    )


# ---------------------------------------------------------------------------- the generated calls


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    path_params: tuple[str, ...]
    required_query: tuple[str, ...]
    query: tuple[str, ...]
    has_body: bool

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


METHODS = ("get", "put", "post", "delete", "patch")


def _resolved(spec: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """`item`, or what its `$ref` (``#/components/...``) points at."""
    while "$ref" in item:
        target: Any = spec
        for part in item["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        item = target
    return item


def operations(spec: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method not in METHODS:
                continue
            params = [_resolved(spec, p) for p in [*shared, *op.get("parameters", [])]]
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    path_params=tuple(p["name"] for p in params if p["in"] == "path"),
                    required_query=tuple(
                        p["name"] for p in params if p["in"] == "query" and p.get("required")
                    ),
                    query=tuple(p["name"] for p in params if p["in"] == "query"),
                    has_body="requestBody" in op,
                )
            )
    return found


def _body(operation: Operation, world: World) -> dict[str, Any] | None:
    if not operation.has_body:
        return None
    if operation.path.endswith("/responses"):
        return _people(world.b_ids["external_id"], n=1)
    raise AssertionError(f"{operation}: give this operation a request body in this test")


def _ids(names: tuple[str, ...], ids: dict[str, str], operation: Operation) -> dict[str, str]:
    missing = [n for n in names if n not in ids]
    assert not missing, f"{operation}: give B an id for {missing} in build_world"
    return {n: ids[n] for n in names}


async def _call(
    client: httpx.AsyncClient,
    operation: Operation,
    world: World,
    path_ids: dict[str, str],
    query_ids: dict[str, str],
) -> httpx.Response:
    url = re.sub(r"\{(\w+)\}", lambda m: path_ids[m.group(1)], operation.path)
    return await client.request(
        operation.method,
        url,
        params=query_ids,
        json=_body(operation, world),
        headers=world.a.headers,
    )


async def cross_tenant_answers(client: httpx.AsyncClient, world: World) -> dict[str, int]:
    """Status per call of A with B's ids: every operation with a path parameter with B's ids
    everywhere, and every operation with an id query parameter with A's ids in the path."""
    spec = (await client.get("/openapi.json")).json()
    answers: dict[str, int] = {}
    for operation in operations(spec):
        if not operation.path_params:
            continue
        path_ids = _ids(operation.path_params, world.b_ids, operation)
        query_ids = _ids(operation.required_query, world.b_ids, operation)
        response = await _call(client, operation, world, path_ids, query_ids)
        answers[f"{operation} with B's ids"] = response.status_code
        if operation.required_query:
            a_path = _ids(operation.path_params, world.a_ids, operation)
            response = await _call(client, operation, world, a_path, query_ids)
            answers[f"{operation} with A's path and B's {operation.required_query}"] = (
                response.status_code
            )
    return answers


async def listed_leaks(client: httpx.AsyncClient, world: World) -> dict[str, list[str]]:
    """B's markers found in A's answers from every list (a GET with no path parameter)."""
    spec = (await client.get("/openapi.json")).json()
    leaks: dict[str, list[str]] = {}
    for operation in operations(spec):
        if operation.method != "GET" or operation.path_params or operation.path[:4] != "/v1/":
            continue
        limit = {"limit": 1000} if "limit" in operation.query else {}
        response = await client.get(operation.path, params=limit, headers=world.a.headers)
        assert response.status_code in (200, 401), (str(operation), response.text)
        if response.status_code == 200:
            found = [marker for marker in world.b_markers if marker in response.text]
            if found:
                leaks[str(operation)] = found
    return leaks


async def assert_b_untouched(client: httpx.AsyncClient, world: World) -> None:
    keys = (await client.get("/v1/api-keys", headers=world.b.headers)).json()["items"]
    assert keys and all(k["revoked_at"] is None for k in keys)
    final = await client.get(f"/v1/rounds/{world.b_ids['round_id']}", headers=world.b.headers)
    assert final.json()["status"] == "closed"
    still_open = await client.get(f"/v1/rounds/{world.b_ids['since']}", headers=world.b.headers)
    assert still_open.json()["status"] == "open" and still_open.json()["input_version"] == 1


# ------------------------------------------------------------------------------------- variants


@contextlib.contextmanager
def orm_filter_off() -> Iterator[None]:
    """Switch off the ORM layer of tenancy (the statement filter and the unbound-session guard);
    each transaction still sets its organisation for row-level security."""
    event.remove(Session, "do_orm_execute", tenancy._scope_statement)
    try:
        yield
    finally:
        event.listen(Session, "do_orm_execute", tenancy._scope_statement)


@contextlib.asynccontextmanager
async def superuser_client(settings: Settings, postgres: DatabaseRoles) -> AsyncIterator[Any]:
    """The API connected as a superuser: row-level security does not hold it."""
    application = create_app(settings.model_copy(update={"database_url": postgres.admin_url}))
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        ) as http,
    ):
        yield http


@pytest.fixture(autouse=True)
def _separate_roles(postgres: DatabaseRoles) -> None:
    if not postgres.separate_roles:
        pytest.skip("TEST_DATABASE_URL gives one role: nothing to hold to row-level security")


@pytest.fixture(scope="module")
async def world(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, queue_name: str
) -> World:
    return await build_world(client, app, settings, queue_name)


@pytest.mark.parametrize(
    "layers", ["orm filter and row-level security", "row-level security", "orm filter"]
)
async def test_organisation_a_reaches_none_of_bs_rows(
    layers: str,
    world: World,
    client: httpx.AsyncClient,
    settings: Settings,
    postgres: DatabaseRoles,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        http = client
        if layers == "row-level security":
            stack.enter_context(orm_filter_off())
        elif layers == "orm filter":
            http = await stack.enter_async_context(superuser_client(settings, postgres))
        answers = await cross_tenant_answers(http, world)
        leaks = await listed_leaks(http, world)
    assert len(answers) >= 13, answers  # the generator found the operations
    assert {call: status for call, status in answers.items() if status != 404} == {}
    assert leaks == {}
    await assert_b_untouched(client, world)


async def test_with_neither_layer_b_leaks_so_the_test_above_can_fail(
    client: httpx.AsyncClient,
    app: FastAPI,
    settings: Settings,
    queue_name: str,
    postgres: DatabaseRoles,
) -> None:
    fresh = await build_world(client, app, settings, queue_name)
    async with superuser_client(settings, postgres) as http:
        with orm_filter_off():
            answers = await cross_tenant_answers(http, fresh)
            leaks = await listed_leaks(http, fresh)
    reached = {call for call, status in answers.items() if status < 400}
    assert "GET /v1/rounds/{round_id} with B's ids" in reached
    assert "GET /v1/rounds" in leaks and "GET /v1/units" in leaks


async def test_the_api_and_the_worker_connect_as_the_application_role(
    app: FastAPI, settings: Settings, postgres: DatabaseRoles
) -> None:
    assert settings.database_url
    worker = create_engine(settings.database_url, pool_size=1)  # what create_worker uses
    try:
        for engine in (app.state.coherence.engine, worker):
            facts = await role_facts(engine)
            assert facts.held_to_policies and not facts.owner, facts
    finally:
        await worker.dispose()
