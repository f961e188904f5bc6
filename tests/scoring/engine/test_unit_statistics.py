"""Statistics of unit rows: n, mean, sd, t-interval, rwg / rwg(J), band, low_agreement
(scoring method 2: the mean pools the responses; sd and the interval use each person's own value,
the interval centred on the pooled mean; rwg the item variances over the counted responses)."""

from __future__ import annotations

import math
from fractions import Fraction as F

import pytest
from scipy import stats

from coherence_scoring.engine import score
from tests.scoring.engine.builders import (
    RL,
    Round,
    assert_nothing_hidden_beyond_rule_one,
    assert_published,
    first,
    row,
    same,
)


def test_members_row_statistics_and_agreement() -> None:
    rnd = Round()
    rnd.unit("u")
    for v in (3, 4, 5, 4, 4):
        rnd.person("u", same(RL, v))
    rnd.person("u", first(RL, 5, 2))  # the first 5 items only: every item still has ≥ 5 people
    result = score(rnd.inputs(k=5))
    assert_nothing_hidden_beyond_rule_one(result)
    units = result.unit_scores
    index = row(units, unit="u", scale="relational_leadership", measure="index", rollup=False)
    # pooled: (9·(3 + 4 + 5 + 4 + 4) + 5·2) / (45 + 5) = 190/50 = 3.8; the people's values
    # 3, 4, 5, 4, 4, 2 (mean 11/3, variance 16/15) give the sd, the interval is centred on 3.8
    assert_published(index, F(19, 5), [3, 4, 5, 4, 4, 2])
    assert index["sd"] == pytest.approx(math.sqrt(16 / 15), abs=1e-12)
    half = stats.t.ppf(0.975, 5) * math.sqrt(16 / 15) / math.sqrt(6)
    assert index["ci_low"] == pytest.approx(3.8 - half, abs=1e-12)
    # item variances: items 1-5 over 3, 4, 5, 4, 4, 2 → 16/15; items 6-9 over 3, 4, 5, 4, 4
    # → 1/2. s̄² = (5·16/15 + 4·1/2) / 9 = 22/27; σ²_EU = 2, q = 11/27
    q = F(11, 27)
    assert index["rwg"] == pytest.approx(float(9 * (1 - q) / (9 * (1 - q) + q)), abs=1e-12)
    assert index["low_agreement"] is False  # 144/155
    assert index["band"] == "moderate"
    framing = row(units, unit="u", scale="relational_leadership", measure="framing", rollup=False)
    # framing (items 1-3): every variance 16/15, q = 8/15: 3·7/15 / (3·7/15 + 8/15) = 21/29
    assert_published(framing, F(11, 3), [3, 4, 5, 4, 4, 2])
    assert framing["rwg"] == pytest.approx(21 / 29, abs=1e-12)
    assert framing["band"] is None
    involving = row(
        units, unit="u", scale="relational_leadership", measure="involving", rollup=False
    )
    # involving (items 7-9): the 2 did not answer them; variances 1/2, q = 1/4 → 0.9
    assert_published(involving, F(4), [3, 4, 5, 4, 4])
    assert involving["rwg"] == pytest.approx(0.9, abs=1e-12)
    item = row(units, unit="u", scale="relational_leadership", measure=RL[0], rollup=False)
    assert item["rwg"] == pytest.approx(1 - (16 / 15) / 2, abs=1e-12)
    assert item["low_agreement"] is True
    assert item["band"] is None


def test_rwg_is_zero_beyond_uniform_variance_and_flags_low_agreement() -> None:
    rnd = Round()
    rnd.unit("u")
    for v in (1, 5, 1, 5):
        rnd.person("u", same(RL, v))
    units = score(rnd.inputs(k=3)).unit_scores
    index = row(units, unit="u", scale="relational_leadership", measure="index", rollup=False)
    # item variance 16/3 ≥ σ²_EU = 2
    assert index["rwg"] == 0.0
    assert index["low_agreement"] is True
    item = row(units, unit="u", scale="relational_leadership", measure=RL[0], rollup=False)
    assert item["rwg"] == 0.0


