"""The synthetic organisation generator: realistic magnitudes, shapes and determinism."""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import numpy as np
import polars as pl
import pytest

from coherence_core.instruments import InstrumentDefinition, builtin_instrument
from coherence_core.synthetic import (
    NO_TARGET,
    NULL_VALUE,
    generate_organisation,
    to_api_batches,
    to_scoring_frames,
    to_scoring_input,
    to_units_payload,
)

# --------------------------------------------------------------------------------------------
# Magnitudes, measured straight from the frames (independent of the engine and the reference)
# --------------------------------------------------------------------------------------------


def scored_answers(answers: pl.DataFrame, instrument: InstrumentDefinition) -> pl.DataFrame:
    """Answered items with their scale and the scored value (recoded, reversed)."""
    rows = []
    for index, (scale, item) in enumerate(instrument.items):
        for raw in sorted(instrument.accepted_values(item.key)):
            v = item.recode[raw] if item.recode else raw
            if item.reversed:
                v = scale.response_min + scale.response_max - v
            rows.append((index, raw, scale.key, len(scale.items), float(v)))
    table = pl.DataFrame(
        rows,
        schema={
            "item": pl.Int16,
            "value": pl.Int16,
            "scale": pl.String,
            "n_items": pl.Int32,
            "score": pl.Float64,
        },
        orient="row",
    )
    return answers.drop_nulls("value").join(table, on=["item", "value"])


def scale_scores(answers: pl.DataFrame, instrument: InstrumentDefinition) -> pl.DataFrame:
    """Respondent (and, for relational capacity, target) scale scores with the min-answers rule."""
    return (
        scored_answers(answers, instrument)
        .group_by("respondent", "target", "scale")
        .agg(pl.col("score").mean(), pl.len().alias("answered"), pl.col("n_items").first())
        .filter(pl.col("answered") >= (pl.col("n_items") / 2).ceil())
    )


def icc1(scores: pl.DataFrame) -> float:
    """ICC(1) from a one-way ANOVA of ``score`` grouped by ``unit`` (units with ≥ 2 scores)."""
    groups = [
        np.asarray(g, dtype=float)
        for g in scores.group_by("unit").agg("score")["score"].to_list()
        if len(g) >= 2
    ]
    n = sum(len(g) for g in groups)
    grand = np.concatenate(groups).mean()
    msb = sum(len(g) * (g.mean() - grand) ** 2 for g in groups) / (len(groups) - 1)
    msw = sum(((g - g.mean()) ** 2).sum() for g in groups) / (n - len(groups))
    k_bar = (n - sum(len(g) ** 2 for g in groups) / n) / (len(groups) - 1)
    return float((msb - msw) / (msb + (k_bar - 1) * msw))


def magnitudes(org: Any) -> dict[str, Any]:
    _, respondents, answers = to_scoring_frames(org)
    scores = scale_scores(answers, org.instrument).join(respondents, on="respondent")
    out: dict[str, Any] = {}
    members = {
        "relational_leadership": scores.filter(pl.col("scale") == "relational_leadership"),
        "psychological_safety": scores.filter(pl.col("scale") == "psychological_safety"),
        "relational_capacity": scores.filter(
            pl.col("scale") == "relational_capacity", pl.col("target") == pl.col("unit")
        ),
    }
    for key, frame in members.items():
        per_unit = frame.group_by("unit").agg(
            pl.col("score").mean().alias("mean"), pl.col("score").std().alias("sd"), pl.len()
        )
        big = per_unit.filter(pl.col("len") >= 5)
        out[key] = {
            "icc1": icc1(frame),
            "unit_mean_min": big["mean"].min(),
            "unit_mean_max": big["mean"].max(),
            "share_in_3_to_4_5": big.filter(pl.col("mean").is_between(3.0, 4.5)).height
            / big.height,
            "median_sd": big["sd"].median(),
        }
    rc = scores.filter(pl.col("scale") == "relational_capacity")
    out["internal_mean"] = rc.filter(pl.col("target") == pl.col("unit"))["score"].mean()
    out["external_mean"] = rc.filter(pl.col("target") != pl.col("unit"))["score"].mean()
    incoming = (
        rc.filter(pl.col("target") != pl.col("unit"))
        .group_by("target")
        .agg(pl.col("score").mean().alias("incoming"), pl.len().alias("n_in"))
        .rename({"target": "unit"})
    )
    leadership = (
        members["relational_leadership"]
        .group_by("unit")
        .agg(pl.col("score").mean().alias("leadership"), pl.len().alias("n_rl"))
    )
    both = leadership.join(incoming, on="unit").filter(pl.col("n_rl") >= 5, pl.col("n_in") >= 5)
    out["leadership_incoming_r"] = float(np.corrcoef(both["leadership"], both["incoming"])[0, 1])
    out["correlated_units"] = both.height
    return out


