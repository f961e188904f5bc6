"""The coherence index: the mean of relational capacity (internal and incoming), relational
leadership and psychological safety, published only when all three are."""

from __future__ import annotations

from typing import Any

import polars as pl

from coherence_scoring.engine import score
from tests.scoring.engine.builders import PS, RC, RL, Round, row, rows, same

SAFE = {PS[1]: 5, PS[3]: 4, PS[5]: 5, PS[6]: 4}  # the not-reversed items: 4.5


def coherence(units: pl.DataFrame, unit: str, rollup: bool = False) -> dict[str, Any]:
    return row(units, unit=unit, scale="coherence", measure="index", rollup=rollup)


def test_mean_of_three_with_capacity_from_internal_and_incoming() -> None:
    rnd = Round()
    rnd.unit("u")
    rnd.unit("v")
    rnd.people_in("u", 3, {**same(RL, 4), **SAFE}, about={"u": same(RC, 4)})
    rnd.people_in("v", 4, about={"u": same(RC, 3)})
    units = score(rnd.inputs(k=3)).unit_scores
    found = coherence(units, "u")
    assert found["mean"] == ((4 + 3) / 2 + 4 + 4.5) / 3
    assert (found["n"], found["band"], found["perspective"]) == (3, "moderate", "members")
    assert (found["sd"], found["ci_low"], found["rwg"], found["low_agreement"]) == (
        None,
        None,
        None,
        None,
    )
    assert found["suppressed"] is False
    # v has no leadership, safety or internal rows and nobody rates it: no coherence row
    assert rows(units, unit="v", scale="coherence").height == 0


def test_capacity_from_the_one_published_perspective() -> None:
    rnd = Round()
    rnd.unit("u")
    rnd.unit("v")
    rnd.people_in("u", 3, {**same(RL, 4), **SAFE}, about={"u": same(RC, 5)})
    rnd.people_in("v", 2, about={"u": same(RC, 1)})  # incoming of u: 2 < k
    found = coherence(score(rnd.inputs(k=3)).unit_scores, "u")
    assert found["mean"] == (5 + 4 + 4.5) / 3
    assert found["n"] == 3


def test_missing_input_suppresses_for_min_group_size() -> None:
    rnd = Round()
    rnd.unit("u")
    rnd.people_in("u", 3, {**same(RL, 4), **SAFE})  # no relational capacity at all
    found = coherence(score(rnd.inputs(k=3)).unit_scores, "u")
    assert (found["suppressed"], found["suppression_reason"]) == (True, "min_group_size")
    assert found["mean"] is None and found["n"] is None


def test_complementary_input_suppresses_as_complementary() -> None:
    rnd = Round()
    rnd.unit("p")
    rnd.unit("x", "p")
    rnd.unit("y", "p")
    rnd.people_in("x", 3, {**same(RL, 4), **SAFE}, about={"x": same(RC, 4)})
    rnd.people_in("y", 2, same(RL, 4))  # y: 2 < k, so x's leadership row is the complement
    units = score(rnd.inputs(k=3)).unit_scores
    leadership = row(units, unit="x", scale="relational_leadership", measure="index", rollup=False)
    assert leadership["suppression_reason"] == "complementary"
    found = coherence(units, "x")
    assert (found["suppressed"], found["suppression_reason"]) == (True, "complementary")


def test_rollup_coherence_uses_rollup_rows() -> None:
    rnd = Round()
    rnd.unit("p")
    rnd.unit("a", "p")
    rnd.unit("b", "p")
    rnd.unit("c")
    rnd.people_in("a", 3, {**same(RL, 5), **SAFE}, about={"a": same(RC, 4), "b": same(RC, 2)})
    rnd.people_in("b", 3, {**same(RL, 3), **SAFE}, about={"b": same(RC, 5)})
    rnd.people_in("c", 3, about={"a": same(RC, 3)})
    units = score(rnd.inputs(k=3)).unit_scores
    # roll-up p: internal per rater: a raters mean(4, 2) = 3, b raters 5 → 4; incoming 3;
    # leadership (5·3 + 3·3) / 6 = 4; safety 4.5
    found = coherence(units, "p", rollup=True)
    assert found["mean"] == ((4 + 3) / 2 + 4 + 4.5) / 3
    assert found["n"] == 3
