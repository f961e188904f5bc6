"""Ties and the unit perspectives internal / incoming / outgoing, without and with roll-up."""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest
from scipy import stats

from coherence_scoring.engine import cell_values, score
from tests.scoring.engine.builders import RC, Round, row, rows, same


def three_units() -> Round:
    """a and b under p; c a root of its own. Every rater rates with one value for all items."""
    rnd = Round()
    rnd.unit("p")
    rnd.unit("a", "p")
    rnd.unit("b", "p")
    rnd.unit("c")
    rnd.person("a", about={"a": same(RC, 4), "b": same(RC, 2), "c": same(RC, 3)})
    rnd.person("a", about={"a": same(RC, 5), "b": same(RC, 3)})
    rnd.person("a", about={"a": same(RC, 3), "c": same(RC, 5)})
    rnd.person("b", about={"b": same(RC, 4), "a": same(RC, 4), "c": same(RC, 1)})
    rnd.person("b", about={"b": same(RC, 5), "a": same(RC, 2)})
    rnd.person("c", about={"c": same(RC, 5), "a": same(RC, 3), "b": same(RC, 5)})
    rnd.person("c", about={"c": same(RC, 4), "a": same(RC, 4)})
    rnd.person("p", about={"p": same(RC, 2), "a": same(RC, 4), "c": same(RC, 2)})
    return rnd


def rc(units: pl.DataFrame, unit: str, perspective: str, rollup: bool = False) -> dict[str, Any]:
    return row(
        units,
        unit=unit,
        scale="relational_capacity",
        measure="index",
        perspective=perspective,
        rollup=rollup,
    )


def test_ties_between_units_as_they_stand() -> None:
    inp = three_units().inputs(k=3)
    index = rows(score(inp).tie_scores, measure="index")
    pairs = {(r["from_unit"], r["to_unit"]) for r in index.iter_rows(named=True)}
    assert pairs == {
        ("a", "a"), ("a", "b"), ("a", "c"),
        ("b", "b"), ("b", "a"), ("b", "c"),
        ("c", "c"), ("c", "a"), ("c", "b"),
        ("p", "p"), ("p", "a"), ("p", "c"),
    }  # fmt: skip
    aa = row(index, from_unit="a", to_unit="a")  # 4, 5, 3
    assert (aa["n"], aa["mean"], aa["sd"], aa["band"]) == (3, 4.0, 1.0, "moderate")
    assert aa["ci_low"] == pytest.approx(4.0 - stats.t.ppf(0.975, 2) / math.sqrt(3))
    # the others have 1 or 2 raters: suppressed
    assert index.filter(pl.col("suppressed"))["n"].null_count() == 11
    item = row(score(inp).tie_scores, from_unit="a", to_unit="a", measure=RC[0])
    assert (item["mean"], item["band"]) == (4.0, None)


def test_internal_incoming_outgoing_without_rollup() -> None:
    # k = 1 is not allowed; use k = 3 and read cell_values for the small cells
    inp = three_units().inputs(k=3)
    units = score(inp).unit_scores
    internal = rc(units, "a", "internal")
    assert (internal["n"], internal["mean"]) == (3, 4.0)
    incoming = rc(units, "a", "incoming")  # b: 4, 2; c: 3, 4; p: 4
    assert (incoming["n"], incoming["mean"]) == (5, 17 / 5)
    assert incoming["sd"] == pytest.approx(math.sqrt((0.36 + 1.96 + 0.16 + 0.36 + 0.36) / 4))
    assert incoming["rwg"] is None  # rwg only on members and internal rows
    values = cell_values(inp)
    outgoing = rows(
        values, unit="a", scale="relational_capacity", measure="index", perspective="outgoing"
    )
    # per rater: mean(2, 3) = 2.5; 3; 5
    assert sorted(outgoing.filter(~outgoing["rollup"])["value"]) == [2.5, 3.0, 5.0]
    out = rc(units, "a", "outgoing")
    assert (out["n"], out["mean"]) == (3, (2.5 + 3.0 + 5.0) / 3)


def test_rollup_treats_the_subtree_as_one_unit() -> None:
    inp = three_units().inputs(k=3)
    values = cell_values(inp).filter(
        scale="relational_capacity", measure="index", unit="p", rollup=True
    )

    def of(perspective: str) -> list[float]:
        return sorted(values.filter(perspective=perspective)["value"])

    # raters in a, b, p about units in {p, a, b}, one mean per rater
    assert of("internal") == sorted([3.0, 4.0, 3.0, 4.0, 3.5, 3.0])
    # raters in a, b, p about c (outside): 3; 5; 1; 2
    assert of("outgoing") == sorted([3.0, 5.0, 1.0, 2.0])
    # raters in c about a or b: mean(3, 5) = 4; 4
    assert of("incoming") == [4.0, 4.0]
    units = score(inp).unit_scores
    internal = rc(units, "p", "internal", rollup=True)
    assert (internal["n"], internal["mean"]) == (6, 20.5 / 6)
    assert internal["rwg"] is None
    assert rc(units, "p", "incoming", rollup=True)["n"] is None  # 2 < k
    assert rc(units, "p", "outgoing", rollup=True)["n"] == 4
    # c has no children: no roll-up rows
    assert rows(units, unit="c", rollup=True).height == 0


def test_rollup_members_count_each_respondent_once() -> None:
    rnd = three_units()
    rnd.people_in("a", 2, {"rl_frame_direction": 5})
    rnd.people_in("b", 1, {"rl_frame_direction": 3})
    units = score(rnd.inputs(k=3)).unit_scores
    item = row(units, unit="p", measure="rl_frame_direction", rollup=True)
    assert (item["n"], item["mean"]) == (3, 13 / 3)
    assert item["rwg"] == pytest.approx(1 - (4 / 3) / 2)  # var(5, 5, 3) = 4/3
