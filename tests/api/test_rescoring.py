"""Debounced rescoring through the outbox, and one scoring of a round at a time."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from coherence_core.settings import Settings
from coherence_scoring.repository.rounds import round_lock_key
from coherence_scoring.score_round import score_round
from tests.api.support import Org, open_round, put_units, worker_context

UNITS = [{"external_id": "fin", "name": "Finance"}]


def one(respondent: str) -> dict:
    return {
        "responses": [{"respondent": respondent, "unit": "fin", "answers": {"ps_safe_risk": 4}}]
    }


async def _pending(engine: AsyncEngine, round_id: str) -> list[tuple]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT job, available_at > now() FROM outbox "
                "WHERE payload->>'round_id' = :r AND enqueued_at IS NULL"
            ),
            {"r": round_id},
        )
        return [tuple(r) for r in rows]


async def test_a_burst_of_batches_asks_for_one_scoring(
    client: httpx.AsyncClient, org: Org, admin_engine: AsyncEngine
):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    for respondent in ("a", "b", "c"):
        response = await client.post(
            f"/v1/rounds/{round_['id']}/responses", json=one(respondent), headers=org.headers
        )
        assert response.status_code == 200
    assert [job for job, _ in await _pending(admin_engine, round_["id"])] == ["score_round"]


async def test_the_rescoring_waits_for_the_debounce(
    client: httpx.AsyncClient, org: Org, app, settings: Settings, admin_engine: AsyncEngine
):
    from coherence_api.responses import service as responses_service
    from coherence_api.responses.parsing import parse_json_batch

    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    state = app.state.coherence
    async with state.sessionmaker() as session:
        from coherence_core.db.tenancy import bind_organization

        bind_organization(session, uuid.UUID(org.id))
        raws = parse_json_batch(
            b'{"responses": [{"respondent": "x", "unit": "fin"}]}', max_responses=10
        )
        await responses_service.accept_batch(
            session,
            round_id=uuid.UUID(round_["id"]),
            raws=raws,
            hasher=state.hasher,
            rescore_delay=30,
        )
        await session.commit()
    assert await _pending(admin_engine, round_["id"]) == [("score_round", True)]  # not due for 30 s


async def test_one_scoring_of_a_round_at_a_time(
    client: httpx.AsyncClient, org: Org, app, settings: Settings, admin_engine: AsyncEngine
):
    await put_units(client, org, UNITS)
    round_ = await open_round(client, org)
    engine = app.state.coherence.engine
    context = worker_context(app, settings)
    async with engine.connect() as connection:
        await connection.execute(
            text("SELECT pg_advisory_lock(:k)"), {"k": round_lock_key(uuid.UUID(round_["id"]))}
        )
        busy = await score_round(context, round_["id"], org.id)
        assert busy == "busy: requeued"
        assert [job for job, _ in await _pending(admin_engine, round_["id"])] == ["score_round"]
        await connection.execute(
            text("SELECT pg_advisory_unlock(:k)"), {"k": round_lock_key(uuid.UUID(round_["id"]))}
        )
        await connection.commit()
    assert await score_round(context, round_["id"], org.id) == "scored"
