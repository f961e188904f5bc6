"""The round summary: scale means, Cronbach's α, ICC(1)/ICC(2), network statistics, the
leadership–collaboration correlation and the response rate."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from coherence_core.instruments import InstrumentDefinition
from coherence_scoring.engine import score
from tests.scoring.engine.builders import RC, RL, Round, rows, same


def test_network_statistics() -> None:
    rnd = Round()
    for unit in ("A", "B", "C", "D"):
        rnd.unit(unit)
    rnd.people_in("A", 3, about={"A": same(RC, 4), "B": same(RC, 5)})
    rnd.people_in("B", 3, about={"B": same(RC, 3), "A": same(RC, 3)})
    rnd.people_in("C", 3, about={"C": same(RC, 2), "A": same(RC, 4)})
    summary = score(rnd.inputs(k=3)).summary
    assert summary["network"] == {
        "within_mean": 3.0,  # 4, 3, 2 three times each
        "between_mean": 4.0,  # 5, 3, 4 three times each
        "strong_share": 1 / 3,  # A→B of A→B, B→A, C→A
        "weak_share": 1 / 3,  # B→A
        "reciprocity_gap": 2.0,  # |5 − 3|
        "holes": 4,  # of 6 pairs only {A, B} and {A, C} are rated
    }
    capacity = summary["scales"]["relational_capacity"]
    assert capacity["mean"] == 63 / 18
    assert capacity["alpha"] == pytest.approx(1.0)  # 9 identical items
    assert (capacity["icc1"], capacity["icc2"]) == (1.0, 1.0)  # no variance within units


def test_icc_from_a_one_way_anova_by_home_unit() -> None:
    rnd = Round()
    for unit in ("a", "b", "c"):
        rnd.unit(unit)
    for v in (1, 2, 3):
        rnd.person("a", same(RL, v))
    for v in (3, 4, 5):
        rnd.person("b", same(RL, v))
    rnd.person("c", same(RL, 5))  # a unit with one respondent is left out
    leadership = score(rnd.inputs(k=3)).summary["scales"]["relational_leadership"]
    # grand mean 3; MSB = (3·1 + 3·1) / 1 = 6; MSW = (2 + 2) / 4 = 1; k̄ = (6 − 18/6) / 1 = 3
    assert leadership["icc1"] == pytest.approx((6 - 1) / (6 + 2 * 1))
    assert leadership["icc2"] == pytest.approx((6 - 1) / 6)
    assert leadership["mean"] == pytest.approx((6 + 12 + 5) / 7)


def _three_items() -> InstrumentDefinition:
    text = {"en": "Statement."}
    return InstrumentDefinition.model_validate(
        {
            "key": "three",
            "name": {"en": "Three items"},
            "scales": [
                {
                    "key": "climate",
                    "targeting": "self",
                    "items": [{"key": k, "text": text} for k in ("i1", "i2", "i3")],
                }
            ],
        }
    )


def test_cronbach_alpha_over_complete_cases() -> None:
    rnd = Round(instrument=_three_items())
    rnd.unit("u")
    for answers in ((1, 2, 3), (2, 3, 3), (3, 4, 5), (4, 4, 5)):
        rnd.person("u", dict(zip(("i1", "i2", "i3"), answers, strict=True)))
    rnd.person("u", {"i1": 5, "i2": 1, "i3": None})  # incomplete: not a case
    summary = score(rnd.inputs(k=3)).summary
    # item variances 5/3, 11/12, 4/3; totals 6, 8, 12, 13 → variance 131/12
    assert summary["scales"]["climate"]["alpha"] == pytest.approx(1.5 * (1 - 47 / 131))
    assert summary["network"] is None
    assert summary["leadership_collaboration"] is None


def _correlation_round(leadership: list[int], incoming: list[int]) -> Round:
    rnd = Round()
    rnd.unit("raters")
    names = [f"u{i}" for i in range(len(leadership))]
    for name, rl in zip(names, leadership, strict=True):
        rnd.unit(name)
        rnd.people_in(name, 3, same(RL, rl))
    rnd.people_in("raters", 3, about={n: same(RC, v) for n, v in zip(names, incoming, strict=True)})
    return rnd


def test_leadership_collaboration_correlation() -> None:
    result = score(_correlation_round([3, 4, 4, 5], [2, 3, 5, 4]).inputs(k=3)).summary
    found = result["leadership_collaboration"]
    # deviations (−1, 0, 0, 1) and (−1.5, −0.5, 1.5, 0.5): r = 2 / √(2 · 5)
    r = 2 / math.sqrt(10)
    p = 2 * stats.t.sf(r * math.sqrt(2 / (1 - r * r)), 2)
    assert found["n_units"] == 4
    assert found["pearson_r"] == pytest.approx(r)
    assert found["pearson_p"] == pytest.approx(p)
    # ranks (1, 2.5, 2.5, 4) and (1, 2, 4, 3): ρ = 3 / √(4.5 · 5), the same value here
    assert found["spearman_rho"] == pytest.approx(3 / math.sqrt(22.5))
    assert found["spearman_p"] == pytest.approx(p)


def test_correlation_needs_four_units() -> None:
    result = score(_correlation_round([3, 4, 5], [2, 3, 5]).inputs(k=3)).summary
    assert result["leadership_collaboration"] is None


def test_correlation_is_null_without_variance() -> None:
    found = score(_correlation_round([4, 4, 4, 4], [2, 3, 5, 4]).inputs(k=3)).summary[
        "leadership_collaboration"
    ]
    assert found == {
        "pearson_r": None,
        "pearson_p": None,
        "spearman_rho": None,
        "spearman_p": None,
        "n_units": 4,
    }


def test_response_rate_over_units_with_a_headcount() -> None:
    rnd = Round()
    rnd.unit("a", headcount=10)
    rnd.unit("b")
    rnd.unit("c", headcount=6)
    rnd.people_in("a", 3, same(RL, 4))
    rnd.people_in("b", 4, same(RL, 4))
    rnd.people_in("c", 3, same(RL, 4))
    result = score(rnd.inputs(k=3))
    assert result.summary["respondents"] == 10
    assert result.summary["response_rate"] == 6 / 16
    rates = dict(
        zip(result.participation["unit"], result.participation["response_rate"], strict=True)
    )
    assert rates == {"a": 0.3, "b": None, "c": 0.5}


def test_rollup_participation_sums_the_subtree() -> None:
    rnd = Round()
    rnd.unit("p", headcount=2)
    rnd.unit("a", "p", headcount=8)
    rnd.unit("b", "p")
    rnd.people_in("a", 4, same(RL, 4))
    rnd.people_in("b", 3, same(RL, 4))
    result = score(rnd.inputs(k=3))
    rollup = result.participation.filter(unit="p", rollup=True).row(0, named=True)
    assert (rollup["respondents"], rollup["headcount"], rollup["response_rate"]) == (7, None, None)
    assert result.summary["response_rate"] == 4 / 10


def test_summary_values_from_fewer_than_k_raters_are_null() -> None:
    """Rule 1 on the summary: two raters give three ties each — six ties, two people."""

    def capacity_round(values: tuple[int, ...]) -> Round:
        rnd = Round()
        for unit in ("A", "B", "C"):
            rnd.unit(unit)
        for value in values:
            rnd.person("A", about={u: same(RC, value) for u in ("A", "B", "C")})
        rnd.people_in("B", 3, same(RL, 4))
        return rnd

    result = score(capacity_round((2, 4)).inputs(k=3)).summary
    capacity = result["scales"]["relational_capacity"]
    assert capacity == {"mean": None, "alpha": None, "icc1": None, "icc2": None}
    assert result["network"]["within_mean"] is None
    assert result["network"]["between_mean"] is None
    assert result["scales"]["relational_leadership"]["mean"] == 4.0
    # a third rater: the same values are published
    enough = score(capacity_round((2, 4, 3)).inputs(k=3)).summary
    assert enough["scales"]["relational_capacity"]["mean"] == 3.0
    assert enough["scales"]["relational_capacity"]["alpha"] == pytest.approx(1.0)
    assert enough["network"]["within_mean"] == 3.0
    assert enough["network"]["between_mean"] == 3.0


def test_within_and_between_means_count_their_own_raters() -> None:
    rnd = Round()
    for unit in ("A", "B"):
        rnd.unit(unit)
    rnd.people_in("A", 2, about={"A": same(RC, 4), "B": same(RC, 2)})
    rnd.people_in("B", 1, about={"A": same(RC, 3)})
    network = score(rnd.inputs(k=3)).summary["network"]
    assert network["within_mean"] is None  # 2 raters with an internal tie
    assert network["between_mean"] == pytest.approx(7 / 3)  # 3 raters with an external tie


def test_alpha_needs_k_respondents_in_its_complete_cases() -> None:
    rnd = Round(instrument=_three_items())
    rnd.unit("u")
    for answers in ((1, 2, 3), (2, 3, 3), (3, 4, 5)):
        rnd.person("u", dict(zip(("i1", "i2", "i3"), answers, strict=True)))
    rnd.person("u", {"i1": 5, "i2": 1})  # incomplete: not a case
    climate = score(rnd.inputs(k=3)).summary["scales"]["climate"]
    assert climate["alpha"] is not None  # three complete cases
    climate = score(rnd.inputs(k=4)).summary["scales"]["climate"]
    assert climate["alpha"] is None  # four respondents, but three complete cases
    assert climate["mean"] is not None  # four respondents have the score


def test_icc_needs_k_respondents_in_the_units_used() -> None:
    rnd = Round()
    for unit in ("a", "b", "c"):
        rnd.unit(unit)
    for v in (1, 2):
        rnd.person("a", same(RL, v))
    for v in (4, 5):
        rnd.person("b", same(RL, v))
    rnd.person("c", same(RL, 3))  # a unit with one respondent is not used
    assert score(rnd.inputs(k=4)).summary["scales"]["relational_leadership"]["icc1"] is not None
    leadership = score(rnd.inputs(k=5)).summary["scales"]["relational_leadership"]
    assert (leadership["icc1"], leadership["icc2"]) == (None, None)
    assert leadership["mean"] == 3.0  # five respondents have the score


# ---- Summary values as aggregates (rule 2): null when their hidden parts hold 1..k−1 ----------


def _self_raters(sizes: dict[str, int]) -> Round:
    """One unit per entry; its people rate only their own unit, unit i with the value i + 1."""
    rnd = Round()
    for value, (unit, size) in enumerate(sizes.items(), start=1):
        rnd.unit(unit)
        rnd.people_in(unit, size, about={unit: same(RC, value)})
    return rnd


def test_within_mean_is_null_when_hidden_internal_rows_hold_fewer_than_k() -> None:
    """A (5), B (5) published, C (2) hidden: within_mean × 12 − 5·A − 5·B would give C's
    total. The mean of all tie scores pools the same rows and is null too."""
    result = score(_self_raters({"A": 5, "B": 5, "C": 2}).inputs(k=3))
    internal = rows(result.unit_scores, measure="index", perspective="internal")
    assert dict(zip(internal["unit"], internal["suppressed"], strict=True)) == {
        "A": False,
        "B": False,
        "C": True,  # and nothing more is suppressed for the summary
    }
    assert result.summary["network"]["within_mean"] is None
    assert result.summary["scales"]["relational_capacity"]["mean"] is None


def test_within_mean_is_published_when_hidden_internal_rows_hold_0_or_k() -> None:
    published = score(_self_raters({"A": 5, "B": 5, "C": 3}).inputs(k=3)).summary
    assert published["network"]["within_mean"] == (5 + 10 + 9) / 13
    assert published["scales"]["relational_capacity"]["mean"] == (5 + 10 + 9) / 13
    # C (2) and D (2) hidden: 4 people, no one of them can be told apart by differencing
    enough = score(_self_raters({"A": 5, "B": 5, "C": 2, "D": 2}).inputs(k=3)).summary
    assert enough["network"]["within_mean"] == (5 + 10 + 6 + 8) / 14
    assert enough["scales"]["relational_capacity"]["mean"] == (5 + 10 + 6 + 8) / 14


def _outside_raters(small: dict[str, list[str]]) -> Round:
    """X (5 people) rates A (4) and B (3); each unit in ``small`` has 2 people who rate the
    listed units (value 1). Nobody rates their own unit."""
    rnd = Round()
    for unit in dict.fromkeys(["A", "B", "X", *small, *(t for ts in small.values() for t in ts)]):
        rnd.unit(unit)
    rnd.people_in("X", 5, about={"A": same(RC, 4), "B": same(RC, 3)})
    for unit, targets in small.items():
        rnd.people_in(unit, 2, about={t: same(RC, 1) for t in targets})
    return rnd


def test_between_mean_counts_distinct_raters_across_hidden_incoming_rows() -> None:
    """Y's 2 people rate C and D: the hidden incoming rows hold 2 + 2 ties but only 2 raters,
    and between_mean × 14 − 5·A − 5·B would give their total."""
    result = score(_outside_raters({"Y": ["C", "D"]}).inputs(k=3))
    incoming = rows(result.unit_scores, measure="index", perspective="incoming")
    assert dict(zip(incoming["unit"], incoming["suppressed"], strict=True)) == {
        "A": False,
        "B": False,
        "C": True,
        "D": True,
    }
    assert result.summary["network"]["within_mean"] is None  # no internal ties
    assert result.summary["network"]["between_mean"] is None
    assert result.summary["scales"]["relational_capacity"]["mean"] is None


def test_between_mean_is_published_when_hidden_incoming_rows_hold_k_raters() -> None:
    # Y's 2 people rate C, Z's 2 people rate D: 4 distinct raters in the hidden rows
    summary = score(_outside_raters({"Y": ["C"], "Z": ["D"]}).inputs(k=3)).summary
    assert summary["network"]["between_mean"] == (20 + 15 + 2 + 2) / 14
    assert summary["scales"]["relational_capacity"]["mean"] == (20 + 15 + 2 + 2) / 14
    # nothing hidden: published
    summary = score(_outside_raters({}).inputs(k=3)).summary
    assert summary["network"]["between_mean"] == 3.5


def test_capacity_mean_is_null_when_within_or_between_alone_is_null() -> None:
    """A's 2 people rate A and B, B's 1 person rates A: within_mean is null (2 raters) and
    between_mean published (3 raters); the mean of all five ties times 5 minus between_mean
    times 3 would give the two internal ties, so the mean is null too."""
    rnd = Round()
    for unit in ("A", "B"):
        rnd.unit(unit)
    rnd.people_in("A", 2, about={"A": same(RC, 4), "B": same(RC, 2)})
    rnd.people_in("B", 1, about={"A": same(RC, 3)})
    summary = score(rnd.inputs(k=3)).summary
    assert summary["network"]["within_mean"] is None
    assert summary["network"]["between_mean"] == pytest.approx(7 / 3)
    assert summary["scales"]["relational_capacity"]["mean"] is None


def test_capacity_mean_is_published_when_both_parts_are_null_but_hold_k() -> None:
    """C's 2 people rate C (hidden internal), D's 2 people rate E (hidden incoming): within_mean
    and between_mean are each null, the mean pools 4 hidden raters and is published."""
    rnd = Round()
    for unit in ("A", "B", "C", "D", "E"):
        rnd.unit(unit)
    rnd.people_in("A", 5, about={"A": same(RC, 4), "B": same(RC, 3)})
    rnd.people_in("C", 2, about={"C": same(RC, 2)})
    rnd.people_in("D", 2, about={"E": same(RC, 1)})
    summary = score(rnd.inputs(k=3)).summary
    assert summary["network"]["within_mean"] is None
    assert summary["network"]["between_mean"] is None
    assert summary["scales"]["relational_capacity"]["mean"] == (20 + 15 + 4 + 2) / 14


def _participation_round(units: list[tuple[str, int | None, int]]) -> Round:
    """Root units (external id, headcount, respondents)."""
    rnd = Round()
    for unit, headcount, people in units:
        rnd.unit(unit, headcount=headcount)
        rnd.people_in(unit, people, same(RL, 4))
    return rnd


def test_response_rate_is_null_when_hidden_units_with_a_headcount_hold_fewer_than_k() -> None:
    """A (headcount 5, 2 people) hidden, B (headcount 10, 5 people) published: the rate × 15 − 5
    would give A's respondents. (C, without a headcount, is hidden too, by rule 2.)"""
    result = score(_participation_round([("A", 5, 2), ("B", 10, 5), ("C", None, 4)]).inputs(k=3))
    reasons = dict(
        zip(result.participation["unit"], result.participation["suppression_reason"], strict=True)
    )
    assert reasons == {"A": "min_group_size", "B": None, "C": "complementary"}
    assert result.summary["response_rate"] is None


