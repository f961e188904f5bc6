from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.support import Org, open_round, put_units

UNITS = [{"external_id": "fin", "name": "Finance"}, {"external_id": "it", "name": "IT"}]


def response_for(respondent: str, unit: str = "fin", value: int = 4) -> dict:
    return {
        "respondent": respondent,
        "unit": unit,
        "answers": {"ps_safe_risk": value, "rl_frame_direction": 5, "ps_hard_to_ask_help": None},
        "about": {"fin": {"rc_timely": value, "rc_mutual_respect": 5}, "it": {"rc_timely": 2}},
    }


async def _count(engine: AsyncEngine, sql: str, **params: object) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(text(sql), params)).scalar_one()


async def test_valid_batch_is_stored_and_moves_input_version(
    client: httpx.AsyncClient, org: Org, admin_engine: AsyncEngine
):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    url = f"/v1/rounds/{round_['id']}/responses"
    body = {"responses": [response_for("hr-1"), response_for("hr-2", "it")]}
    response = await client.post(url, json=body, headers=org.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 2, "created": 2, "replaced": 0, "input_version": 1}
    engine = admin_engine
    assert (
        await _count(engine, "SELECT count(*) FROM answer WHERE round_id = :r", r=round_["id"])
        == 12
    )
    got = (await client.get(f"/v1/rounds/{round_['id']}", headers=org.headers)).json()
    assert got["respondents"] == 2 and got["input_version"] == 1
    assert got["scoring"]["status"] == "pending"


async def test_resubmission_replaces_the_earlier_answers(
    client: httpx.AsyncClient, org: Org, admin_engine: AsyncEngine
):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    url = f"/v1/rounds/{round_['id']}/responses"
    await client.post(url, json={"responses": [response_for("hr-1")]}, headers=org.headers)
    smaller = {"respondent": "hr-1", "unit": "it", "answers": {"ps_safe_risk": 1}}
    response = await client.post(url, json={"responses": [smaller]}, headers=org.headers)
    assert response.json() == {"accepted": 1, "created": 0, "replaced": 1, "input_version": 2}
    engine = admin_engine
    rows = await _count(engine, "SELECT count(*) FROM answer WHERE round_id = :r", r=round_["id"])
    assert rows == 1
    assert (
        await _count(engine, "SELECT unit_idx FROM respondent WHERE round_id = :r", r=round_["id"])
        == 1
    )  # moved to 'it' (units indexed by external id: fin=0, it=1)


async def test_invalid_batch_lists_every_error_and_stores_nothing(
    client: httpx.AsyncClient, org: Org, admin_engine: AsyncEngine
):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    url = f"/v1/rounds/{round_['id']}/responses"
    bad = {
        "responses": [
            response_for("hr-ok"),
            {
                "respondent": "hr-bad",
                "unit": "nowhere",
                "answers": {
                    "ps_safe_risk": 6,
                    "rc_timely": 3,
                    "no_such_item": 1,
                    "ps_raise_problems": "4",
                },
                "about": {"ghost": {"rc_timely": 3}, "it": {"ps_safe_risk": 2, "rc_accurate": 2.5}},
                "extra": True,
            },
            response_for("hr-ok"),
            {"unit": "fin"},
            "not an object",
        ]
    }
    response = await client.post(url, json=bad, headers=org.headers)
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["status"] == 422
    pointers = sorted(e["pointer"] for e in problem["errors"])
    assert pointers == sorted(
        [
            "/responses/1/extra",
            "/responses/1/unit",
            "/responses/1/answers/ps_safe_risk",
            "/responses/1/answers/rc_timely",
            "/responses/1/answers/no_such_item",
            "/responses/1/answers/ps_raise_problems",
            "/responses/1/about/ghost",
            "/responses/1/about/it/ps_safe_risk",
            "/responses/1/about/it/rc_accurate",
            "/responses/2/respondent",
            "/responses/3/respondent",
            "/responses/4",
        ]
    )
    assert all(e["detail"] for e in problem["errors"])
    engine = admin_engine
    assert (
        await _count(engine, "SELECT count(*) FROM answer WHERE round_id = :r", r=round_["id"]) == 0
    )
    assert (
        await _count(engine, "SELECT count(*) FROM respondent WHERE round_id = :r", r=round_["id"])
        == 0
    )
    got = (await client.get(f"/v1/rounds/{round_['id']}", headers=org.headers)).json()
    assert got["input_version"] == 0


async def test_malformed_bodies_are_problems_not_500s(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    url = f"/v1/rounds/{round_['id']}/responses"
    for body, status in (
        (b"{not json", 422),
        (b"[]", 422),
        (b'{"responses": {}}', 422),
        (b'{"responses": [], "x": 1}', 422),
    ):
        response = await client.post(
            url, content=body, headers={**org.headers, "content-type": "application/json"}
        )
        assert response.status_code == status, body
        assert response.json()["status"] == status
    xml = await client.post(
        url, content=b"<x/>", headers={**org.headers, "content-type": "application/xml"}
    )
    assert xml.status_code == 415


async def test_body_and_batch_limits(client: httpx.AsyncClient, org: Org, app):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    url = f"/v1/rounds/{round_['id']}/responses"
    settings = app.state.coherence.settings
    too_many = {
        "responses": [response_for(f"p{i}") for i in range(settings.max_batch_responses + 1)]
    }
    response = await client.post(url, json=too_many, headers=org.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/responses"
    huge = b'{"responses": [' + b" " * settings.max_body_bytes + b"]}"
    response = await client.post(
        url, content=huge, headers={**org.headers, "content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_raw_respondent_ids_are_never_stored(
    client: httpx.AsyncClient, org: Org, admin_engine: AsyncEngine
):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    marker = "hr-secret-person-4711"
    await client.post(
        f"/v1/rounds/{round_['id']}/responses",
        json={"responses": [response_for(marker)]},
        headers=org.headers,
    )
    engine = admin_engine
    async with engine.connect() as connection:
        dump = (
            await connection.execute(
                text("SELECT string_agg(r::text, ' ') FROM respondent r WHERE round_id = :r"),
                {"r": round_["id"]},
            )
        ).scalar_one()
    assert marker not in dump
    assert marker.encode().hex() not in dump


async def test_responses_need_the_write_scope(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    reader = await client.post(
        "/v1/api-keys", json={"name": "bi", "scopes": ["results:read"]}, headers=org.headers
    )
    headers = {"Authorization": f"Bearer {reader.json()['key']}"}
    response = await client.post(
        f"/v1/rounds/{round_['id']}/responses",
        json={"responses": [response_for("p")]},
        headers=headers,
    )
    assert response.status_code == 403