@pytest.fixture(scope="module")
def org() -> Any:
    return generate_organisation(3000, 120, seed=7)


def test_magnitudes_match_published_ranges(org: Any) -> None:
    m = magnitudes(org)
    for scale in ("relational_leadership", "psychological_safety", "relational_capacity"):
        assert 0.05 <= m[scale]["icc1"] <= 0.20, (scale, m[scale])
        assert m[scale]["share_in_3_to_4_5"] >= 0.9, (scale, m[scale])
        assert 0.45 <= m[scale]["median_sd"] <= 0.75, (scale, m[scale])
    assert m["internal_mean"] > m["external_mean"] + 0.2, m
    assert 3.0 < m["external_mean"] < m["internal_mean"] < 4.5, m
    assert m["leadership_incoming_r"] > 0.2, m
    assert m["correlated_units"] >= 20, m


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_magnitudes_hold_across_seeds(seed: int) -> None:
    m = magnitudes(generate_organisation(2500, 100, seed=seed))
    for scale in ("relational_leadership", "psychological_safety", "relational_capacity"):
        assert 0.03 <= m[scale]["icc1"] <= 0.25, (scale, m[scale])
        assert 0.4 <= m[scale]["median_sd"] <= 0.8, (scale, m[scale])
    assert m["internal_mean"] > m["external_mean"] + 0.2, m
    assert m["leadership_incoming_r"] > 0.0, m


# --------------------------------------------------------------------------------------------
# Structure
# --------------------------------------------------------------------------------------------


def test_unit_tree_has_levels_and_tiny_units(org: Any) -> None:
    ids = [u.external_id for u in org.units]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i.startswith("u-") for i in ids)
    known = set()
    for u in org.units:  # parents come first
        assert u.parent_external_id is None or u.parent_external_id in known
        known.add(u.external_id)
    assert {u.level for u in org.units} == {0, 1, 2}
    sizes = Counter(org.respondent_unit.tolist())
    assert sum(1 for u in range(org.n_units) if 1 <= sizes.get(u, 0) <= 4) >= 3
    assert max(sizes.values()) >= 30
    for u, unit in enumerate(org.units):
        if unit.headcount is not None:
            assert unit.headcount >= sizes.get(u, 0)
    assert any(u.headcount is None for u in org.units)


def test_targets_prefer_neighbours_and_leave_holes(org: Any) -> None:
    units, respondents, answers = to_scoring_frames(org)
    ties = (
        answers.drop_nulls("target")
        .select("respondent", "target")
        .unique()
        .join(respondents, on="respondent")
    )
    per_respondent = ties.group_by("respondent").len()["len"]
    assert 10 <= per_respondent.mean() <= 14
    # everyone with ties rates their own unit
    own = ties.filter(pl.col("target") == pl.col("unit"))["respondent"].n_unique()
    assert own == ties["respondent"].n_unique()
    parent = dict(zip(units["unit"].to_list(), units["parent"].to_list(), strict=True))
    external = ties.filter(pl.col("target") != pl.col("unit"))
    siblings = sum(
        1
        for a, b in zip(external["unit"], external["target"], strict=True)
        if parent[a] == parent[b]
    )
    # under a uniform choice of targets, siblings would be this share of the external ties
    family = Counter(parent.values())
    uniform = np.mean(
        [(family[parent[a]] - 1) / (org.n_units - 1) for a in external["unit"].to_list()]
    )
    assert siblings / external.height > 4 * uniform
    pairs = {
        (min(a, b), max(a, b)) for a, b in zip(external["unit"], external["target"], strict=True)
    }
    assert len(pairs) < org.n_units * (org.n_units - 1) / 2 * 0.6  # holes exist


