"""Attacks through REST, as a curious manager would run them (issue 7, SCORING.md §5).

Each test pushes a small round through the API, reads everything a `results:read` key can read,
and tries the arithmetic that recovered single people's answers from the first build: index vs
items, successive versions of an open round, a roll-up row against an incoming column, two rounds
over a changed org chart, and the change view between them. Every attack must come back blocked:
a number it needs is null, or (previews) it no longer lands on the person's answer. Then the
independent attacker's LP (tests/privacy/lp_audit.py) checks the whole publication read back from
REST — every group of its family, every cell — as one system of equations.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from coherence_core.settings import Settings
from tests.api.privacy_support import (
    PS_ITEMS,
    RC_ITEMS,
    Person,
    close,
    everyone_answers,
    push,
    rates,
    read_publication,
    truth,
)
from tests.api.support import new_org, open_round, put_units, run_scoring
from tests.privacy.lp_audit import audit


def _private(publications: list, k: int) -> None:
    result = audit(publications, k=k, check_changes=False)
    assert result.ok, result.report(5)


async def test_index_against_items(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, queue_name: str
):
    """A person who answers 4 of the 7 safety items weighs differently in the index than in
    the items (method 1); with pooled means the index is the sum of the item rows, and the one
    item only they answered cannot be taken out of it."""
    k = 5
    units = [
        {"external_id": "hq", "name": "HQ"},
        {"external_id": "u", "name": "U", "parent_external_id": "hq"},
        {"external_id": "v", "name": "V", "parent_external_id": "hq"},
    ]
    odd = {item: None for item in PS_ITEMS}
    odd.update({PS_ITEMS[0]: 2, PS_ITEMS[1]: 1, PS_ITEMS[2]: 2, PS_ITEMS[3]: 1})
    people = [Person(0, "u", odd)]
    people += [
        Person(i, "u", {item: 4 for item in PS_ITEMS[:3] + PS_ITEMS[4:]}) for i in range(1, 6)
    ]
    people += [Person(10 + i, "v", everyone_answers(3 + i % 2)) for i in range(6)]
    org = await new_org(client, min_group_size=k)
    await put_units(client, org, units)
    round_ = await open_round(client, org)
    await push(client, org, round_["id"], people)
    await close(client, org, round_["id"])
    await run_scoring(app, settings, queue_name)
    seen = await read_publication(client, org, round_["id"])
    assert seen.preview is False

    # person 0 alone answered the fourth item: index × responses − the other items' sums
    # would give it; the index row or a second item row must be hidden
    index = seen.unit("u", "psychological_safety", "index", "members", False)
    items = [seen.unit("u", "psychological_safety", i, "members", False) for i in PS_ITEMS]
    alone = items[3]
    assert alone["suppressed"] and alone["suppression_reason"] == "min_group_size"
    others_published = all(not row["suppressed"] for row in items[:3] + items[4:])
    assert index["suppressed"] or not others_published
    _private([(truth(units, people, k), seen)], k)


async def test_successive_versions_of_an_open_round(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, queue_name: str
):
    """6 · mean₆ − 5 · mean₅ on every item gave a new person's answers; while the round is open
    the results are previews with noise keyed to each cell's people, so the differences land
    off their answers, and the final (exact) minus a preview does too."""
    k = 5
    units = [{"external_id": "u", "name": "U"}]
    first = [Person(i, "u", everyone_answers(3 + i % 2)) for i in range(5)]
    newcomer = Person(99, "u", {**everyone_answers(5), PS_ITEMS[0]: 1, PS_ITEMS[1]: 2})
    org = await new_org(client, min_group_size=k)
    await put_units(client, org, units)
    round_ = await open_round(client, org)
    await push(client, org, round_["id"], first)
    await run_scoring(app, settings, queue_name)
    before = await read_publication(client, org, round_["id"])
    await push(client, org, round_["id"], [newcomer])
    await run_scoring(app, settings, queue_name)
    after = await read_publication(client, org, round_["id"])
    await close(client, org, round_["id"])
    await run_scoring(app, settings, queue_name)
    final = await read_publication(client, org, round_["id"])
    assert before.preview and after.preview and not final.preview
    for version in (before, after):
        assert version.unit_scores["sd"].null_count() == version.unit_scores.height

    measures = [*PS_ITEMS, *(i for i in everyone_answers(0) if i not in PS_ITEMS)]
    misses = 0
    for later, earlier in ((after, before), (final, before)):
        for measure in measures:
            scale = "psychological_safety" if measure in PS_ITEMS else "relational_leadership"
            now = later.unit("u", scale, measure, "members", False)
            then = earlier.unit("u", scale, measure, "members", False)
            if now["mean"] is None or then["mean"] is None:
                misses += 1
                continue
            guess = 6 * now["mean"] - 5 * then["mean"]
            misses += abs(guess - newcomer.answers[measure]) >= 0.5
    # one preview cell's noise is 0 half of the time: a guess can land by luck, but the
    # attacker cannot tell which; across 32 differences almost all land off the answer
    assert misses >= 8, misses
    # the final itself is exact and, on its own, safe
    _private([(truth(units, [*first, newcomer], k), final)], k)


async def test_rollup_row_against_an_incoming_column(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, queue_name: str
):
    """P with children a and b, root x; x's 5 people and b's 1 person rate a (k = 3):
    incoming(a) · 6 − roll-up incoming(P) · 5 was b's person's tie score."""
    k = 3
    units = [
        {"external_id": "P", "name": "P"},
        {"external_id": "a", "name": "a", "parent_external_id": "P"},
        {"external_id": "b", "name": "b", "parent_external_id": "P"},
        {"external_id": "x", "name": "x"},
    ]
    people = [Person(i, "x", {}, {"a": rates(4), "x": rates(4)}) for i in range(5)]
    people += [Person(10, "b", {}, {"a": rates(1), "b": rates(2)})]
    people += [Person(20 + i, "a", {}, {"a": rates(3 + i % 2)}) for i in range(3)]
    org = await new_org(client, min_group_size=k)
    await put_units(client, org, units)
    round_ = await open_round(client, org)
    await push(client, org, round_["id"], people)
    await close(client, org, round_["id"])
    await run_scoring(app, settings, queue_name)
    seen = await read_publication(client, org, round_["id"])

    incoming = seen.unit("a", "relational_capacity", "index", "incoming", False)
    rollup = seen.unit("P", "relational_capacity", "index", "incoming", True)
    assert incoming["suppressed"] or rollup["suppressed"]
    for item in RC_ITEMS:
        pair = (
            seen.unit("a", "relational_capacity", item, "incoming", False),
            seen.unit("P", "relational_capacity", item, "incoming", True),
        )
        assert any(row["suppressed"] for row in pair), item
    _private([(truth(units, people, k), seen)], k)


async def test_an_incoming_column_against_its_ties(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, queue_name: str
):
    """Cross-perspective: one rater's tie inside a published incoming column, the other ties
    published: incoming − published ties was that rater's score."""
    k = 3
    units = [{"external_id": u, "name": u} for u in ("b", "c", "d", "e")]
    people = [Person(i, "c", {}, {"b": rates(4), "c": rates(4)}) for i in range(4)]
    people += [Person(10 + i, "d", {}, {"b": rates(3), "d": rates(4)}) for i in range(4)]
    people += [Person(20, "e", {}, {"b": rates(1), "e": rates(5)})]
    people += [Person(30 + i, "b", {}, {"b": rates(4)}) for i in range(3)]
    org = await new_org(client, min_group_size=k)
    await put_units(client, org, units)
    round_ = await open_round(client, org)
    await push(client, org, round_["id"], people)
    await close(client, org, round_["id"])
    await run_scoring(app, settings, queue_name)
    seen = await read_publication(client, org, round_["id"])

    lone = seen.tie("e", "b")
    assert lone is not None and lone["suppressed"]
    incoming = seen.unit("b", "relational_capacity", "index", "incoming", False)
    open_ties = [seen.tie(u, "b") for u in ("c", "d")]
    assert incoming["suppressed"] or any(t["suppressed"] for t in open_ties if t)
    _private([(truth(units, people, k), seen)], k)


