"""Long custom scales: people's values with large common denominators (exact sums in Python
integers) and beyond 2**32 (fixed point at 2**-32) still give the pooled means exactly and the
spread to 1e-9 (scoring method 2)."""

from __future__ import annotations

import math
import random
import statistics
from fractions import Fraction
from typing import Any

import pytest
from scipy import stats

from coherence_core.instruments import InstrumentDefinition
from coherence_scoring.engine import score
from tests.scoring.engine.builders import Round, assert_nothing_hidden_beyond_rule_one, row


def _instrument() -> InstrumentDefinition:
    text = {"en": "Statement."}
    return InstrumentDefinition.model_validate(
        {
            "key": "long",
            "name": {"en": "Long scales"},
            "scales": [
                {
                    # lcm(10..20) = 232792560: squares leave int64
                    "key": "ties",
                    "targeting": "unit",
                    "items": [{"key": f"t{i}", "text": text} for i in range(20)],
                },
                {
                    # lcm(12..24) > 2**32: fixed point
                    "key": "climate",
                    "targeting": "self",
                    "response_min": 0,
                    "response_max": 6,
                    "items": [{"key": f"c{i}", "text": text} for i in range(24)],
                },
            ],
        }
    )


def test_long_scales_agree_with_plain_arithmetic() -> None:
    """Seven people in a, each answering a different number of items (the first ``count`` of
    each scale, so that every item cell holds at least 3 people and nothing is hidden)."""
    rng = random.Random(5)
    rnd = Round(instrument=_instrument())
    rnd.unit("a")
    rnd.unit("b")
    climate: list[list[int]] = []
    ties: list[list[int]] = []
    for climate_count, tie_count in zip(
        (24, 24, 24, 23, 19, 17, 13), (20, 20, 20, 19, 17, 11, 10), strict=True
    ):
        climate.append([rng.randint(0, 6) for _ in range(climate_count)])
        ties.append([rng.randint(1, 5) for _ in range(tie_count)])
        rnd.person(
            "a",
            {f"c{i}": v for i, v in enumerate(climate[-1])},
            about={"b": {f"t{i}": v for i, v in enumerate(ties[-1])}},
        )
    result = score(rnd.inputs(k=3))
    assert_nothing_hidden_beyond_rule_one(result)

    def pooled(answers: list[list[int]]) -> Fraction:
        return Fraction(sum(map(sum, answers)), sum(map(len, answers)))

    def values(answers: list[list[int]]) -> list[Fraction]:
        return [Fraction(sum(a), len(a)) for a in answers]

    members = row(result.unit_scores, unit="a", scale="climate", measure="index")
    check(members, pooled(climate), values(climate), 1e-9)  # values rounded to 2**-32
    b = row(result.unit_scores, unit="b", scale="ties", measure="index", perspective="incoming")
    check(b, pooled(ties), values(ties), 1e-12)
    out = row(result.unit_scores, unit="a", scale="ties", measure="index", perspective="outgoing")
    check(out, pooled(ties), values(ties), 1e-12)
    tie = row(result.tie_scores, from_unit="a", to_unit="b", scale="ties", measure="index")
    check(tie, pooled(ties), values(ties), 1e-12)
    assert result.summary["scales"]["ties"]["mean"] == pytest.approx(float(pooled(ties)), abs=1e-12)
    assert result.summary["scales"]["climate"]["mean"] == pytest.approx(
        float(pooled(climate)), abs=1e-12
    )


def check(found: dict[str, Any], mean: Fraction, values: list[Fraction], tolerance: float) -> None:
    """n, the pooled mean, and the sd and interval of the people's values around it."""
    n = len(values)
    assert found["n"] == n
    assert found["mean"] == pytest.approx(float(mean), abs=1e-12)  # exact integer sums
    sd = math.sqrt(statistics.variance(values))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert found["sd"] == pytest.approx(sd, abs=tolerance)
    assert found["ci_low"] == pytest.approx(float(mean) - half, abs=tolerance)
    assert found["ci_high"] == pytest.approx(float(mean) + half, abs=tolerance)
    assert statistics.mean(values) != mean  # pooling differs from the mean of the values
