from __future__ import annotations

import httpx

from tests.api.support import new_org, operator_headers


async def test_operator_creates_an_organisation_with_a_first_admin_key(client: httpx.AsyncClient):
    org = await new_org(client, min_group_size=7)
    assert org.body["min_group_size"] == 7
    assert org.body["api_key"]["scopes"] == ["admin"]
    assert org.key.startswith("coh_")
    me = await client.get("/v1/api-keys", headers=org.headers)
    assert me.status_code == 200
    assert [k["scopes"] for k in me.json()["items"]] == [["admin"]]
    assert "key" not in me.json()["items"][0]  # shown once, never listed


async def test_only_the_operator_token_creates_organisations(client: httpx.AsyncClient):
    org = await new_org(client)
    for headers in ({}, {"Authorization": "Bearer nope"}, org.headers):
        response = await client.post("/v1/organizations", json={"name": "x"}, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 401


async def test_min_group_size_never_below_three(client: httpx.AsyncClient):
    response = await client.post(
        "/v1/organizations", json={"name": "x", "min_group_size": 2}, headers=operator_headers()
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/min_group_size"


async def test_organisations_list_pages_with_cursor(client: httpx.AsyncClient):
    for _ in range(3):
        await new_org(client)
    first = await client.get("/v1/organizations?limit=2", headers=operator_headers())
    assert first.status_code == 200
    body = first.json()
    assert len(body["items"]) == 2 and body["next_cursor"]
    assert 'rel="next"' in first.headers["link"]
    second = await client.get(
        f"/v1/organizations?limit=2&cursor={body['next_cursor']}", headers=operator_headers()
    )
    assert {o["id"] for o in second.json()["items"]}.isdisjoint({o["id"] for o in body["items"]})
    bad = await client.get("/v1/organizations?cursor=garbage!", headers=operator_headers())
    assert bad.status_code == 422


async def test_api_keys_scopes_and_revocation(client: httpx.AsyncClient):
    org = await new_org(client)
    created = await client.post(
        "/v1/api-keys", json={"name": "bi", "scopes": ["results:read"]}, headers=org.headers
    )
    assert created.status_code == 201
    reader = {"Authorization": f"Bearer {created.json()['key']}"}
    assert (await client.get("/v1/units", headers=reader)).status_code == 200
    forbidden = await client.put("/v1/units", json={"units": []}, headers=reader)
    assert forbidden.status_code == 403
    assert forbidden.json()["title"] == "Forbidden"
    bad_scope = await client.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["root"]}, headers=org.headers
    )
    assert bad_scope.status_code == 422
    assert bad_scope.json()["errors"][0]["pointer"] == "/scopes"
    revoked = await client.delete(f"/v1/api-keys/{created.json()['id']}", headers=org.headers)
    assert revoked.status_code == 204
    assert (await client.get("/v1/units", headers=reader)).status_code == 401


async def test_a_key_cannot_revoke_another_organisations_key(client: httpx.AsyncClient):
    a, b = await new_org(client), await new_org(client)
    a_key_id = (await client.get("/v1/api-keys", headers=a.headers)).json()["items"][0]["id"]
    response = await client.delete(f"/v1/api-keys/{a_key_id}", headers=b.headers)
    assert response.status_code == 404
    assert (await client.get("/v1/api-keys", headers=a.headers)).status_code == 200
