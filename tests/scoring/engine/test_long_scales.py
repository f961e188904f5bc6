"""Long custom scales: scores with large common denominators (exact sums in Python integers)
and beyond 2**32 (fixed point at 2**-32) still agree with plain arithmetic to 1e-9."""

from __future__ import annotations

import random
import statistics
from fractions import Fraction

import pytest

from coherence_core.instruments import InstrumentDefinition
from coherence_scoring.engine import score
from tests.scoring.engine.builders import Round, row


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
    rng = random.Random(5)
    rnd = Round(instrument=_instrument())
    rnd.unit("a")
    rnd.unit("b")
    climate: list[Fraction] = []
    incoming: list[Fraction] = []
    outgoing: list[Fraction] = []
    for _ in range(7):
        answered = rng.sample(range(24), rng.randint(12, 24))
        self_answers = {f"c{i}": rng.randint(0, 6) for i in answered}
        climate.append(Fraction(sum(self_answers.values()), len(self_answers)))
        about_b = {f"t{i}": rng.randint(1, 5) for i in rng.sample(range(20), rng.randint(10, 20))}
        incoming.append(Fraction(sum(about_b.values()), len(about_b)))
        outgoing.append(incoming[-1])
        rnd.person("a", self_answers, about={"b": about_b})
    result = score(rnd.inputs(k=3))
    members = row(result.unit_scores, unit="a", scale="climate", measure="index")
    assert members["mean"] == pytest.approx(float(statistics.mean(climate)), abs=1e-9)
    assert members["sd"] == pytest.approx(float(statistics.stdev(climate)), abs=1e-9)
    b = row(result.unit_scores, unit="b", scale="ties", measure="index", perspective="incoming")
    assert b["mean"] == pytest.approx(float(statistics.mean(incoming)), abs=1e-12)
    assert b["sd"] == pytest.approx(float(statistics.stdev(incoming)), abs=1e-12)
    out = row(result.unit_scores, unit="a", scale="ties", measure="index", perspective="outgoing")
    assert out["mean"] == pytest.approx(float(statistics.mean(outgoing)), abs=1e-12)
    assert out["sd"] == pytest.approx(float(statistics.stdev(outgoing)), abs=1e-12)
    assert result.summary["scales"]["ties"]["mean"] == pytest.approx(
        float(statistics.mean(incoming)), abs=1e-12
    )
