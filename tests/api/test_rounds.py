from __future__ import annotations

import httpx

from tests.api.support import Org, new_org, open_round, put_units

TREE = [
    {"external_id": "root", "name": "Root"},
    {"external_id": "a", "name": "A", "parent_external_id": "root"},
    {"external_id": "a1", "name": "A1", "parent_external_id": "a"},
    {"external_id": "b", "name": "B", "parent_external_id": "root"},
]


async def test_open_get_list_close(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, TREE)
    created = await open_round(client, org)
    assert created["status"] == "open"
    assert created["instrument"] == "coherence-v1"
    assert created["units"] == 4
    assert created["scoring"] == {
        "status": "pending",
        "scored_version": None,
        "scored_at": None,
        "error": None,
    }
    got = await client.get(f"/v1/rounds/{created['id']}", headers=org.headers)
    assert got.json()["id"] == created["id"]
    await open_round(client, org, name="Autumn")
    listed = await client.get("/v1/rounds?limit=1", headers=org.headers)
    assert len(listed.json()["items"]) == 1 and listed.json()["next_cursor"]
    closed = await client.post(f"/v1/rounds/{created['id']}/close", headers=org.headers)
    assert closed.status_code == 202
    assert closed.json()["status"] == "closed"
    again = await client.post(f"/v1/rounds/{created['id']}/close", headers=org.headers)
    assert again.status_code == 409
    late = await client.post(
        f"/v1/rounds/{created['id']}/responses",
        json={"responses": [{"respondent": "p1", "unit": "a", "answers": {}}]},
        headers=org.headers,
    )
    assert late.status_code == 409


async def test_round_subset_freezes_the_tree(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, TREE)
    created = await open_round(client, org, units=["root", "a1", "b"])
    assert created["units"] == 3
    # Moving a unit later does not change the frozen round.
    await put_units(client, org, [{"external_id": "b", "name": "B", "parent_external_id": "a1"}])
    response = await client.post(
        f"/v1/rounds/{created['id']}/responses",
        json={"responses": [{"respondent": "p1", "unit": "a", "answers": {}}]},
        headers=org.headers,
    )
    assert response.status_code == 422  # 'a' is not in this round
    assert response.json()["errors"] == [
        {"pointer": "/responses/0/unit", "detail": "unit 'a' is not in this round"}
    ]


async def test_round_refuses_unknown_units_and_instruments(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, TREE)
    response = await client.post(
        "/v1/rounds", json={"name": "x", "units": ["a", "nope"]}, headers=org.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [{"pointer": "/units/1", "detail": "unknown unit 'nope'"}]
    response = await client.post(
        "/v1/rounds", json={"name": "x", "instrument": "nope"}, headers=org.headers
    )
    assert response.status_code == 404


async def test_another_organisations_key_gets_404_for_rounds(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, TREE)
    created = await open_round(client, org)
    other = await new_org(client)
    for method, path in (
        ("GET", f"/v1/rounds/{created['id']}"),
        ("POST", f"/v1/rounds/{created['id']}/close"),
        ("POST", f"/v1/rounds/{created['id']}/score"),
        ("GET", f"/v1/rounds/{created['id']}/results/summary"),
        ("GET", f"/v1/rounds/{created['id']}/results/units"),
    ):
        response = await client.request(method, path, headers=other.headers)
        assert response.status_code == 404, (method, path, response.text)
    response = await client.post(
        f"/v1/rounds/{created['id']}/responses",
        json={"responses": [{"respondent": "p1", "unit": "a", "answers": {}}]},
        headers=other.headers,
    )
    assert response.status_code == 404
    assert (await client.get("/v1/rounds", headers=other.headers)).json()["items"] == []


async def test_results_before_scoring_are_a_409_problem(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, TREE)
    created = await open_round(client, org)
    response = await client.get(f"/v1/rounds/{created['id']}/results/summary", headers=org.headers)
    assert response.status_code == 409
    assert response.json()["type"].endswith("/not-scored")


async def test_instruments_catalogue(client: httpx.AsyncClient, org: Org):
    listed = await client.get("/v1/instruments", headers=org.headers)
    keys = [i["key"] for i in listed.json()["items"]]
    assert keys == ["coherence-v1"]
    one = await client.get("/v1/instruments/coherence-v1", headers=org.headers)
    scales = {s["key"]: s for s in one.json()["scales"]}
    assert [len(s["items"]) for s in scales.values()] == [9, 9, 7]
    item = scales["psychological_safety"]["items"][0]
    assert item["reversed"] is True and set(item["text"]) >= {"en", "nb"}