async def test_two_rounds_over_a_changed_org_chart_and_their_change_view(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, queue_name: str
):
    """The same answers pushed to a second round after a small unit moved: the parent's
    roll-up in round 1 minus the sibling's row in round 2 gave the moved unit's 2 people."""
    k = 3
    chart = [
        {"external_id": "R", "name": "R"},
        {"external_id": "P", "name": "P", "parent_external_id": "R"},
        {"external_id": "Q", "name": "Q", "parent_external_id": "R"},
        {"external_id": "a", "name": "a", "parent_external_id": "P"},
        {"external_id": "b", "name": "b", "parent_external_id": "P"},
        {"external_id": "c", "name": "c", "parent_external_id": "Q"},
    ]
    people = [Person(i, "a", everyone_answers(4)) for i in range(5)]
    people += [Person(10 + i, "b", everyone_answers(1)) for i in range(2)]
    people += [Person(20 + i, "c", everyone_answers(3)) for i in range(5)]
    org = await new_org(client, min_group_size=k)
    await put_units(client, org, chart)
    first = await open_round(client, org, name="spring")
    await push(client, org, first["id"], people)
    await close(client, org, first["id"])
    await run_scoring(app, settings, queue_name)
    moved = [{**u, "parent_external_id": "Q"} if u["external_id"] == "b" else u for u in chart]
    await put_units(client, org, moved)
    second = await open_round(client, org, name="autumn")
    await push(client, org, second["id"], people)
    await close(client, org, second["id"])
    await run_scoring(app, settings, queue_name)
    spring = await read_publication(client, org, first["id"])
    autumn = await read_publication(client, org, second["id"])

    for scale, items in (("psychological_safety", PS_ITEMS),):
        for measure in ["index", *items]:
            parent = spring.unit("P", scale, measure, "members", True)
            sibling = autumn.unit("a", scale, measure, "members", False)
            assert parent["suppressed"] or sibling["suppressed"], measure

    # the change view adds no number: every published change is two published rows
    changes = (
        await client.get(
            f"/v1/rounds/{second['id']}/results/changes",
            params={"since": first["id"], "limit": 1000},
            headers=org.headers,
        )
    ).json()
    for change in changes["items"]:
        if change["suppressed"]:
            continue
        key = (change["unit"], change["scale"], change["measure"], change["perspective"])
        now = autumn.unit(*key, change["rollup"])
        then = spring.unit(*key, change["rollup"])
        assert (change["mean"], change["earlier_mean"]) == (now["mean"], then["mean"])

    _private([(truth(chart, people, k), spring), (truth(moved, people, k), autumn)], k)


@pytest.mark.slow
async def test_a_generated_organisation_read_through_rest_is_private(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, queue_name: str
):
    from coherence_core.synthetic import (
        generate_organisation,
        to_api_batches,
        to_scoring_input,
        to_units_payload,
    )
    from coherence_scoring.engine import ScoringSettings

    k = 3
    synthetic = generate_organisation(n_respondents=40, n_units=8, targets_per_respondent=4, seed=7)
    org = await new_org(client, min_group_size=k)
    await put_units(client, org, to_units_payload(synthetic)["units"])
    round_ = await open_round(client, org)
    for batch in to_api_batches(synthetic, batch_size=100):
        response = await client.post(
            f"/v1/rounds/{round_['id']}/responses", json=batch, headers=org.headers
        )
        assert response.status_code == 200, response.text
    await close(client, org, round_["id"])
    await run_scoring(app, settings, queue_name)
    seen = await read_publication(client, org, round_["id"])
    _private([(to_scoring_input(synthetic, ScoringSettings(min_group_size=k)), seen)], k)
