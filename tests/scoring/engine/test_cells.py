"""Ties and the unit perspectives internal / incoming / outgoing, without and with roll-up
(scoring method 2: pooled over responses, n = people, spread over each person's own mean)."""

from __future__ import annotations

from fractions import Fraction as F
from typing import Any

import polars as pl
import pytest

from coherence_scoring.engine import ScoringResult, score
from tests.scoring.engine.builders import (
    RC,
    RL,
    Round,
    assert_nothing_hidden_beyond_rule_one,
    assert_published,
    first,
    row,
    rows,
    same,
)


def three_units() -> Round:
    """a and b under p (p has no members); c a root of its own. Every tie has 3 or 4 raters and
    every (tie, item) cell at least 3 (k = 3), so nothing is hidden. Raters answer every item of a
    tie with one value, except a4, who answers the first 5 items about a with 2::

        a1: a 9×4, b 9×2, c 9×3     b1: b 9×4, a 9×4, c 9×1     c1: c 9×5, a 9×3, b 9×5
        a2: a 9×5, b 9×3            b2: b 9×5, a 9×2, c 9×2     c2: c 9×4, a 9×4, b 9×5
        a3: a 9×3, c 9×5            b3: b 9×3, a 9×3, c 9×3     c3: c 9×4, a 9×5, b 9×2
        a4: a 5×2, b 9×4, c 9×4
    """
    rnd = Round()
    rnd.unit("p")
    rnd.unit("a", "p")
    rnd.unit("b", "p")
    rnd.unit("c")
    rnd.person("a", about={"a": same(RC, 4), "b": same(RC, 2), "c": same(RC, 3)})
    rnd.person("a", about={"a": same(RC, 5), "b": same(RC, 3)})
    rnd.person("a", about={"a": same(RC, 3), "c": same(RC, 5)})
    rnd.person("a", about={"a": first(RC, 5, 2), "b": same(RC, 4), "c": same(RC, 4)})
    rnd.person("b", about={"b": same(RC, 4), "a": same(RC, 4), "c": same(RC, 1)})
    rnd.person("b", about={"b": same(RC, 5), "a": same(RC, 2), "c": same(RC, 2)})
    rnd.person("b", about={"b": same(RC, 3), "a": same(RC, 3), "c": same(RC, 3)})
    rnd.person("c", about={"c": same(RC, 5), "a": same(RC, 3), "b": same(RC, 5)})
    rnd.person("c", about={"c": same(RC, 4), "a": same(RC, 4), "b": same(RC, 5)})
    rnd.person("c", about={"c": same(RC, 4), "a": same(RC, 5), "b": same(RC, 2)})
    return rnd


@pytest.fixture(scope="module")
def result() -> ScoringResult:
    found = score(three_units().inputs(k=3))
    assert_nothing_hidden_beyond_rule_one(found)
    return found


def rc(units: pl.DataFrame, unit: str, perspective: str, rollup: bool = False) -> dict[str, Any]:
    return row(
        units,
        unit=unit,
        scale="relational_capacity",
        measure="index",
        perspective=perspective,
        rollup=rollup,
    )


def test_ties_between_units_as_they_stand(result: ScoringResult) -> None:
    index = rows(result.tie_scores, measure="index")
    pairs = {(r["from_unit"], r["to_unit"]) for r in index.iter_rows(named=True)}
    assert pairs == {
        ("a", "a"),
        ("a", "b"),
        ("a", "c"),
        ("b", "b"),
        ("b", "a"),
        ("b", "c"),
        ("c", "c"),
        ("c", "a"),
        ("c", "b"),
    }  # fmt: skip  (p has no members: no tie from p)
    aa = row(index, from_unit="a", to_unit="a")
    # pooled: (36 + 45 + 27 + 10) / (9 + 9 + 9 + 5) = 118/32 = 59/16; the mean of the raters'
    # tie scores (4 + 5 + 3 + 2) / 4 = 3.5 would differ; sd over 4, 5, 3, 2
    assert_published(aa, F(59, 16), [4, 5, 3, 2])
    assert aa["band"] == "moderate"
    # item rows: the first 5 items hold a4's 2 too, the last 4 do not
    first_item = row(result.tie_scores, from_unit="a", to_unit="a", measure=RC[0])
    assert_published(first_item, F(14, 4), [4, 5, 3, 2])
    last_item = row(result.tie_scores, from_unit="a", to_unit="a", measure=RC[8])
    assert_published(last_item, F(12, 3), [4, 5, 3])
    assert first_item["band"] is None  # bands only on index rows
    # the internal row of a is the tie R[a, a] under another name
    internal = rc(result.unit_scores, "a", "internal")
    assert (internal["n"], internal["mean"], internal["sd"]) == (aa["n"], aa["mean"], aa["sd"])


def test_internal_row_agreement_over_the_counted_responses(result: ScoringResult) -> None:
    internal = rc(result.unit_scores, "a", "internal")
    # item variances: items 1-5 over 4, 5, 3, 2 → 5/3; items 6-9 over 4, 5, 3 → 1;
    # s̄² = (5·5/3 + 4·1) / 9 = 37/27, q = s̄²/2 = 37/54: rwg(J) = 9(1 − q) / (9(1 − q) + q)
    q = F(37, 54)
    assert internal["rwg"] == pytest.approx(float(9 * (1 - q) / (9 * (1 - q) + q)), abs=1e-12)
    assert internal["low_agreement"] is False
    item = row(result.unit_scores, unit="a", measure=RC[0], perspective="internal", rollup=False)
    assert item["rwg"] == pytest.approx(1 - (5 / 3) / 2, abs=1e-12)
    assert item["low_agreement"] is True
    assert rc(result.unit_scores, "a", "incoming")["rwg"] is None  # members and internal only
    assert rc(result.unit_scores, "a", "outgoing")["rwg"] is None


