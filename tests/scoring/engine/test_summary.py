"""The round summary: pooled scale means, Cronbach's α, ICC(1)/ICC(2), network statistics, the
leadership–collaboration correlation and the response rate.

Whether a pooled summary mean is hidden beyond rule 1 is the protection's decision (its own tests;
the comparison with the reference checks that a published one is right); here every asserted mean
comes from a round where nothing is hidden beyond rule 1."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from coherence_core.instruments import InstrumentDefinition
from coherence_scoring.engine import score
from tests.scoring.engine.builders import (
    RC,
    RL,
    Round,
    assert_nothing_hidden_beyond_rule_one,
    first,
    same,
)


def test_network_statistics() -> None:
    rnd = Round()
    for unit in ("A", "B", "C", "D"):
        rnd.unit(unit)
    rnd.people_in("A", 3, about={"A": same(RC, 4), "B": same(RC, 5)})
    rnd.people_in("B", 3, about={"B": same(RC, 3), "A": same(RC, 3)})
    rnd.people_in("C", 3, about={"C": same(RC, 2), "A": same(RC, 4)})
    rnd.person("C", about={"C": first(RC, 5, 1), "A": first(RC, 5, 1)})  # 5 items each
    result = score(rnd.inputs(k=3))
    assert_nothing_hidden_beyond_rule_one(result)
    summary = result.summary
    assert summary["network"] == {
        # internal responses: 27·4 + 27·3 + 27·2 + 5·1 = 248 of 86
        "within_mean": 248 / 86,
        # external: A→B 27·5, B→A 27·3, C→A 27·4 + 5·1 = 329 of 86
        "between_mean": 329 / 86,
        # published external ties: A→B 5 (strong), B→A 3 (weak), C→A 113/32 ≈ 3.53 (moderate)
        "strong_share": 1 / 3,
        "weak_share": 1 / 3,
        "reciprocity_gap": 2.0,  # |5 − 3|
        "holes": 4,  # of 6 pairs only {A, B} and {A, C} are rated
    }
    capacity = summary["scales"]["relational_capacity"]
    assert capacity["mean"] == (248 + 329) / 172  # every tie response
    # complete cases: the 18 ties with 9 answers, 9 identical items each
    assert capacity["alpha"] == pytest.approx(1.0)
    # ICC over internal tie scores by home unit: A 4 4 4, B 3 3 3, C 2 2 2 1;
    # grand mean 2.8, MSB = (3·1.2² + 3·0.2² + 4·1.05²) / 2 = 4.425,
    # MSW = (3·0.25² + 0.75²) / 7 = 3/28, k̄ = (10 − 34/10) / 2 = 3.3
    msb, msw = 4.425, 3 / 28
    assert capacity["icc1"] == pytest.approx((msb - msw) / (msb + 2.3 * msw), abs=1e-12)
    assert capacity["icc2"] == pytest.approx((msb - msw) / msb, abs=1e-12)


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
    result = score(rnd.inputs(k=3))
    assert_nothing_hidden_beyond_rule_one(result)
    summary = result.summary
    # item variances 5/3, 11/12, 4/3; totals 6, 8, 12, 13 → variance 131/12
    assert summary["scales"]["climate"]["alpha"] == pytest.approx(1.5 * (1 - 47 / 131))
    # the incomplete respondent is eligible (2 of 3): the mean pools (39 + 6) / (12 + 2)
    assert summary["scales"]["climate"]["mean"] == 45 / 14
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
    result = score(_correlation_round([3, 4, 4, 5], [2, 3, 5, 4]).inputs(k=3))
    assert_nothing_hidden_beyond_rule_one(result)
    found = result.summary["leadership_collaboration"]
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


def test_response_rate_is_always_published_and_participation_has_rule_one_only() -> None:
    """Counts of respondents reveal presence, not answers (SCORING.md §5.5): A's 2 respondents
    are hidden in participation (rule 1), nothing more, and the summary still gives the round's
    response rate over the units with a headcount."""
    rnd = Round()
    for unit, headcount, people in (("A", 5, 2), ("B", 10, 5), ("C", None, 4)):
        rnd.unit(unit, headcount=headcount)
        rnd.people_in(unit, people, same(RL, 4))
    result = score(rnd.inputs(k=3))
    reasons = dict(
        zip(result.participation["unit"], result.participation["suppression_reason"], strict=True)
    )
    assert reasons == {"A": "min_group_size", "B": None, "C": None}
    hidden = result.participation.filter(unit="A").row(0, named=True)
    assert (hidden["respondents"], hidden["response_rate"], hidden["headcount"]) == (None, None, 5)
    assert result.summary["respondents"] == 11
    assert result.summary["response_rate"] == 7 / 15
