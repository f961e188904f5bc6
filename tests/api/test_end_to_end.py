"""The whole path: REST → Postgres → outbox → Redis → a real arq worker (burst) → results."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from coherence_core.settings import Settings
from coherence_core.synthetic import (
    generate_organisation,
    to_api_batches,
    to_scoring_input,
    to_units_payload,
)
from coherence_scoring.engine import ScoringSettings, score
from coherence_scoring.score_round import score_round
from tests.api.support import (
    Org,
    fetch_all,
    new_org,
    open_round,
    put_units,
    run_scoring,
    worker_context,
)
from tests.reference.scoring import reference_score

SMALL_UNITS = [
    {"external_id": "fin", "name": "Finance", "headcount": 10},
    {"external_id": "it", "name": "IT", "headcount": 8},
    {"external_id": "hr", "name": "HR"},
]


def _person(i: int, unit: str, rc: int, ps: int) -> dict[str, Any]:
    return {
        "respondent": f"hr-{unit}-{i}",
        "unit": unit,
        "answers": {
            key: ps
            for key in (
                "ps_raise_problems",
                "ps_safe_risk",
                "ps_no_undermining",
                "ps_skills_valued",
            )
        },
        "about": {
            "fin": {
                k: rc
                for k in (
                    "rc_frequent",
                    "rc_timely",
                    "rc_accurate",
                    "rc_problem_solving",
                    "rc_shared_goals",
                )
            }
        },
    }


async def test_push_score_and_read_back(
    client: httpx.AsyncClient, org: Org, app: FastAPI, settings: Settings, queue_name: str
):
    await put_units(client, org, SMALL_UNITS)
    round_ = await open_round(client, org)
    # it (2) and hr (3) are below k = 5, but together hold 5: no complementary suppression.
    people = (
        [_person(i, "fin", 4, 5) for i in range(5)]
        + [_person(i, "it", 2, 3) for i in range(2)]
        + [_person(i, "hr", 3, 3) for i in range(3)]
    )
    response = await client.post(
        f"/v1/rounds/{round_['id']}/responses", json={"responses": people}, headers=org.headers
    )
    assert response.status_code == 200, response.text
    assert await run_scoring(app, settings, queue_name) >= 1

    got = (await client.get(f"/v1/rounds/{round_['id']}", headers=org.headers)).json()
    assert got["scoring"]["status"] == "scored", got
    assert got["scoring"]["scored_version"] == got["input_version"] == 1

    base = f"/v1/rounds/{round_['id']}/results"
    # while the round is open, results are a preview: perturbed, and flagged as such
    preview = (await client.get(f"{base}/units", headers=org.headers)).json()
    assert preview["preview"] is True and preview["method_version"] == "2"
    assert all(r["sd"] is None for r in preview["items"])

    closed = await client.post(f"/v1/rounds/{round_['id']}/close", headers=org.headers)
    assert closed.status_code == 202, closed.text
    assert await run_scoring(app, settings, queue_name) >= 1
    units = await fetch_all(client, org, f"{base}/units")
    by_key = {
        (r["unit"], r["scale"], r["measure"], r["perspective"], r["rollup"]): r for r in units
    }
    safety = by_key[("fin", "psychological_safety", "index", "members", False)]
    assert safety["n"] == 5 and safety["mean"] == 5.0 and not safety["suppressed"]
    internal = by_key[("fin", "relational_capacity", "index", "internal", False)]
    assert internal["n"] == 5 and internal["mean"] == 4.0 and internal["band"] == "moderate"
    small = by_key[("it", "psychological_safety", "index", "members", False)]
    assert small["suppressed"] and small["suppression_reason"] == "min_group_size"
    assert small["mean"] is None and small["n"] is None
    ties = await fetch_all(client, org, f"{base}/ties")
    tie = next(t for t in ties if (t["from_unit"], t["to_unit"]) == ("it", "fin"))
    assert tie["suppressed"] and tie["mean"] is None
    incoming = by_key[("fin", "relational_capacity", "index", "incoming", False)]
    assert incoming["n"] == 5 and incoming["mean"] == pytest.approx(2.6)  # (2·2 + 3·3) / 5

    summary = await client.get(f"{base}/summary", headers=org.headers)
    assert summary.status_code == 200
    body = summary.json()
    assert body["respondents"] == 10 and body["input_version"] == 1
    assert body["preview"] is False and body["method_version"] == "2"
    # the response rate counts people, not answers (presence): always published
    assert body["response_rate"] == pytest.approx(7 / 18)  # fin 5 + it 2 of 10 + 8

    etag = summary.headers["etag"]
    cached = await client.get(f"{base}/summary", headers={**org.headers, "If-None-Match": etag})
    assert cached.status_code == 304


async def _result_tables(engine: AsyncEngine, round_id: str) -> dict[str, list[tuple[Any, ...]]]:
    async with engine.connect() as connection:
        tables = {}
        for table, order in (
            ("unit_score", "scale, measure, perspective, unit, rollup"),
            ("tie_score", "scale, measure, from_unit, to_unit"),
            ("unit_participation", "unit, rollup"),
            ("round_summary", "round_id"),
        ):
            rows = await connection.execute(
                text(f"SELECT * FROM {table} WHERE round_id = :r ORDER BY {order}"), {"r": round_id}
            )
            tables[table] = [tuple(r) for r in rows]
        scored = await connection.execute(
            text("SELECT scored_version, scored_at FROM round WHERE id = :r"), {"r": round_id}
        )
        tables["round"] = [tuple(r) for r in scored]
    return tables


async def test_a_job_run_twice_leaves_identical_results(
    client: httpx.AsyncClient,
    org: Org,
    app: FastAPI,
    settings: Settings,
    queue_name: str,
    admin_engine: AsyncEngine,
):
    await put_units(client, org, SMALL_UNITS)
    round_ = await open_round(client, org)
    people = [_person(i, "fin", 4, 5) for i in range(6)]
    await client.post(
        f"/v1/rounds/{round_['id']}/responses", json={"responses": people}, headers=org.headers
    )
    await run_scoring(app, settings, queue_name)
    first = await _result_tables(admin_engine, round_["id"])
    assert first["unit_score"]
    # Ask again (a rescoring request and a duplicate job); nothing changes.
    assert (
        await client.post(f"/v1/rounds/{round_['id']}/score", headers=org.headers)
    ).status_code == 202
    await run_scoring(app, settings, queue_name)
    # The job itself, called again directly, sees the round is up to date.
    assert await score_round(worker_context(app, settings), round_["id"], org.id) == "up to date"
    second = await _result_tables(admin_engine, round_["id"])
    assert second == first
    got = (await client.get(f"/v1/rounds/{round_['id']}", headers=org.headers)).json()
    assert got["scoring"]["status"] == "scored"


def _close(a: float | None, b: float | None, tolerance: float = 1e-6) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=0, abs_tol=tolerance)


@pytest.mark.slow
async def test_synthetic_organisation_through_rest_matches_independent_computation(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, queue_name: str
):
    """Pushed through REST, closed, scored by the worker and read back, a synthetic
    organisation gives exactly what the engine gives on the same answers, and every published
    value equals the independent reference (method 2)."""
    synthetic = generate_organisation(n_respondents=600, n_units=30, seed=11)
    org = await new_org(client, min_group_size=5)
    await put_units(client, org, to_units_payload(synthetic)["units"])
    round_ = await open_round(client, org)
    for batch in to_api_batches(synthetic, batch_size=200):
        response = await client.post(
            f"/v1/rounds/{round_['id']}/responses", json=batch, headers=org.headers
        )
        assert response.status_code == 200, response.text
    closed = await client.post(f"/v1/rounds/{round_['id']}/close", headers=org.headers)
    assert closed.status_code == 202
    await run_scoring(app, settings, queue_name)
    inputs = to_scoring_input(synthetic, ScoringSettings(min_group_size=5))
    engine = score(inputs)
    reference = reference_score(inputs)

    base = f"/v1/rounds/{round_['id']}/results"
    unit_key = ("unit", "scale", "measure", "perspective", "rollup")
    got_units = {
        tuple(r[c] for c in unit_key): r for r in await fetch_all(client, org, f"{base}/units")
    }
    want_units = {
        tuple(r[c] for c in unit_key): r for r in engine.unit_scores.iter_rows(named=True)
    }
    ref_units = {
        tuple(r[c] for c in unit_key): r for r in reference.unit_scores.iter_rows(named=True)
    }
    assert got_units.keys() == want_units.keys() == ref_units.keys()
    fields = ("n", "mean", "sd", "ci_low", "ci_high", "rwg", "band", "low_agreement")
    for key, want in want_units.items():
        got = got_units[key]
        assert (got["suppressed"], got["suppression_reason"]) == (
            want["suppressed"],
            want["suppression_reason"],
        ), key
        for field in fields:
            assert _same(got[field], want[field]), (key, field, got[field], want[field])
        if not got["suppressed"] and key[1] != "coherence":
            ref = ref_units[key]
            assert got["n"] == ref["n"] and _close(got["mean"], ref["mean"], 1e-9), key
        if ref_units[key]["suppressed"]:
            assert got["suppressed"], key  # rule 1 at least

    measures = engine.tie_scores["measure"].unique().sort().to_list()
    assert len(measures) == 13  # index, 3 subscales, 9 items
    tie_key = ("from_unit", "to_unit", "measure")
    got_ties = {
        tuple(r[c] for c in tie_key): r
        for measure in measures
        for r in await fetch_all(client, org, f"{base}/ties", measure=measure)
    }
    want_ties = {tuple(r[c] for c in tie_key): r for r in engine.tie_scores.iter_rows(named=True)}
    ref_ties = {tuple(r[c] for c in tie_key): r for r in reference.tie_scores.iter_rows(named=True)}
    assert got_ties.keys() == want_ties.keys() == ref_ties.keys()
    for key, want in want_ties.items():
        got = got_ties[key]
        for field in ("suppressed", "suppression_reason", "n", "mean", "sd", "ci_low", "band"):
            assert _same(got[field], want[field]), (key, field)
        if not got["suppressed"]:
            assert _close(got["mean"], ref_ties[key]["mean"], 1e-9), key

    summary = (await client.get(f"{base}/summary", headers=org.headers)).json()
    assert summary["preview"] is False and summary["method_version"] == "2"
    assert summary["respondents"] == engine.summary["respondents"]
    assert _close(summary["response_rate"], engine.summary["response_rate"], 1e-12)
    for scale, values in engine.summary["scales"].items():
        for field, value in values.items():
            assert _close(summary["scales"][scale][field], value, 1e-12), (scale, field)
            if field == "mean" and value is not None:
                ref = reference.summary["scales"][scale]["mean"]
                assert _close(value, ref, 1e-9), scale
    for field, value in engine.summary["network"].items():
        assert _close(summary["network"][field], value, 1e-12), field
    want_lc = engine.summary["leadership_collaboration"]
    assert want_lc is not None and want_lc["n_units"] >= 4
    for field, value in want_lc.items():
        assert _close(summary["leadership_collaboration"][field], value, 1e-12), field


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return _close(a, b, 1e-12)  # type: ignore[arg-type]
    return a == b