def test_response_rate_is_published_when_hidden_units_with_a_headcount_hold_0_or_k() -> None:
    none_hidden = [("A", 5, 3), ("B", 10, 5), ("C", None, 4)]
    assert score(_participation_round(none_hidden).inputs(k=3)).summary["response_rate"] == 8 / 15
    # A (2) and D (2), both with a headcount, hidden: 4 people
    four_hidden = [("A", 5, 2), ("B", 10, 5), ("C", None, 4), ("D", 4, 2)]
    result = score(_participation_round(four_hidden).inputs(k=3))
    hidden = result.participation.filter("suppressed")["unit"].to_list()
    assert hidden == ["A", "D"]
    assert result.summary["response_rate"] == 9 / 19


def test_response_rate_is_null_when_it_gives_away_units_without_a_headcount() -> None:
    """A (headcount 10, 5) is hidden by rule 2 only because B (no headcount, 2) is: the rate
    gives A = 5, and the published respondent count minus A and C gives B."""
    result = score(_participation_round([("A", 10, 5), ("B", None, 2), ("C", None, 5)]).inputs())
    hidden = result.participation.filter("suppressed")["unit"].to_list()
    assert hidden == ["A", "B"]
    assert result.summary["respondents"] == 12
    assert result.summary["response_rate"] is None
