"""Small hand-made rounds for the engine tests: units, respondents and answers by item key.

Expected numbers are scoring method 2 (SCORING.md §3): a row's ``mean`` pools every counted
response in it, ``n`` counts people, and ``sd`` and the t-interval use each person's own mean in
the row, the interval centred on the pooled mean. Tests that assert a value use rounds where every
base cell holds at least k people, so that the protection has nothing to hide beyond rule 1
(``assert_nothing_hidden_beyond_rule_one``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import polars as pl
import pytest
from scipy import stats

from coherence_core.instruments import InstrumentDefinition, builtin_instrument
from coherence_scoring.engine import (
    ANSWERS_SCHEMA,
    RESPONDENTS_SCHEMA,
    UNITS_SCHEMA,
    ScoringInput,
    ScoringResult,
    ScoringSettings,
)

V1 = builtin_instrument("coherence-v1")


def keys_of(scale: str, instrument: InstrumentDefinition = V1) -> list[str]:
    found = instrument.scale(scale)
    assert found is not None
    return [item.key for item in found.items]


RC = keys_of("relational_capacity")
RL = keys_of("relational_leadership")
PS = keys_of("psychological_safety")


def same(keys: list[str], value: int | None) -> dict[str, int | None]:
    """Every item of a list answered with one value."""
    return dict.fromkeys(keys, value)


def first(keys: list[str], count: int, value: int | None) -> dict[str, int | None]:
    """The first ``count`` items of a list answered with one value."""
    return dict.fromkeys(keys[:count], value)


@dataclass
class Round:
    """A round under construction; ``person`` returns the respondent id it was given."""

    instrument: InstrumentDefinition = V1
    units: list[tuple[str, str | None, int | None]] = field(default_factory=list)
    people: list[tuple[int, str]] = field(default_factory=list)
    answers: list[tuple[int, str | None, str, int | None]] = field(default_factory=list)

    def unit(
        self, external_id: str, parent: str | None = None, headcount: int | None = None
    ) -> str:
        self.units.append((external_id, parent, headcount))
        return external_id

    def person(
        self,
        unit: str,
        answers: Mapping[str, int | None] | None = None,
        about: Mapping[str, Mapping[str, int | None]] | None = None,
        respondent: int | None = None,
    ) -> int:
        rid = respondent if respondent is not None else 1000 + len(self.people)
        self.people.append((rid, unit))
        for key, value in (answers or {}).items():
            self.answers.append((rid, None, key, value))
        for target, items in (about or {}).items():
            for key, value in items.items():
                self.answers.append((rid, target, key, value))
        return rid

    def people_in(
        self,
        unit: str,
        count: int,
        answers: Mapping[str, int | None] | None = None,
        about: Mapping[str, Mapping[str, int | None]] | None = None,
    ) -> list[int]:
        return [self.person(unit, answers, about) for _ in range(count)]

    def inputs(self, k: int = 3, **settings: float) -> ScoringInput:
        index = {ext: i for i, (ext, _, _) in enumerate(self.units)}
        units = pl.DataFrame(
            {
                "unit": list(range(len(self.units))),
                "external_id": [u[0] for u in self.units],
                "parent": [index[u[1]] if u[1] is not None else None for u in self.units],
                "headcount": [u[2] for u in self.units],
            },
            schema=UNITS_SCHEMA,
        )
        respondents = pl.DataFrame(
            {"respondent": [p[0] for p in self.people], "unit": [index[p[1]] for p in self.people]},
            schema=RESPONDENTS_SCHEMA,
        )
        item_index = self.instrument.item_index
        answers = pl.DataFrame(
            {
                "respondent": [a[0] for a in self.answers],
                "target": [index[a[1]] if a[1] is not None else None for a in self.answers],
                "item": [item_index[a[2]] for a in self.answers],
                "value": [a[3] for a in self.answers],
            },
            schema=ANSWERS_SCHEMA,
        )
        return ScoringInput(
            instrument=self.instrument,
            units=units,
            respondents=respondents,
            answers=answers,
            settings=ScoringSettings(min_group_size=k, **settings),
        )


def row(frame: pl.DataFrame, **where: object) -> dict[str, Any]:
    """The one row of ``frame`` matching every column = value given."""
    found = frame.filter(*(pl.col(c) == v for c, v in where.items()))
    assert found.height == 1, f"{found.height} rows match {where}"
    return found.row(0, named=True)


def rows(frame: pl.DataFrame, **where: object) -> pl.DataFrame:
    return frame.filter(*(pl.col(c) == v for c, v in where.items()))


def assert_nothing_hidden_beyond_rule_one(result: ScoringResult) -> None:
    """No row of the result is suppressed as ``complementary``: every value a test expects in
    it is the plain value of the method, untouched by the protection."""
    for frame in (result.unit_scores, result.tie_scores, result.participation):
        hidden = frame.filter(pl.col("suppression_reason") == "complementary")
        assert hidden.height == 0, f"the protection hides more than rule 1: {hidden}"


def assert_published(
    found: Mapping[str, Any], mean: Fraction | float, person_values: Sequence[Fraction | float]
) -> None:
    """A published row with pooled mean ``mean`` over the given people, whose own values in the
    row are ``person_values``: n, mean, sd (ddof 1) and the 95% t-interval centred on ``mean``."""
    n = len(person_values)
    assert not found["suppressed"] and found["suppression_reason"] is None
    assert found["n"] == n
    assert found["mean"] == pytest.approx(float(mean), abs=1e-12)
    sd = statistics.stdev(float(v) for v in person_values)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert found["sd"] == pytest.approx(sd, abs=1e-12)
    assert found["ci_low"] == pytest.approx(float(mean) - half, abs=1e-12)
    assert found["ci_high"] == pytest.approx(float(mean) + half, abs=1e-12)