def test_rwg_j_counts_the_items_with_responses_in_the_row() -> None:
    """Nobody answers the last leadership item: J = 8, not 9."""
    rnd = Round()
    rnd.unit("u")
    for v in (3, 4, 5):
        rnd.person("u", same(RL[:8], v))
    result = score(rnd.inputs(k=3))
    assert_nothing_hidden_beyond_rule_one(result)
    index = row(
        result.unit_scores, unit="u", scale="relational_leadership", measure="index", rollup=False
    )
    # every item variance 1, q = 1/2: 8·(1/2) / (8·(1/2) + 1/2) = 8/9 (with J = 9: 9/10)
    assert index["rwg"] == pytest.approx(8 / 9, abs=1e-12)
    involving = row(
        result.unit_scores, unit="u", scale="relational_leadership", measure="involving"
    )
    assert involving["rwg"] == pytest.approx(2 * 0.5 / (2 * 0.5 + 0.5), abs=1e-12)  # J = 2


@pytest.mark.parametrize(
    ("scores", "band"),
    [
        ((3, 4, 3, 4), "moderate"),  # exactly 3.5
        ((3, 4, 3), "weak"),  # 3.33
        ((4, 4, 4), "moderate"),  # exactly 4.0
        ((4, 4, 5), "strong"),  # 4.33
    ],
)
def test_band_boundaries(scores: tuple[int, ...], band: str) -> None:
    rnd = Round()
    rnd.unit("u")
    for v in scores:
        rnd.person("u", same(RL, v))
    units = score(rnd.inputs(k=3)).unit_scores
    assert (
        row(units, unit="u", scale="relational_leadership", measure="index", rollup=False)["band"]
        == band
    )


def test_band_thresholds_come_from_the_settings() -> None:
    rnd = Round()
    rnd.unit("a")
    rnd.unit("b")
    for v in (3, 4, 3, 4):
        rnd.person("a", same(RL, v))
    for v in (4, 4, 4):
        rnd.person("b", same(RL, v))
    units = score(rnd.inputs(k=3, weak_below=3.6, strong_above=3.9)).unit_scores
    assert row(units, unit="a", scale="relational_leadership", measure="index")["band"] == "weak"
    assert row(units, unit="b", scale="relational_leadership", measure="index")["band"] == "strong"


def test_band_is_decided_on_the_pooled_mean() -> None:
    """A pooled mean of exactly 3.5 is moderate, though the people's own values average 3.4."""
    rnd = Round()
    rnd.unit("u")
    rnd.people_in("u", 2, same(RL, 4))  # 36 each
    rnd.person("u", same(RL, 3))  # 27
    rnd.person("u", {**same(RL[:3], 3), **same(RL[3:5], 2)})  # 13 / 5
    result = score(rnd.inputs(k=3))
    assert_nothing_hidden_beyond_rule_one(result)
    index = row(
        result.unit_scores, unit="u", scale="relational_leadership", measure="index", rollup=False
    )
    # (36 + 36 + 27 + 13) / (9 + 9 + 9 + 5) = 112/32 = 3.5; (4 + 4 + 3 + 2.6) / 4 = 3.4 (weak)
    assert_published(index, F(7, 2), [4, 4, 3, F(13, 5)])
    assert index["band"] == "moderate"


def test_single_respondent_has_no_sd_or_interval() -> None:
    rnd = Round()
    rnd.unit("u")
    rnd.person("u", same(RL, 4))
    units = score(rnd.inputs(k=3)).unit_scores
    # n = 1 < k: suppressed anyway; with k = 3 nothing is shown
    index = row(units, unit="u", scale="relational_leadership", measure="index")
    assert index["suppressed"] and index["n"] is None and index["mean"] is None


def test_zero_sd_collapses_the_interval() -> None:
    rnd = Round()
    rnd.unit("u")
    rnd.people_in("u", 3, same(RL, 4))
    index = row(
        score(rnd.inputs(k=3)).unit_scores, unit="u", scale="relational_leadership", measure="index"
    )
    assert (index["sd"], index["ci_low"], index["ci_high"]) == (0.0, 4.0, 4.0)
    assert index["rwg"] == 1.0