def test_missing_answers_and_min_answer_rule(org: Any) -> None:
    _, respondents, answers = to_scoring_frames(org)
    null_share = answers["value"].null_count() / answers.height
    assert 0.01 < null_share < 0.1
    scores = scale_scores(answers, org.instrument)
    has_rl = set(scores.filter(pl.col("scale") == "relational_leadership")["respondent"])
    below = respondents.height - len(has_rl)
    assert below >= 0.01 * respondents.height  # some respondents fall below the minimum
    assert answers.group_by("respondent", "target", "item").len()["len"].max() == 1


def test_resubmissions_replace_earlier_answers(org: Any) -> None:
    assert org.n_resubmissions == round(0.02 * org.n_respondents)
    latest = org.latest_submission()
    resubmitted = org.submission_respondent[org.n_respondents :]
    assert (latest[resubmitted] >= org.n_respondents).all()
    _, _, answers = to_scoring_frames(org)
    r = int(resubmitted[0])
    first = org.answer_submission == r
    later = org.answer_submission == latest[r]
    assert not (
        np.array_equal(org.answer_value[first], org.answer_value[later])
        and np.array_equal(org.answer_target[first], org.answer_target[later])
    )
    got = answers.filter(pl.col("respondent") == r).sort("target", "item", nulls_last=False)
    expected = pl.DataFrame(
        {
            "target": org.answer_target[later],
            "item": org.answer_item[later],
            "value": org.answer_value[later],
        }
    ).sort("target", "item")
    assert got["item"].to_list() == expected["item"].to_list()
    values = [None if v == NULL_VALUE else v for v in expected["value"].to_list()]
    assert got["value"].to_list() == values


def test_scoring_input_follows_the_engine_contract(org: Any) -> None:
    inp = to_scoring_input(org)
    assert inp.units["unit"].to_list() == list(range(org.n_units))
    assert inp.units.schema == {
        "unit": pl.Int32,
        "external_id": pl.String,
        "parent": pl.Int32,
        "headcount": pl.Int32,
    }
    assert inp.respondents.schema == {"respondent": pl.Int64, "unit": pl.Int32}
    assert inp.answers.schema == {
        "respondent": pl.Int64,
        "target": pl.Int32,
        "item": pl.Int16,
        "value": pl.Int16,
    }
    assert inp.respondents["respondent"].n_unique() == org.n_respondents
    # self items have no target, unit items do
    targeting = [scale.targeting for scale, _ in org.instrument.items]
    kinds = inp.answers.select(
        pl.col("item").map_elements(lambda i: targeting[i], return_dtype=pl.String).alias("t"),
        pl.col("target").is_null().alias("no_target"),
    )
    assert (kinds["no_target"] == (kinds["t"] == "self")).all()
    # raw values are accepted values of their item
    for index, (_, item) in enumerate(org.instrument.items):
        got = set(inp.answers.filter(pl.col("item") == index)["value"].drop_nulls().to_list())
        assert got <= org.instrument.accepted_values(item.key)


