"""The anonymity rules (SCORING.md §5): rule 1 at k − 1 and k, and complementary suppression in
each family of scoring-decisions.md — incoming column, hierarchy and organisation."""

from __future__ import annotations

from typing import Any

import polars as pl

from coherence_scoring.engine import score
from coherence_scoring.engine.anonymity import apply_rules
from coherence_scoring.engine.layout import INCOMING, MEMBERS, build_tree
from coherence_scoring.engine.types import UNITS_SCHEMA
from tests.scoring.engine.builders import RC, RL, Round, row, rows, same

VALUE_FIELDS = ["n", "mean", "sd", "ci_low", "ci_high", "rwg", "band", "low_agreement"]


def leadership(units: pl.DataFrame, unit: str, rollup: bool = False) -> dict[str, Any]:
    return row(
        units,
        unit=unit,
        scale="relational_leadership",
        measure="index",
        perspective="members",
        rollup=rollup,
    )


def status(found: dict[str, Any]) -> tuple[bool, str | None]:
    return found["suppressed"], found["suppression_reason"]


def test_rule_one_at_k_minus_one_and_k() -> None:
    def single_unit(members: int) -> tuple[dict[str, Any], dict[str, Any]]:
        rnd = Round()
        rnd.unit("u", headcount=10)
        rnd.people_in("u", members, same(RL, 4))
        result = score(rnd.inputs(k=5))
        return leadership(result.unit_scores, "u"), row(result.participation, unit="u")

    small, small_p = single_unit(4)
    assert status(small) == (True, "min_group_size")
    assert all(small[field] is None for field in VALUE_FIELDS)
    assert status(small_p) == (True, "min_group_size")
    assert small_p["respondents"] is None and small_p["response_rate"] is None
    enough, enough_p = single_unit(5)
    assert status(enough) == (False, None)
    assert (enough["n"], enough["mean"]) == (5, 4.0)
    assert (enough_p["respondents"], enough_p["response_rate"]) == (5, 0.5)


def test_incoming_column_complements_the_smallest_published_tie() -> None:
    rnd = Round()
    for unit in ("a", "b", "c", "d"):
        rnd.unit(unit)
    rnd.people_in("a", 3, about={"b": same(RC, 4)})
    rnd.people_in("c", 2, about={"b": same(RC, 4)})
    rnd.people_in("d", 4, about={"b": same(RC, 4)})
    result = score(rnd.inputs(k=3))
    ties = rows(result.tie_scores, measure="index")
    assert status(row(ties, from_unit="c", to_unit="b")) == (True, "min_group_size")
    assert status(row(ties, from_unit="a", to_unit="b")) == (True, "complementary")
    assert row(ties, from_unit="a", to_unit="b")["mean"] is None
    assert status(row(ties, from_unit="d", to_unit="b")) == (False, None)
    incoming = row(
        result.unit_scores,
        unit="b",
        scale="relational_capacity",
        measure="index",
        perspective="incoming",
    )
    assert status(incoming) == (False, None) and incoming["n"] == 9


def test_incoming_column_ties_are_broken_by_external_id() -> None:
    rnd = Round()
    for unit in ("b", "z", "y", "c"):
        rnd.unit(unit)
    rnd.people_in("z", 3, about={"b": same(RC, 4)})
    rnd.people_in("y", 3, about={"b": same(RC, 4)})
    rnd.people_in("c", 1, about={"b": same(RC, 4)})
    ties = rows(score(rnd.inputs(k=3)).tie_scores, measure="index")
    assert status(row(ties, from_unit="y", to_unit="b")) == (True, "complementary")
    assert status(row(ties, from_unit="z", to_unit="b")) == (False, None)


def test_hierarchy_complements_a_child() -> None:
    rnd = Round()
    rnd.unit("p")
    for child in ("a", "b", "c"):
        rnd.unit(child, "p")
    rnd.people_in("a", 2, same(RL, 4))
    rnd.people_in("b", 4, same(RL, 4))
    rnd.people_in("c", 5, same(RL, 4))
    rnd.people_in("p", 6, same(RL, 4))
    units = score(rnd.inputs(k=3)).unit_scores
    assert status(leadership(units, "a")) == (True, "min_group_size")
    assert status(leadership(units, "b")) == (True, "complementary")
    assert status(leadership(units, "c")) == (False, None)
    assert status(leadership(units, "p")) == (False, None)  # 6 direct members
    assert status(leadership(units, "p", rollup=True)) == (False, None)
    assert leadership(units, "p", rollup=True)["n"] == 17


def test_hierarchy_complements_the_parents_direct_row() -> None:
    rnd = Round()
    rnd.unit("p")
    rnd.unit("a", "p")
    rnd.unit("b", "p")
    rnd.people_in("a", 1, same(RL, 4))
    rnd.people_in("p", 3, same(RL, 4))
    rnd.people_in("b", 3, same(RL, 4))
    units = score(rnd.inputs(k=3)).unit_scores
    # the parts a (1), p direct (3), b (3): smallest published first, then external id: "b" < "p"
    assert status(leadership(units, "b")) == (True, "complementary")
    assert status(leadership(units, "p")) == (False, None)


