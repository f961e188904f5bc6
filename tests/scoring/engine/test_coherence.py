"""The coherence index: the mean of relational capacity (internal and incoming), relational
leadership and psychological safety, published only when all three are (scoring-decisions.md,
"Coherence"). The inputs are pooled means (scoring method 2)."""

from __future__ import annotations

from fractions import Fraction as F
from typing import Any

import polars as pl
import pytest

from coherence_scoring.engine import score
from tests.scoring.engine.builders import (
    PS,
    RC,
    RL,
    Round,
    assert_nothing_hidden_beyond_rule_one,
    first,
    row,
    rows,
    same,
)

SAFE = {PS[1]: 5, PS[3]: 4, PS[5]: 5, PS[6]: 4}  # the not-reversed items: 18 / 4 = 4.5


def coherence(units: pl.DataFrame, unit: str, rollup: bool = False) -> dict[str, Any]:
    return row(units, unit=unit, scale="coherence", measure="index", rollup=rollup)


def test_mean_of_three_with_capacity_from_internal_and_incoming() -> None:
    rnd = Round()
    rnd.unit("u")
    rnd.unit("v")
    rnd.people_in("u", 3, {**same(RL, 4), **SAFE}, about={"u": same(RC, 4)})
    rnd.people_in("v", 3, about={"u": same(RC, 3)})
    rnd.person("v", about={"u": first(RC, 5, 1)})
    result = score(rnd.inputs(k=3))
    assert_nothing_hidden_beyond_rule_one(result)
    units = result.unit_scores
    # incoming of u, pooled: (3·27 + 5·1) / (27 + 5) = 43/16 (the mean of the four raters'
    # scores, 2.5, would differ); internal 4; leadership 4; safety 4.5
    incoming = row(
        units, unit="u", scale="relational_capacity", measure="index", perspective="incoming"
    )
    assert incoming["mean"] == 43 / 16
    found = coherence(units, "u")
    assert found["mean"] == pytest.approx(((4 + 43 / 16) / 2 + 4 + 4.5) / 3, abs=1e-12)
    # n: the smallest n of the inputs (internal 3, incoming 4, leadership 3, safety 3)
    assert (found["n"], found["band"], found["perspective"]) == (3, "moderate", "members")
    assert (found["sd"], found["ci_low"], found["ci_high"]) == (None, None, None)
    assert (found["rwg"], found["low_agreement"]) == (None, None)
    assert found["suppressed"] is False and found["suppression_reason"] is None
    # v has no leadership, safety or internal rows and nobody rates it: no coherence row
    assert rows(units, unit="v", scale="coherence").height == 0


def test_capacity_from_the_one_published_perspective() -> None:
    """u's incoming row holds v's 2 raters (rule 1). x's 2 raters rate w: the two hidden ties
    pool 4 people together, so nothing else needs to be hidden."""
    rnd = Round()
    for unit in ("u", "v", "w", "x"):
        rnd.unit(unit)
    rnd.people_in("u", 3, {**same(RL, 4), **SAFE}, about={"u": same(RC, 5)})
    rnd.people_in("v", 2, about={"u": same(RC, 3)})
    rnd.people_in("x", 2, about={"w": same(RC, 3)})
    result = score(rnd.inputs(k=3))
    units = result.unit_scores
    incoming = row(
        units, unit="u", scale="relational_capacity", measure="index", perspective="incoming"
    )
    assert incoming["suppression_reason"] == "min_group_size"
    internal = row(
        units, unit="u", scale="relational_capacity", measure="index", perspective="internal"
    )
    assert internal["suppressed"] is False
    found = coherence(units, "u")
    assert found["mean"] == (5 + 4 + 4.5) / 3
    assert found["n"] == 3


def test_missing_input_suppresses_for_min_group_size() -> None:
    rnd = Round()
    rnd.unit("u")
    rnd.people_in("u", 3, {**same(RL, 4), **SAFE})  # no relational capacity at all
    found = coherence(score(rnd.inputs(k=3)).unit_scores, "u")
    assert (found["suppressed"], found["suppression_reason"]) == (True, "min_group_size")
    assert found["mean"] is None and found["n"] is None and found["band"] is None


def _status(units: pl.DataFrame, unit: str, rollup: bool, scale: str, perspective: str) -> str:
    found = rows(
        units, unit=unit, rollup=rollup, scale=scale, measure="index", perspective=perspective
    )
    if found.height == 0:
        return "missing"
    reason = found["suppression_reason"][0]
    return "published" if reason is None else reason


