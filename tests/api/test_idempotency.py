from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from coherence_api.idempotency.repository import lock_id
from tests.api.support import Org, open_round, put_units

UNITS = [{"external_id": "fin", "name": "Finance"}, {"external_id": "it", "name": "IT"}]


def batch(*respondents: str) -> dict:
    return {
        "responses": [
            {"respondent": r, "unit": "fin", "answers": {"ps_safe_risk": 4}} for r in respondents
        ]
    }


async def test_replay_returns_the_original_status_and_body(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    url = f"/v1/rounds/{round_['id']}/responses"
    headers = {**org.headers, "Idempotency-Key": "batch-1"}
    first = await client.post(url, json=batch("a", "b"), headers=headers)
    replay = await client.post(url, json=batch("a", "b"), headers=headers)
    assert first.status_code == replay.status_code == 200
    assert (
        replay.json()
        == first.json()
        == {
            "accepted": 2,
            "created": 2,
            "replaced": 0,
            "input_version": 1,
        }
    )
    assert replay.headers["idempotent-replayed"] == "true"
    got = (await client.get(f"/v1/rounds/{round_['id']}", headers=org.headers)).json()
    assert got["input_version"] == 1  # stored once


async def test_same_key_with_another_body_is_422(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    url = f"/v1/rounds/{round_['id']}/responses"
    headers = {**org.headers, "Idempotency-Key": "batch-2"}
    assert (await client.post(url, json=batch("a"), headers=headers)).status_code == 200
    other = await client.post(url, json=batch("b"), headers=headers)
    assert other.status_code == 422
    assert other.json()["errors"] == [
        {"header": "Idempotency-Key", "detail": "reused with another body"}
    ]


async def test_keys_are_per_organisation(client: httpx.AsyncClient, org: Org):
    from tests.api.support import new_org

    other = await new_org(client)
    for o in (org, other):
        response = await client.put(
            "/v1/units", json={"units": UNITS}, headers={**o.headers, "Idempotency-Key": "same"}
        )
        assert response.status_code == 200
        assert response.json()["created"] == 2
        assert "idempotent-replayed" not in response.headers


async def test_a_failed_request_does_not_burn_the_key(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    url = f"/v1/rounds/{round_['id']}/responses"
    headers = {**org.headers, "Idempotency-Key": "retry-me"}
    bad = {"responses": [{"respondent": "a", "unit": "nowhere"}]}
    assert (await client.post(url, json=bad, headers=headers)).status_code == 422
    # The failed attempt stored nothing, not even the key: the corrected retry goes through.
    fixed = {"responses": [{"respondent": "a", "unit": "fin"}]}
    assert (await client.post(url, json=fixed, headers=headers)).status_code == 200


async def test_concurrent_first_uses_store_the_batch_once(
    client: httpx.AsyncClient, org: Org, admin_engine: AsyncEngine
):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    url = f"/v1/rounds/{round_['id']}/responses"
    headers = {**org.headers, "Idempotency-Key": "racing"}
    body = batch(*[f"p{i}" for i in range(300)])
    results = await asyncio.gather(
        *[client.post(url, json=body, headers=headers) for _ in range(6)]
    )
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {200, 409} and 200 in statuses
    successes = [r.json() for r in results if r.status_code == 200]
    assert all(s == successes[0] for s in successes)
    async with admin_engine.connect() as connection:
        count = (
            await connection.execute(
                text("SELECT count(*) FROM respondent WHERE round_id = :r"), {"r": round_["id"]}
            )
        ).scalar_one()
    assert count == 300
    got = (await client.get(f"/v1/rounds/{round_['id']}", headers=org.headers)).json()
    assert got["input_version"] == 1


async def test_replay_while_the_first_is_running_is_409(client: httpx.AsyncClient, org: Org, app):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    url = f"/v1/rounds/{round_['id']}/responses"
    # Hold the key's advisory lock the way a running first request does.
    async with app.state.coherence.engine.connect() as connection:
        key = lock_id(uuid.UUID(org.id), "slow")
        await connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        response = await client.post(
            url, json=batch("a"), headers={**org.headers, "Idempotency-Key": "slow"}
        )
        assert response.status_code == 409
        await connection.rollback()
    response = await client.post(
        url, json=batch("a"), headers={**org.headers, "Idempotency-Key": "slow"}
    )
    assert response.status_code == 200


async def test_idempotency_key_longer_than_255_is_refused(client: httpx.AsyncClient, org: Org):
    response = await client.put(
        "/v1/units", json={"units": UNITS}, headers={**org.headers, "Idempotency-Key": "k" * 256}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "idempotency-key"


async def test_expired_claims_are_pruned_and_fresh_ones_kept(
    client: httpx.AsyncClient, org: Org, admin_engine: AsyncEngine, owner_engine: AsyncEngine
):
    """The expiry cron crosses organisations, as the owner (row-level security's `owner_sweep`)."""
    from coherence_scoring.maintenance import prune

    engine = admin_engine
    for key in ("old", "fresh"):
        response = await client.put(
            "/v1/units", json={"units": UNITS}, headers={**org.headers, "Idempotency-Key": key}
        )
        assert response.status_code == 200
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE idempotency_key SET created_at = now() - interval '25 hours' "
                "WHERE key = 'old' AND organization_id = :o"
            ),
            {"o": org.id},
        )
    pruned = await prune(owner_engine, idempotency_ttl_hours=24)
    assert pruned["idempotency_keys"] >= 1
    async with engine.connect() as connection:
        left = (
            (
                await connection.execute(
                    text("SELECT key FROM idempotency_key WHERE organization_id = :o ORDER BY key"),
                    {"o": org.id},
                )
            )
            .scalars()
            .all()
        )
    assert left == ["fresh"]


async def test_replays_are_the_first_response_byte_for_byte(client: httpx.AsyncClient, org: Org):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    created = await client.post(
        "/v1/api-keys", json={"name": "ci", "scopes": ["results:read"]}, headers=org.headers
    )
    writes = [
        ("PUT", "/v1/units", {"units": UNITS}),
        ("POST", "/v1/rounds", {"name": "Autumn"}),
        ("POST", f"/v1/rounds/{round_['id']}/responses", batch("a")),
        ("POST", f"/v1/rounds/{round_['id']}/close", None),
        ("DELETE", f"/v1/api-keys/{created.json()['id']}", None),
    ]
    for number, (method, url, body) in enumerate(writes):
        headers = {**org.headers, "Idempotency-Key": f"bytes-{number}"}
        first = await client.request(method, url, json=body, headers=headers)
        replay = await client.request(method, url, json=body, headers=headers)
        assert first.status_code < 300, first.text
        assert (replay.status_code, replay.content) == (first.status_code, first.content)
        assert replay.headers.get("content-type") == first.headers.get("content-type")
        assert replay.headers["idempotent-replayed"] == "true"