def test_incoming_pools_the_ties_from_other_units(result: ScoringResult) -> None:
    # b → a: 4, 2, 3 and c → a: 3, 4, 5, 9 responses each: (81 + 108) / 54 = 7/2
    assert_published(rc(result.unit_scores, "a", "incoming"), F(7, 2), [4, 2, 3, 3, 4, 5])


def test_outgoing_pools_every_response_of_a_rater_across_targets(result: ScoringResult) -> None:
    # a1 about b and c: (18 + 27) / 18 = 2.5; a2 about b: 3; a3 about c: 5; a4 about b and c:
    # (36 + 36) / 18 = 4. Pooled: (45 + 27 + 45 + 72) / (18 + 9 + 9 + 18) = 189/54 = 3.5,
    # n = 4 people (not 6 ties); the mean of the four people's values would be 3.625
    assert_published(rc(result.unit_scores, "a", "outgoing"), F(7, 2), [F(5, 2), 3, 5, 4])


def test_rollup_treats_the_subtree_as_one_unit(result: ScoringResult) -> None:
    units = result.unit_scores
    # internal of p: raters in a, b about a or b, each person's value over all those responses:
    # a1 (36 + 18)/18 = 3, a2 (45 + 27)/18 = 4, a3 27/9 = 3, a4 (10 + 36)/14 = 23/7,
    # b1 (36 + 36)/18 = 4, b2 (45 + 18)/18 = 7/2, b3 3
    # pooled: (54 + 72 + 27 + 46 + 72 + 63 + 54) / (18 + 18 + 9 + 14 + 18 + 18 + 18) = 388/113
    internal = rc(units, "p", "internal", rollup=True)
    assert_published(internal, F(388, 113), [3, 4, 3, F(23, 7), 4, F(7, 2), 3])
    assert internal["rwg"] is None  # rwg: internal rows without roll-up only
    # incoming of p: raters in c about a or b: c1 (27 + 45)/18 = 4, c2 (36 + 45)/18 = 9/2,
    # c3 (45 + 18)/18 = 7/2 → 216/54 = 4
    assert_published(rc(units, "p", "incoming", rollup=True), F(4), [4, F(9, 2), F(7, 2)])
    # outgoing of p: raters in a, b about c: a1 3, a3 5, a4 4, b1 1, b2 2, b3 3 → 162/54 = 3
    assert_published(rc(units, "p", "outgoing", rollup=True), F(3), [3, 5, 4, 1, 2, 3])
    # c has no children: no roll-up rows; p has no members: no rows without roll-up
    assert rows(units, unit="c", rollup=True).height == 0
    assert rows(units, unit="p", rollup=False).height == 0
    # roll-up ties are not published
    assert rows(result.tie_scores, from_unit="p").height == 0


def test_rollup_members_pool_the_subtree() -> None:
    """a: a1..a3 answer every leadership item with 5, a4 the first 5 with 5; b: b1..b3 every
    item with 3. Every (unit, item) cell holds at least 3 people."""
    rnd = Round()
    rnd.unit("p")
    rnd.unit("a", "p")
    rnd.unit("b", "p")
    rnd.people_in("a", 3, same(RL, 5))
    rnd.person("a", first(RL, 5, 5))
    rnd.people_in("b", 3, same(RL, 3))
    result = score(rnd.inputs(k=3))
    assert_nothing_hidden_beyond_rule_one(result)
    units = result.unit_scores
    index = row(units, unit="p", scale="relational_leadership", measure="index", rollup=True)
    # (27·5 + 5·5 + 27·3) / (27 + 5 + 27) = 241/59; 7 people, each counted once
    assert_published(index, F(241, 59), [5, 5, 5, 5, 3, 3, 3])
    item = row(units, unit="p", measure=RL[0], rollup=True)
    # 5, 5, 5, 5, 3, 3, 3: mean 29/7, variance (4·(6/7)² + 3·(8/7)²) / 6 = 8/7
    assert_published(item, F(29, 7), [5, 5, 5, 5, 3, 3, 3])
    assert item["rwg"] == pytest.approx(1 - (8 / 7) / 2, abs=1e-12)
    assert item["low_agreement"] is True
    last = row(units, unit="p", measure=RL[8], rollup=True)
    assert_published(last, F(24, 6), [5, 5, 5, 3, 3, 3])  # a4 did not answer it
    # rwg(J) of the roll-up index: items 1-5 variance 8/7, items 6-9 variance 6·1/5 = 6/5
    s_bar = (5 * F(8, 7) + 4 * F(6, 5)) / 9
    q = s_bar / 2
    assert index["rwg"] == pytest.approx(float(9 * (1 - q) / (9 * (1 - q) + q)), abs=1e-12)


def test_outgoing_rows_under_k_are_suppressed_for_min_group_size() -> None:
    """SCORING.md §5.1: a row pooling fewer than k people is suppressed for ``min_group_size``.
    Two raters in a rate b: the tie a → b and the outgoing rows of a hold 2 people (k = 3)."""
    rnd = Round()
    rnd.unit("a")
    rnd.unit("b")
    rnd.people_in("a", 2, about={"b": same(RC, 4)})
    rnd.people_in("b", 3, about={"b": same(RC, 3)})
    result = score(rnd.inputs(k=3))
    tie = row(result.tie_scores, from_unit="a", to_unit="b", measure="index")
    assert tie["suppression_reason"] == "min_group_size"
    outgoing = rows(result.unit_scores, unit="a", perspective="outgoing")
    assert outgoing.height == 1 + 3 + 9  # index, 3 subscales, 9 items
    assert set(outgoing["suppression_reason"]) == {"min_group_size"}