def test_organisation_complements_a_root_and_keeps_the_summary_mean() -> None:
    rnd = Round()
    rnd.unit("p")
    rnd.unit("a", "p")
    rnd.unit("b", "p")
    rnd.unit("q")
    rnd.people_in("a", 3, same(RL, 4))
    rnd.people_in("b", 3, same(RL, 4))
    rnd.people_in("q", 2, same(RL, 4))
    result = score(rnd.inputs(k=3))
    assert status(leadership(result.unit_scores, "q")) == (True, "min_group_size")
    assert status(leadership(result.unit_scores, "p", rollup=True)) == (True, "complementary")
    # p's hidden roll-up must not be rebuilt from a and b: a (first by external id) goes too
    assert status(leadership(result.unit_scores, "a")) == (True, "complementary")
    assert status(leadership(result.unit_scores, "b")) == (False, None)
    assert result.summary["scales"]["relational_leadership"]["mean"] == 4.0
    participation = result.participation
    assert status(row(participation, unit="q", rollup=False)) == (True, "min_group_size")
    assert status(row(participation, unit="p", rollup=True)) == (True, "complementary")
    assert status(row(participation, unit="a", rollup=False)) == (True, "complementary")
    assert status(row(participation, unit="b", rollup=False)) == (False, None)


def _differencing_round(a_answers: list[int], q_answers: list[int]) -> Round:
    """k = 3: root p with children a (3 people) and b (3), and a second root q (2 people)."""
    rnd = Round()
    rnd.unit("p")
    rnd.unit("a", "p")
    rnd.unit("b", "p")
    rnd.unit("q")
    for value in a_answers:
        rnd.person("a", same(RL, value))
    rnd.people_in("b", 3, same(RL, 5))
    for value in q_answers:
        rnd.person("q", same(RL, value))
    return rnd


def test_a_small_root_cannot_be_recovered_across_levels() -> None:
    """Before rule 2 looked at hidden aggregates, p's roll-up was hidden (for q) but a and b were
    published, so p = a + b and q = organisation − p: q's mean was 2 people's mean in the clear.
    Now the published numbers leave a + q (5 people) as the only unknown sum."""
    result = score(_differencing_round([4, 4, 4], [2, 2]).inputs(k=3))
    units = rows(result.unit_scores, scale="relational_leadership", perspective="members")
    published = units.filter(~pl.col("suppressed"))
    assert set(published["unit"]) == {"b"}
    assert status(leadership(units, "p", rollup=True)) == (True, "complementary")
    assert status(leadership(units, "q")) == (True, "min_group_size")
    hidden = [
        status(leadership(units, unit))
        for unit in ("a", "b")
        if leadership(units, unit)["suppressed"]
    ]
    assert hidden == [(True, "complementary")]
    # the summary mean is published (8 people); minus b, 5 people's total stays unknown
    org_total = result.summary["scales"]["relational_leadership"]["mean"] * 8
    known = sum(r["n"] * r["mean"] for r in published.filter(measure="index").iter_rows(named=True))
    assert org_total - known == 3 * 4 + 2 * 2  # a + q: nothing smaller is determined

    # Two rounds with other values for q (2 → 3), a compensating (4, 4, 4 → 3, 3, 4), publish
    # the same unit rows, participation and scale means: q's value is not recoverable.
    other = score(_differencing_round([3, 3, 4], [3, 3]).inputs(k=3))
    assert other.unit_scores.equals(result.unit_scores)
    assert other.participation.equals(result.participation)
    assert other.tie_scores.equals(result.tie_scores)
    for scale, values in result.summary["scales"].items():
        assert other.summary["scales"][scale]["mean"] == values["mean"]


def test_organisation_smaller_than_k_hides_the_summary_mean() -> None:
    rnd = Round()
    rnd.unit("a")
    rnd.unit("b")
    rnd.people_in("a", 1, same(RL, 4))
    rnd.people_in("b", 1, same(RL, 2))
    result = score(rnd.inputs(k=3))
    assert result.summary["scales"]["relational_leadership"]["mean"] is None


def _tree(*units: tuple[int, str, int | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "unit": [u[0] for u in units],
            "external_id": [u[1] for u in units],
            "parent": [u[2] for u in units],
            "headcount": [None] * len(units),
        },
        schema=UNITS_SCHEMA,
    )


def _unit_rows(*rows_: tuple[int, bool, int, int, int]) -> pl.DataFrame:
    return pl.DataFrame(rows_, schema=["unit", "rollup", "persp", "mid", "n"], orient="row").cast(
        {"unit": pl.Int32, "persp": pl.Int8, "mid": pl.Int32, "n": pl.Int64}
    )


EMPTY_TIES = pl.DataFrame(schema={"from": pl.Int32, "to": pl.Int32, "mid": pl.Int32, "n": pl.Int64})
EMPTY_PARTICIPATION = pl.DataFrame(
    schema={"unit": pl.Int32, "rollup": pl.Boolean, "respondents": pl.Int64}
)


