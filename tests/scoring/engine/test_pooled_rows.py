"""Rule 2 for the rows that pool tie scores but are parts of no family (anonymity.pooled_rows):
``outgoing`` (``rollup: false``) and the roll-up ``internal`` / ``incoming`` / ``outgoing`` rows
of a unit-targeted scale. Each is the aggregate of the ties it pools; it is suppressed
(``complementary``) when the distinct raters of its suppressed ties number 1..k−1."""

from __future__ import annotations

from typing import Any

import polars as pl

from coherence_scoring.engine import score
from tests.reference import reference_score
from tests.scoring.engine.builders import RC, Round, row, same
from tests.scoring.test_engine_matches_reference import result_differences


def capacity(units: pl.DataFrame, unit: str, perspective: str, rollup: bool) -> dict[str, Any]:
    return row(
        units,
        unit=unit,
        scale="relational_capacity",
        measure="index",
        perspective=perspective,
        rollup=rollup,
    )


def status(found: dict[str, Any]) -> tuple[bool, str | None]:
    return found["suppressed"], found["suppression_reason"]


def scored(rnd: Round) -> pl.DataFrame:
    inputs = rnd.inputs(k=3)
    result = score(inputs)
    assert not result_differences(result, reference_score(inputs))
    return result.unit_scores


def own_unit_raters(children: dict[str, int]) -> Round:
    """Parent P (5 people) with the given children; everyone rates only their own unit."""
    rnd = Round()
    rnd.unit("P")
    rnd.people_in("P", 5, about={"P": same(RC, 4)})
    for child, count in children.items():
        rnd.unit(child, "P")
        rnd.people_in(child, count, about={child: same(RC, 2)})
    return rnd


def test_a_rollup_internal_row_hides_a_small_hidden_tie() -> None:
    # k = 3: P's roll-up internal (n 12) × 12 − R[P,P] × 5 − R[a,a] × 5 gave b's 2 people
    units = scored(own_unit_raters({"a": 5, "b": 2}))
    assert status(capacity(units, "b", "internal", False)) == (True, "min_group_size")
    assert status(capacity(units, "P", "internal", True)) == (True, "complementary")
    assert capacity(units, "P", "internal", True)["mean"] is None


def test_a_rollup_internal_row_is_published_when_its_hidden_ties_hold_k_or_none() -> None:
    # hidden R[b,b] and R[c,c] hold 4 raters: the row gives only their 4-person total
    units = scored(own_unit_raters({"a": 5, "b": 2, "c": 2}))
    assert status(capacity(units, "P", "internal", True)) == (False, None)
    assert capacity(units, "P", "internal", True)["n"] == 14
    # no hidden tie
    units = scored(own_unit_raters({"a": 5, "b": 3}))
    assert status(capacity(units, "P", "internal", True)) == (False, None)


def outgoing_round(second: dict[str, int]) -> Round:
    """a: 3 people rate b, and groups of ``second`` (count → targets…) rate other units; d's
    one person rates c."""
    rnd = Round()
    for unit in ("a", "b", "c", "d", "e"):
        rnd.unit(unit)
    rnd.people_in("a", 3, about={"b": same(RC, 4)})
    for targets, count in second.items():
        rnd.people_in("a", count, about={t: same(RC, 2) for t in targets})
    rnd.people_in("d", 1, about={"c": same(RC, 5)})
    return rnd


def test_an_outgoing_row_hides_a_small_hidden_tie() -> None:
    # k = 3: outgoing(a) × 5 − R[a,b] × 3 gave R[a,c] (2 raters), and incoming(c) − R[a,c]
    # then gave d's one person
    units = scored(outgoing_round({"c": 2}))
    assert status(capacity(units, "a", "outgoing", False)) == (True, "complementary")
    assert status(capacity(units, "c", "incoming", False)) == (False, None)


def test_an_outgoing_row_counts_distinct_raters_of_its_hidden_ties() -> None:
    # the same 2 people rate c and e: the hidden ties' n add up to 4, but they are 2 people
    units = scored(outgoing_round({"ce": 2}))
    assert status(capacity(units, "a", "outgoing", False)) == (True, "complementary")


def test_an_outgoing_row_is_published_when_its_hidden_ties_hold_k_or_none() -> None:
    units = scored(outgoing_round({"c": 2, "e": 2}))  # R[a,c] and R[a,e] hidden: 4 raters
    assert status(capacity(units, "a", "outgoing", False)) == (False, None)
    assert capacity(units, "a", "outgoing", False)["n"] == 7
    units = scored(outgoing_round({"c": 3}))  # nothing hidden
    assert status(capacity(units, "a", "outgoing", False)) == (False, None)


def test_rollup_incoming_and_outgoing_rows_pool_the_ties_across_the_subtree() -> None:
    # P has child a; x (outside) rates P (3 people) and a (2 people): P's roll-up incoming
    # pools R[x,P] and R[x,a]; R[x,a] is hidden with 2 raters. P's people rate x (4) and a's
    # people rate x (2): P's roll-up outgoing pools R[P,x] and the hidden R[a,x] (y's 3
    # people rating x take the complementary suppression in x's incoming column).
    rnd = Round()
    rnd.unit("P")
    rnd.unit("a", "P")
    rnd.unit("x")
    rnd.unit("y")
    rnd.people_in("x", 3, about={"P": same(RC, 4)})
    rnd.people_in("x", 2, about={"a": same(RC, 2)})
    rnd.people_in("P", 4, about={"x": same(RC, 4)})
    rnd.people_in("a", 2, about={"x": same(RC, 2)})
    rnd.people_in("y", 3, about={"x": same(RC, 3)})
    units = scored(rnd)
    assert status(capacity(units, "P", "incoming", True)) == (True, "complementary")
    assert status(capacity(units, "P", "outgoing", True)) == (True, "complementary")
    assert status(capacity(units, "x", "outgoing", False)) == (True, "complementary")


def nested_round(own: int) -> Round:
    """q (``own`` people) ⊃ p (5) ⊃ {a (2), b (2)}; everyone rates only their own unit."""
    rnd = Round()
    rnd.unit("q")
    rnd.unit("p", "q")
    rnd.unit("a", "p")
    rnd.unit("b", "p")
    rnd.people_in("q", own, about={"q": same(RC, 4)})
    rnd.people_in("p", 5, about={"p": same(RC, 3)})
    rnd.people_in("a", 2, about={"a": same(RC, 2)})
    rnd.people_in("b", 2, about={"b": same(RC, 5)})
    return rnd


def test_nested_rollup_internal_rows_do_not_difference_out_the_outer_units_people() -> None:
    # k = 3: each roll-up internal row alone is safe (hidden ties of 6 and 4 raters), but
    # q's × 11 − p's × 9 gave q's 2 people: q's row is suppressed, p's stays
    units = scored(nested_round(2))
    assert status(capacity(units, "q", "internal", True)) == (True, "complementary")
    assert capacity(units, "q", "internal", True)["mean"] is None
    assert status(capacity(units, "p", "internal", True)) == (False, None)
    assert capacity(units, "p", "internal", True)["n"] == 9


def test_nested_rollup_internal_rows_are_published_when_the_difference_holds_k() -> None:
    # q's own 3 people are published anyway: the difference hides no one
    units = scored(nested_round(3))
    assert status(capacity(units, "q", "internal", True)) == (False, None)
    assert capacity(units, "q", "internal", True)["n"] == 12
    assert status(capacity(units, "p", "internal", True)) == (False, None)