def test_api_batches_and_units_payload(org: Any) -> None:
    payload = to_units_payload(org)
    assert len(payload["units"]) == org.n_units
    assert {"external_id", "name"} <= set(payload["units"][0])
    batches = to_api_batches(org, batch_size=400)
    responses = [r for b in batches for r in b["responses"]]
    assert len(responses) == org.n_submissions
    assert all(len(b["responses"]) <= 400 for b in batches)
    first_batch: dict[str, int] = {}
    for i, batch in enumerate(batches):
        ids = [r["respondent"] for r in batch["responses"]]
        assert len(ids) == len(set(ids))  # a respondent twice in one batch is a 422
        for rid in ids:
            if rid in first_batch:
                assert first_batch[rid] < i
            else:
                first_batch[rid] = i
    assert len(first_batch) == org.n_respondents
    sample = responses[0]
    assert set(sample) == {"respondent", "unit", "answers", "about"}
    assert sample["respondent"].startswith("hr-")
    assert sample["unit"] in sample["about"]  # the home unit is rated (internal tie)
    keys = set(org.instrument.item_index)
    for response in responses[:200]:
        assert set(response["answers"]) <= keys
        for items in response["about"].values():
            assert items and set(items) <= keys
    # the batches hold exactly the generated answers
    n_answers = sum(len(r["answers"]) + sum(len(v) for v in r["about"].values()) for r in responses)
    assert n_answers == len(org.answer_value)
    n_null = sum(
        sum(v is None for v in r["answers"].values())
        + sum(v is None for items in r["about"].values() for v in items.values())
        for r in responses
    )
    assert n_null == int((org.answer_value == NULL_VALUE).sum())
    assert int((org.answer_target == NO_TARGET).sum()) == sum(len(r["answers"]) for r in responses)


# --------------------------------------------------------------------------------------------
# Determinism and options
# --------------------------------------------------------------------------------------------


def frames_equal(a: Any, b: Any) -> bool:
    return all(x.equals(y) for x, y in zip(to_scoring_frames(a), to_scoring_frames(b), strict=True))


def test_same_seed_same_organisation() -> None:
    a = generate_organisation(800, 40, seed=11)
    b = generate_organisation(800, 40, seed=11)
    assert a.units == b.units
    assert frames_equal(a, b)
    assert to_api_batches(a, 100) == to_api_batches(b, 100)
    c = generate_organisation(800, 40, seed=12)
    assert not frames_equal(a, c)


def test_custom_instrument_with_recode_and_other_range() -> None:
    base = builtin_instrument("coherence-v1").model_dump()
    base["key"] = "custom-recode"
    rc = base["scales"][0]
    rc["items"][0]["recode"] = {1: 1, 2: 3, 3: 5, 4: 3, 5: 1}
    base["scales"].append(
        {
            "key": "engagement",
            "targeting": "self",
            "response_min": 0,
            "response_max": 6,
            "items": [
                {"key": f"en_{i}", "reversed": i == 2, "text": {"en": f"Item {i}"}}
                for i in range(4)
            ],
        }
    )
    instrument = InstrumentDefinition.model_validate(base)
    org = generate_organisation(600, 30, seed=3, instrument=instrument)
    _, _, answers = to_scoring_frames(org)
    recoded = answers.filter(pl.col("item") == 0)["value"].drop_nulls()
    assert set(recoded.to_list()) <= {1, 2, 3, 4, 5} and recoded.n_unique() >= 4
    en = instrument.item_index["en_0"]
    values = answers.filter(pl.col("item") == en)["value"].drop_nulls()
    assert values.min() >= 0 and values.max() <= 6 and values.n_unique() >= 4


def test_small_and_edge_organisations() -> None:
    for n, u in [(1, 1), (3, 1), (10, 8), (40, 3)]:
        org = generate_organisation(n, u, seed=5)
        inp = to_scoring_input(org)
        assert inp.respondents.height == n
        assert inp.units.height == u
        assert to_api_batches(org, 7)


@pytest.mark.slow
def test_fifty_thousand_respondents_in_a_few_seconds() -> None:
    start = time.perf_counter()
    org = generate_organisation(50_000, 2_500, seed=1)
    inp = to_scoring_input(org)
    elapsed = time.perf_counter() - start
    per_respondent = inp.answers.height / org.n_respondents
    assert 100 <= per_respondent <= 140
    assert elapsed < 10, elapsed
    assert math.isclose(inp.respondents.height, 50_000)


@pytest.mark.slow
def test_api_batches_for_ten_thousand_respondents_are_reasonably_fast() -> None:
    org = generate_organisation(10_000, 500, seed=2)
    start = time.perf_counter()
    batches = to_api_batches(org, 1000)
    assert time.perf_counter() - start < 20
    assert sum(len(b["responses"]) for b in batches) == org.n_submissions