def test_the_aggregate_is_suppressed_when_no_part_is_left() -> None:
    """Rows built by hand: the parts (2 + 1) cannot reach k = 5, so the roll-up goes too."""
    tree = build_tree(_tree((0, "p", None), (1, "a", 0), (2, "b", 0)))
    unit_rows = _unit_rows(
        (0, True, MEMBERS, 7, 9),  # the aggregate: published under rule 1
        (1, False, MEMBERS, 7, 2),
        (2, False, MEMBERS, 7, 1),
    )
    published = apply_rules(unit_rows, EMPTY_TIES, EMPTY_PARTICIPATION, tree, 5)
    flags = published.unit_rows.select("suppressed", "suppression_reason").rows()
    assert flags == [
        (True, "complementary"),
        (True, "min_group_size"),
        (True, "min_group_size"),
    ]


def test_the_incoming_aggregate_is_suppressed_when_no_tie_is_left() -> None:
    tree = build_tree(_tree((0, "a", None), (1, "b", None), (2, "c", None)))
    unit_rows = _unit_rows((1, False, INCOMING, 0, 6))
    ties = pl.DataFrame(
        {"from": [0, 2], "to": [1, 1], "mid": [0, 0], "n": [2, 3]},
        schema={"from": pl.Int32, "to": pl.Int32, "mid": pl.Int32, "n": pl.Int64},
    )
    published = apply_rules(unit_rows, ties, EMPTY_PARTICIPATION, tree, 6)
    assert published.unit_rows["suppression_reason"].to_list() == ["complementary"]
    assert published.tie_rows["suppression_reason"].to_list() == ["min_group_size"] * 2


def test_a_hidden_aggregate_makes_its_smallest_published_part_hidden() -> None:
    """Rows built by hand: the roll-up is hidden (a made-up n below k) and its parts are all
    published; the smallest part (3, "b" before "c") is hidden so that its parts hold k."""
    tree = build_tree(_tree((0, "p", None), (1, "a", 0), (2, "b", 0), (3, "c", 0)))
    unit_rows = _unit_rows(
        (0, True, MEMBERS, 7, 2),  # an aggregate with n < k: suppressed by rule 1
        (1, False, MEMBERS, 7, 4),
        (2, False, MEMBERS, 7, 3),
        (3, False, MEMBERS, 7, 3),
    )
    published = apply_rules(unit_rows, EMPTY_TIES, EMPTY_PARTICIPATION, tree, 3)
    flags = published.unit_rows.select("suppressed", "suppression_reason").rows()
    assert flags == [
        (True, "min_group_size"),
        (False, None),
        (True, "complementary"),
        (False, None),
    ]


def test_a_hidden_aggregate_whose_hidden_parts_hold_k_needs_nothing_more() -> None:
    tree = build_tree(_tree((0, "p", None), (1, "a", 0), (2, "b", 0), (3, "c", 0)))
    unit_rows = _unit_rows(
        (0, True, MEMBERS, 7, 2),
        (1, False, MEMBERS, 7, 2),
        (2, False, MEMBERS, 7, 1),
        (3, False, MEMBERS, 7, 5),
    )
    published = apply_rules(unit_rows, EMPTY_TIES, EMPTY_PARTICIPATION, tree, 3)
    assert published.unit_rows["suppressed"].to_list() == [True, True, True, False]
    assert published.unit_rows["suppression_reason"].to_list() == [
        "min_group_size",
        "min_group_size",
        "min_group_size",
        None,
    ]


def test_a_hidden_incoming_row_hides_ties_until_they_hold_k() -> None:
    tree = build_tree(_tree((0, "a", None), (1, "b", None), (2, "c", None), (3, "d", None)))
    unit_rows = _unit_rows((1, False, INCOMING, 0, 2))  # hidden by rule 1 (n < k = 3)
    ties = pl.DataFrame(
        {"from": [0, 2, 3], "to": [1, 1, 1], "mid": [0, 0, 0], "n": [4, 3, 3]},
        schema={"from": pl.Int32, "to": pl.Int32, "mid": pl.Int32, "n": pl.Int64},
    )
    published = apply_rules(unit_rows, ties, EMPTY_PARTICIPATION, tree, 3)
    assert published.tie_rows["suppression_reason"].to_list() == [None, "complementary", None]


def test_a_hidden_participation_rollup_is_not_rebuilt_from_its_children() -> None:
    """Participation alone (nobody answers): q (2) hides p's roll-up, which hides a."""
    rnd = Round()
    rnd.unit("p")
    rnd.unit("a", "p", headcount=4)
    rnd.unit("b", "p", headcount=4)
    rnd.unit("q", headcount=4)
    rnd.people_in("a", 3)
    rnd.people_in("b", 4)
    rnd.people_in("q", 2)
    participation = score(rnd.inputs(k=3)).participation
    assert status(row(participation, unit="q")) == (True, "min_group_size")
    assert status(row(participation, unit="p")) == (True, "complementary")
    assert status(row(participation, unit="a")) == (True, "complementary")
    assert row(participation, unit="b")["respondents"] == 4