def test_reason_follows_the_inputs() -> None:
    """y's 2 members lie inside p's roll-up with x's 3: the protection must hide one of x's
    leadership row and p's roll-up leadership row (complementary). Every coherence row's reason
    then follows its inputs: ``min_group_size`` when one is missing or suppressed for
    min_group_size, else ``complementary``."""
    rnd = Round()
    rnd.unit("p")
    rnd.unit("x", "p")
    rnd.unit("y", "p")
    rnd.people_in("x", 3, {**same(RL, 4), **SAFE}, about={"x": same(RC, 4)})
    rnd.people_in("y", 2, same(RL, 4))
    units = score(rnd.inputs(k=3)).unit_scores
    reasons = []
    for found in rows(units, scale="coherence").iter_rows(named=True):
        unit, rollup = found["unit"], found["rollup"]
        capacity = {
            _status(units, unit, rollup, "relational_capacity", p) for p in ("internal", "incoming")
        }
        leadership = _status(units, unit, rollup, "relational_leadership", "members")
        safety = _status(units, unit, rollup, "psychological_safety", "members")
        if "published" in capacity and leadership == safety == "published":
            assert not found["suppressed"], found
            continue
        too_few = {"missing", "min_group_size"}
        if capacity <= too_few or "min_group_size" in capacity or {leadership, safety} & too_few:
            expected = "min_group_size"
        else:
            expected = "complementary"
        assert (found["suppressed"], found["suppression_reason"]) == (True, expected), found
        reasons.append(expected)
    # the round reaches both reasons (y: no capacity, no safety; x or p: hidden leadership)
    assert sorted(set(reasons)) == ["complementary", "min_group_size"]


def test_rollup_coherence_uses_rollup_rows() -> None:
    rnd = Round()
    rnd.unit("p")
    rnd.unit("a", "p")
    rnd.unit("b", "p")
    rnd.unit("c")
    rnd.people_in("a", 3, {**same(RL, 5), **SAFE}, about={"a": same(RC, 4), "b": same(RC, 2)})
    rnd.people_in("b", 3, {**same(RL, 3), **SAFE}, about={"b": same(RC, 5)})
    rnd.people_in("c", 3, about={"a": same(RC, 3)})
    result = score(rnd.inputs(k=3))
    assert_nothing_hidden_beyond_rule_one(result)
    units = result.unit_scores
    # roll-up p: internal pools a's 18 responses each (36 + 18) and b's 9 (45):
    # (3·54 + 3·45) / (3·18 + 3·9) = 297/81 = 11/3 (the mean of the six raters' values, 4,
    # would differ); incoming: c about a, 3; leadership (5·27 + 3·27) / 54 = 4; safety 4.5
    found = coherence(units, "p", rollup=True)
    assert found["mean"] == pytest.approx(float(((F(11, 3) + 3) / 2 + 4 + F(9, 2)) / 3))
    assert found["n"] == 3  # incoming: 3 raters
    # without roll-up: a (internal 4, incoming 3), b (internal 5, incoming 2)
    assert coherence(units, "a")["mean"] == pytest.approx(((4 + 3) / 2 + 5 + 4.5) / 3)
    assert coherence(units, "b")["mean"] == pytest.approx(((5 + 2) / 2 + 3 + 4.5) / 3)


def test_coherence_band_is_decided_on_the_exact_mean() -> None:
    """Capacity 7/2, leadership 14/3, safety 23/6: the coherence mean is exactly 4.0 (moderate),
    but 3.5 + 4.666… + 3.833… in floats is 4.000000000000001 (strong)."""
    rnd = Round()
    rnd.unit("u")
    # safety: items 1-6 answered, scored 3 4 4 4 4 4 (items 1, 3, 5 reversed: raw 3, 2, 2)
    safety = {PS[0]: 3, PS[1]: 4, PS[2]: 2, PS[3]: 4, PS[4]: 2, PS[5]: 4}  # 23 / 6
    leadership = {**same(RL[:6], 5), **same(RL[6:], 4)}  # 42 / 9 = 14/3
    capacity = {**same(RC[:3], 3), **same(RC[3:6], 4)}  # 21 / 6 = 7/2
    rnd.people_in("u", 3, {**safety, **leadership}, about={"u": capacity})
    result = score(rnd.inputs(k=3))
    assert_nothing_hidden_beyond_rule_one(result)
    units = result.unit_scores
    for scale, perspective, mean in (
        ("relational_capacity", "internal", 7 / 2),
        ("relational_leadership", "members", 14 / 3),
        ("psychological_safety", "members", 23 / 6),
    ):
        found = row(units, unit="u", scale=scale, measure="index", perspective=perspective)
        assert found["mean"] == mean
    found = coherence(units, "u")
    assert found["mean"] == pytest.approx(4.0, abs=1e-12)
    assert found["band"] == "moderate"
