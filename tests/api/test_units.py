from __future__ import annotations

import httpx

from tests.api.support import Org


async def test_units_upsert_in_any_order_and_counts_changes(client: httpx.AsyncClient, org: Org):
    units = [
        {"external_id": "u-child", "name": "Child", "parent_external_id": "u-root"},
        {"external_id": "u-root", "name": "Root", "headcount": 40},
    ]
    first = await client.put("/v1/units", json={"units": units}, headers=org.headers)
    assert first.json() == {"created": 2, "updated": 0, "unchanged": 0}
    units[0]["name"] = "Child renamed"
    again = await client.put("/v1/units", json={"units": units}, headers=org.headers)
    assert again.json() == {"created": 0, "updated": 1, "unchanged": 1}
    one = await client.get("/v1/units/u-child", headers=org.headers)
    assert one.json() == {
        "external_id": "u-child",
        "name": "Child renamed",
        "parent_external_id": "u-root",
        "headcount": None,
    }
    assert (await client.get("/v1/units/u-nope", headers=org.headers)).status_code == 404


async def test_cycles_unknown_parents_and_duplicates_are_refused_whole(
    client: httpx.AsyncClient, org: Org
):
    units = [
        {"external_id": "a", "name": "A", "parent_external_id": "b"},
        {"external_id": "b", "name": "B", "parent_external_id": "a"},
        {"external_id": "c", "name": "C", "parent_external_id": "ghost"},
        {"external_id": "d", "name": "D"},
        {"external_id": "d", "name": "D again"},
    ]
    response = await client.put("/v1/units", json={"units": units}, headers=org.headers)
    assert response.status_code == 422
    pointers = sorted(e["pointer"] for e in response.json()["errors"])
    assert pointers == [
        "/units/0/parent_external_id",
        "/units/1/parent_external_id",
        "/units/2/parent_external_id",
        "/units/4/external_id",
    ]
    listed = await client.get("/v1/units", headers=org.headers)
    assert listed.json()["items"] == []  # nothing stored


async def test_a_move_that_closes_a_cycle_with_stored_units_is_refused(
    client: httpx.AsyncClient, org: Org
):
    await client.put(
        "/v1/units",
        json={
            "units": [
                {"external_id": "p", "name": "P"},
                {"external_id": "q", "name": "Q", "parent_external_id": "p"},
            ]
        },
        headers=org.headers,
    )
    response = await client.put(
        "/v1/units",
        json={"units": [{"external_id": "p", "name": "P", "parent_external_id": "q"}]},
        headers=org.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/units/0/parent_external_id"


async def test_ten_thousand_units_children_before_parents(client: httpx.AsyncClient, org: Org):
    units = [
        {"external_id": f"u{i:05d}", "name": f"Unit {i}", "parent_external_id": f"u{i // 10:05d}"}
        for i in range(1, 10_000)
    ]
    units.reverse()
    units.append({"external_id": "u00000", "name": "Root"})
    response = await client.put("/v1/units", json={"units": units}, headers=org.headers)
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 10_000
    page = await client.get("/v1/units?limit=1000", headers=org.headers)
    assert len(page.json()["items"]) == 1000 and page.json()["next_cursor"]


async def test_units_are_private_to_their_organisation(client: httpx.AsyncClient, org: Org):
    from tests.api.support import new_org

    other = await new_org(client)
    await client.put(
        "/v1/units", json={"units": [{"external_id": "x", "name": "X"}]}, headers=org.headers
    )
    assert (await client.get("/v1/units/x", headers=other.headers)).status_code == 404
    assert (await client.get("/v1/units", headers=other.headers)).json()["items"] == []
