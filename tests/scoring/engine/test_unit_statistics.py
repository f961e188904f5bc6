"""Statistics of unit rows: n, mean, sd, t-interval, rwg / rwg(J), band, low_agreement."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from coherence_scoring.engine import score
from tests.scoring.engine.builders import RL, Round, row, same


def test_members_row_statistics_and_agreement() -> None:
    rnd = Round()
    rnd.unit("u")
    for v in (3, 4, 5, 4, 4):
        rnd.person("u", same(RL, v))
    units = score(rnd.inputs(k=5)).unit_scores
    index = row(units, unit="u", scale="relational_leadership", measure="index", rollup=False)
    half = stats.t.ppf(0.975, 4) * math.sqrt(0.5) / math.sqrt(5)
    assert index["n"] == 5
    assert index["mean"] == 4.0
    assert index["sd"] == pytest.approx(math.sqrt(0.5), abs=1e-12)  # (1 + 0 + 1 + 0 + 0) / 4
    assert index["ci_low"] == pytest.approx(4.0 - half, abs=1e-12)
    assert index["ci_high"] == pytest.approx(4.0 + half, abs=1e-12)
    # every item has variance 0.5; σ²_EU = (25 − 1) / 12 = 2; q = 0.25
    assert index["rwg"] == pytest.approx(9 * 0.75 / (9 * 0.75 + 0.25), abs=1e-12)
    assert index["low_agreement"] is False
    assert index["band"] == "moderate"
    framing = row(units, unit="u", scale="relational_leadership", measure="framing", rollup=False)
    assert framing["rwg"] == pytest.approx(3 * 0.75 / (3 * 0.75 + 0.25), abs=1e-12)
    assert framing["band"] is None
    item = row(units, unit="u", scale="relational_leadership", measure=RL[0], rollup=False)
    assert item["rwg"] == pytest.approx(0.75, abs=1e-12)
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


def test_rwg_leaves_out_items_with_fewer_than_two_values() -> None:
    rnd = Round()
    rnd.unit("u")
    # RL[0..3] answered by all three, RL[4..6] by one respondent each
    rnd.person("u", {RL[0]: 3, RL[1]: 4, RL[2]: 4, RL[3]: 4, RL[4]: 4})
    rnd.person("u", {RL[0]: 5, RL[1]: 4, RL[2]: 4, RL[3]: 4, RL[5]: 4})
    rnd.person("u", {RL[0]: 4, RL[1]: 4, RL[2]: 4, RL[3]: 4, RL[6]: 4})
    units = score(rnd.inputs(k=3)).unit_scores
    index = row(units, unit="u", scale="relational_leadership", measure="index", rollup=False)
    # variances: RL[0] = 1, RL[1..3] = 0; RL[4..6] have one value each → J = 4, s̄² = 0.25
    q = 0.25 / 2.0
    assert index["rwg"] == pytest.approx(4 * (1 - q) / (4 * (1 - q) + q), abs=1e-12)
    single = row(units, unit="u", scale="relational_leadership", measure=RL[4], rollup=False)
    assert single["rwg"] is None and single["low_agreement"] is None


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


def test_band_uses_exact_means() -> None:
    """13/3 + 11/3 + 4 is 12 exactly; a float sum may land an ulp off and change the band."""
    rnd = Round()
    rnd.unit("u")
    rnd.person("u", {**same(RL[:2], 5), **same(RL[2:6], 4)})  # 26 / 6 = 13/3
    rnd.person("u", {**same(RL[:2], 3), **same(RL[2:6], 4)})  # 22 / 6 = 11/3
    rnd.person("u", same(RL, 4))
    index = row(
        score(rnd.inputs(k=3)).unit_scores, unit="u", scale="relational_leadership", measure="index"
    )
    assert index["mean"] == 4.0
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
