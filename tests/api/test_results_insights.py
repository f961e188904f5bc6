"""Change since an earlier round, and the network view, through the REST API."""

from __future__ import annotations

import math

import httpx
import pytest
from fastapi import FastAPI
from scipy import stats

from coherence_core.settings import Settings
from coherence_core.synthetic import generate_organisation, to_api_batches, to_units_payload
from tests.api.support import Org, fetch_all, new_org, open_round, run_scoring


async def _push_round(
    client: httpx.AsyncClient, org: Org, synthetic, name: str, *, close: bool = True
) -> str:
    round_ = await open_round(client, org, name=name)
    for batch in to_api_batches(synthetic, batch_size=250):
        response = await client.post(
            f"/v1/rounds/{round_['id']}/responses", json=batch, headers=org.headers
        )
        assert response.status_code == 200, response.text
    if close:
        closed = await client.post(f"/v1/rounds/{round_['id']}/close", headers=org.headers)
        assert closed.status_code == 202, closed.text
    return round_["id"]


def _key(row: dict) -> tuple:
    return (row["unit"], row["scale"], row["measure"], row["perspective"], row["rollup"])


@pytest.mark.slow
async def test_changes_match_an_independent_welch_test(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, queue_name: str
):
    spring = generate_organisation(n_respondents=500, n_units=20, seed=21)
    autumn = generate_organisation(n_respondents=500, n_units=20, seed=22)
    assert [u.external_id for u in spring.units] == [u.external_id for u in autumn.units]
    org = await new_org(client, min_group_size=4)
    await client.put("/v1/units", json=to_units_payload(spring), headers=org.headers)
    earlier = await _push_round(client, org, spring, "spring")
    later = await _push_round(client, org, autumn, "autumn")
    await run_scoring(app, settings, queue_name)

    got = await fetch_all(client, org, f"/v1/rounds/{later}/results/changes", since=earlier)
    # the change view adds no number of its own: it is computed from the two publications'
    # unit rows (SCORING.md §5.3), here read back through REST and tested with scipy directly
    rows_before = {
        _key(r): r for r in await fetch_all(client, org, f"/v1/rounds/{earlier}/results/units")
    }
    rows_after = {
        _key(r): r for r in await fetch_all(client, org, f"/v1/rounds/{later}/results/units")
    }
    published = {_key(r): r for r in got if not r["suppressed"]}
    expected = {
        key: (row, rows_before[key])
        for key, row in rows_after.items()
        if key in rows_before and not row["suppressed"] and not rows_before[key]["suppressed"]
    }
    assert published.keys() == expected.keys() and expected
    for key, (now, then) in expected.items():
        mine = published[key]
        assert mine["mean"] == now["mean"] and mine["earlier_mean"] == then["mean"]
        assert math.isclose(mine["difference"], now["mean"] - then["mean"], abs_tol=1e-12)
        if now["sd"] is None or then["sd"] is None or now["n"] < 2 or then["n"] < 2:
            assert mine["p_value"] is None, key
            continue
        want = stats.ttest_ind_from_stats(
            now["mean"], now["sd"], now["n"], then["mean"], then["sd"], then["n"], equal_var=False
        ).pvalue
        if math.isnan(want):
            assert mine["p_value"] is None
        else:
            assert math.isclose(mine["p_value"], want, rel_tol=1e-9, abs_tol=1e-12), key
    assert any(r["suppressed"] for r in got)  # rows hidden in either round stay hidden
    assert any(r["p_value"] is not None for r in got)

    unknown = await client.get(
        f"/v1/rounds/{later}/results/changes",
        params={"since": "00000000-0000-0000-0000-000000000000"},
        headers=org.headers,
    )
    assert unknown.status_code == 404


@pytest.mark.slow
async def test_network_nodes_edges_and_holes(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, queue_name: str
):
    synthetic = generate_organisation(n_respondents=400, n_units=25, seed=3)
    org = await new_org(client, min_group_size=3)
    await client.put("/v1/units", json=to_units_payload(synthetic), headers=org.headers)
    round_id = await _push_round(client, org, synthetic, "net")
    await run_scoring(app, settings, queue_name)
    base = f"/v1/rounds/{round_id}/results"
    network = (
        await client.get(f"{base}/network", params={"holes_limit": 10000}, headers=org.headers)
    ).json()
    summary = (await client.get(f"{base}/summary", headers=org.headers)).json()
    assert len(network["nodes"]) == 25
    assert network["holes_total"] == summary["network"]["holes"] == len(network["holes"])
    ties = await fetch_all(client, org, f"{base}/ties")
    published = {
        (t["from_unit"], t["to_unit"]): t["mean"]
        for t in ties
        if not t["suppressed"] and t["from_unit"] != t["to_unit"]
    }
    assert {(e["source"], e["target"]): e["mean"] for e in network["edges"]} == published
    assert network["suppressed_edges"] == sum(
        1 for t in ties if t["suppressed"] and t["from_unit"] != t["to_unit"]
    )
    means = [e["mean"] for e in network["weakest"]]
    assert means == sorted(means) and means[0] == min(published.values())
    rated = {frozenset(pair) for pair in ((t["from_unit"], t["to_unit"]) for t in ties)}
    for a, b in network["holes"]:
        assert frozenset((a, b)) not in rated
