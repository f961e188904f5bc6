"""The scoring engine agrees with the independent reference implementation, row by row.

Both follow SCORING.md and docs/scoring-decisions.md; the reference (``tests/reference``) is a
plain, slow re-implementation written from the documents, in exact rational arithmetic. On
synthetic organisations of several shapes — k = 3, 4 and 5, tiny units, custom instruments with
recode maps, a 0..6 scale and scales without subscales — every published row and every summary
value must agree to 1e-9: the same set of rows, the same n, the same suppression flags and
reasons. Two handcrafted rounds add what random organisations rarely produce: means exactly on
the band edges (3.5, 4.0) that float sums miss by an ulp, the organisation family of rule 2 on an
item measure, a coherence row hidden only by complementary suppression, and respondents who send
nothing or only "don't know".
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import polars as pl
import pytest

from coherence_core.instruments import InstrumentDefinition, builtin_instrument
from coherence_core.synthetic import generate_organisation, to_scoring_input
from coherence_scoring.engine import score
from coherence_scoring.engine.types import (
    TIE_SCORES_SCHEMA,
    UNIT_PARTICIPATION_SCHEMA,
    UNIT_SCORES_SCHEMA,
    ScoringInput,
    ScoringResult,
    ScoringSettings,
)
from tests.reference import reference_score

TOLERANCE = 1e-9

UNIT_KEYS = ["unit", "scale", "measure", "perspective", "rollup"]
TIE_KEYS = ["from_unit", "to_unit", "scale", "measure"]
PARTICIPATION_KEYS = ["unit", "rollup"]


# --------------------------------------------------------------------------------------------
# Instruments
# --------------------------------------------------------------------------------------------


def _text(key: str) -> dict[str, str]:
    return {"en": f"Statement {key}."}


def custom_instrument() -> InstrumentDefinition:
    """Coherence scales with other shapes: relational capacity without subscales and with a
    recoded item ("just the right amount" is best), recoding before reversal, one-item
    subscales, and a further 0..6 scale without subscales."""
    return InstrumentDefinition.model_validate(
        {
            "key": "custom-shapes",
            "name": {"en": "Custom shapes"},
            "scales": [
                {
                    "key": "relational_capacity",
                    "targeting": "unit",
                    "items": [
                        {
                            "key": "rc_amount",
                            "recode": {1: 1, 2: 3, 3: 5, 4: 3, 5: 1},
                            "text": _text("rc_amount"),
                        },
                        {"key": "rc_timely", "text": _text("rc_timely")},
                        {"key": "rc_accurate", "text": _text("rc_accurate")},
                        {"key": "rc_blame", "reversed": True, "text": _text("rc_blame")},
                        {"key": "rc_goals", "text": _text("rc_goals")},
                        {"key": "rc_respect", "text": _text("rc_respect")},
                    ],
                },
                {
                    "key": "relational_leadership",
                    "targeting": "self",
                    "subscales": [{"key": "framing"}, {"key": "engaging"}, {"key": "involving"}],
                    "items": [
                        {"key": "rl_direction", "subscale": "framing", "text": _text("a")},
                        {"key": "rl_priorities", "subscale": "framing", "text": _text("b")},
                        {"key": "rl_expect", "subscale": "framing", "text": _text("c")},
                        {"key": "rl_conflicts", "subscale": "engaging", "text": _text("d")},
                        {"key": "rl_recognise", "subscale": "engaging", "text": _text("e")},
                        {"key": "rl_input", "subscale": "involving", "text": _text("f")},
                    ],
                },
                {
                    "key": "psychological_safety",
                    "targeting": "self",
                    "items": [
                        {"key": "ps_held_against", "reversed": True, "text": _text("g")},
                        {"key": "ps_problems", "text": _text("h")},
                        {
                            "key": "ps_reject",
                            "reversed": True,
                            "recode": {1: 1, 2: 2, 3: 4, 4: 5, 5: 5},
                            "text": _text("i"),
                        },
                        {"key": "ps_risk", "text": _text("j")},
                        {"key": "ps_help", "reversed": True, "text": _text("k")},
                    ],
                },
                {
                    "key": "wellbeing",
                    "targeting": "self",
                    "response_min": 0,
                    "response_max": 6,
                    "items": [
                        {"key": "wb_energy", "text": _text("l")},
                        {"key": "wb_stress", "reversed": True, "text": _text("m")},
                        {"key": "wb_balance", "text": _text("n")},
                    ],
                },
            ],
        }
    )


def instrument_without_coherence() -> InstrumentDefinition:
    """Relational capacity and psychological safety only: no coherence index, no leadership."""
    base = builtin_instrument("coherence-v1").model_dump()
    base["key"] = "no-leadership"
    base["scales"] = [s for s in base["scales"] if s["key"] != "relational_leadership"]
    return InstrumentDefinition.model_validate(base)


def instrument_with_renamed_network() -> InstrumentDefinition:
    """coherence-v1 with relational capacity renamed: the network statistics use the first
    scale asked per target unit (no coherence index, no leadership–collaboration)."""
    base = builtin_instrument("coherence-v1").model_dump()
    base["key"] = "renamed-network"
    for scale in base["scales"]:
        if scale["key"] == "relational_capacity":
            scale["key"] = "collaboration"
    return InstrumentDefinition.model_validate(base)


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    respondents: int
    units: int
    seed: int
    settings: ScoringSettings
    instrument: str = "coherence-v1"
    tiny_unit_share: float = 0.1
    missing_rate: float = 0.05
    targets: int = 12

    def scoring_input(self) -> ScoringInput:
        instrument = {
            "coherence-v1": builtin_instrument("coherence-v1"),
            "custom": custom_instrument(),
            "no-coherence": instrument_without_coherence(),
            "renamed-network": instrument_with_renamed_network(),
        }[self.instrument]
        org = generate_organisation(
            self.respondents,
            self.units,
            seed=self.seed,
            instrument=instrument,
            tiny_unit_share=self.tiny_unit_share,
            missing_rate=self.missing_rate,
            targets_per_respondent=self.targets,
        )
        return to_scoring_input(org, self.settings)


K5 = ScoringSettings(min_group_size=5)
K3 = ScoringSettings(min_group_size=3)

CASES = [
    Case("v1-k5", 500, 30, seed=1, settings=K5),
    Case("v1-k3", 500, 30, seed=2, settings=K3),
    Case("custom-k5", 500, 30, seed=3, settings=K5, instrument="custom"),
    Case("custom-k3-sparse", 400, 30, seed=4, settings=K3, instrument="custom", missing_rate=0.2),
    Case("tiny-units-k5", 150, 40, seed=5, settings=K5, tiny_unit_share=0.4, targets=6),
    Case(
        "bands-k4",
        400,
        25,
        seed=6,
        settings=ScoringSettings(min_group_size=4, weak_below=3.3, strong_above=3.8),
        tiny_unit_share=0.3,
    ),
    Case("no-coherence-k5", 300, 20, seed=7, settings=K5, instrument="no-coherence"),
    Case("renamed-network-k3", 300, 20, seed=10, settings=K3, instrument="renamed-network"),
    Case("one-unit", 12, 1, seed=8, settings=K5),
    Case("few-respondents", 4, 3, seed=9, settings=K3),
]
SLOW_CASES = [
    Case("v1-large-k5", 2000, 90, seed=21, settings=K5),
    Case("custom-large-k3", 1500, 70, seed=22, settings=K3, instrument="custom"),
]


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


def same_value(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    return bool(a == b)


def frame_differences(
    name: str, engine: pl.DataFrame, reference: pl.DataFrame, keys: list[str], schema: Any
) -> list[str]:
    problems: list[str] = []
    if dict(engine.schema) != dict(schema):
        problems.append(f"{name}: engine schema {dict(engine.schema)} != {dict(schema)}")
        return problems
    e_rows = {tuple(r[k] for k in keys): r for r in engine.iter_rows(named=True)}
    r_rows = {tuple(r[k] for k in keys): r for r in reference.iter_rows(named=True)}
    if len(e_rows) != engine.height:
        problems.append(f"{name}: the engine has duplicate keys")
    for key in sorted(set(r_rows) - set(e_rows), key=str)[:20]:
        problems.append(f"{name}: missing in engine {key}: reference {r_rows[key]}")
    for key in sorted(set(e_rows) - set(r_rows), key=str)[:20]:
        problems.append(f"{name}: extra in engine {key}: engine {e_rows[key]}")
    n_missing, n_extra = len(set(r_rows) - set(e_rows)), len(set(e_rows) - set(r_rows))
    if n_missing or n_extra:
        problems.append(f"{name}: {n_missing} rows missing, {n_extra} extra in the engine")
    shown = 0
    n_different = 0
    for key in sorted(set(e_rows) & set(r_rows), key=str):
        e, r = e_rows[key], r_rows[key]
        diff = {c: (e[c], r[c]) for c in schema if not same_value(e[c], r[c])}
        if diff:
            n_different += 1
            if shown < 30:
                problems.append(f"{name} {key}: (engine, reference) {diff}")
                shown += 1
    if n_different:
        problems.append(f"{name}: {n_different} rows differ")
    if not engine.sort(keys).select(keys).equals(engine.select(keys)):
        problems.append(f"{name}: the engine's frame is not sorted by {keys}")
    return problems


def summary_differences(engine: Any, reference: Any, path: str = "summary") -> list[str]:
    if isinstance(reference, dict) and isinstance(engine, dict):
        problems = []
        if set(engine) != set(reference):
            problems.append(f"{path}: keys {sorted(engine)} != {sorted(reference)}")
        for key in sorted(set(engine) & set(reference)):
            problems += summary_differences(engine[key], reference[key], f"{path}.{key}")
        return problems
    if isinstance(reference, dict) or isinstance(engine, dict):
        return [f"{path}: engine {engine!r}, reference {reference!r}"]
    return (
        [] if same_value(engine, reference) else [f"{path}: engine {engine!r}, ref {reference!r}"]
    )


def result_differences(engine: ScoringResult, reference: ScoringResult) -> list[str]:
    return [
        *frame_differences(
            "unit_scores",
            engine.unit_scores,
            reference.unit_scores,
            UNIT_KEYS,
            UNIT_SCORES_SCHEMA,
        ),
        *frame_differences(
            "tie_scores", engine.tie_scores, reference.tie_scores, TIE_KEYS, TIE_SCORES_SCHEMA
        ),
        *frame_differences(
            "participation",
            engine.participation,
            reference.participation,
            PARTICIPATION_KEYS,
            UNIT_PARTICIPATION_SCHEMA,
        ),
        *summary_differences(engine.summary, reference.summary),
    ]


def check(case: Case) -> None:
    inp = case.scoring_input()
    engine = score(inp)
    reference = reference_score(inp)
    problems = result_differences(engine, reference)
    assert not problems, f"{case.name}: engine and reference disagree:\n" + "\n".join(problems)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_engine_matches_reference(case: Case) -> None:
    check(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_CASES, ids=lambda c: c.name)
def test_engine_matches_reference_on_larger_organisations(case: Case) -> None:
    check(case)


def test_cases_exercise_the_rules() -> None:
    """The cases are only useful if suppression of both kinds actually happens in them."""
    reasons: set[str] = set()
    for case in (CASES[0], CASES[2]):
        result = reference_score(case.scoring_input())
        for frame in (result.unit_scores, result.tie_scores, result.participation):
            reasons |= set(frame["suppression_reason"].drop_nulls().to_list())
        assert result.summary["leadership_collaboration"] is not None
        assert result.unit_scores.filter(pl.col("rollup")).height > 0
    assert reasons == {"min_group_size", "complementary"}


def shuffled(inp: ScoringInput, seed: int) -> ScoringInput:
    """The same round with every frame in another row order."""
    return ScoringInput(
        instrument=inp.instrument,
        units=inp.units.sample(fraction=1.0, shuffle=True, seed=seed),
        respondents=inp.respondents.sample(fraction=1.0, shuffle=True, seed=seed + 1),
        answers=inp.answers.sample(fraction=1.0, shuffle=True, seed=seed + 2),
        settings=inp.settings,
    )


def test_row_order_does_not_change_the_engine_result() -> None:
    """SCORING.md §6: bit-identical results whatever the row order."""
    inp = CASES[2].scoring_input()
    first = score(inp)
    again = score(shuffled(inp, 99))
    assert first.unit_scores.equals(again.unit_scores)
    assert first.tie_scores.equals(again.tie_scores)
    assert first.participation.equals(again.participation)
    assert first.summary == again.summary


def test_reference_ignores_row_order() -> None:
    inp = CASES[4].scoring_input()
    assert not result_differences(reference_score(shuffled(inp, 5)), reference_score(inp))


# --------------------------------------------------------------------------------------------
# Band edges: means that are exactly 3.5 or 4.0 but that float sums can miss by an ulp
# --------------------------------------------------------------------------------------------


def _score_as_answers(score: Fraction) -> list[int] | None:
    """Answers to 5..9 items (1..5 each) whose mean is exactly ``score``."""
    for count in range(5, 10):
        total = score * count
        if total.denominator == 1 and count <= total <= 5 * count:
            base, extra = divmod(int(total), count)
            return [base + 1] * extra + [base] * (count - extra)
    return None


#: every mean of 5..9 answers on a 1..5 scale
_SCORES = sorted(
    {Fraction(total, count) for count in range(5, 10) for total in range(count, 5 * count + 1)}
)


def _edge_unit(target: Fraction, n: int, rng: random.Random) -> list[Fraction]:
    """n respondent scores with an exact mean of ``target`` whose float mean is not exact."""
    plausible = [x for x in _SCORES if 3 <= x <= 5]
    valid = set(_SCORES)
    while True:
        scores = [rng.choice(plausible) for _ in range(n - 2)]
        rest = target * n - sum(scores)
        pairs = [x for x in plausible if rest - x in valid]
        if not pairs:
            continue
        first = rng.choice(pairs)
        scores += [first, rest - first]
        naive = sum(sorted(float(x) for x in scores)) / n
        if naive != float(target):
            return scores


def band_edge_input(k: int = 5) -> ScoringInput:
    instrument = builtin_instrument("coherence-v1")
    rl_items = [
        i for i, (scale, _) in enumerate(instrument.items) if scale.key == "relational_leadership"
    ]
    rng = random.Random(4)
    units: list[tuple[int, str, int | None]] = [(0, "u-root", None)]
    respondents: list[tuple[int, int]] = []
    answers: list[tuple[int, int | None, int, int | None]] = []
    for target in (Fraction(7, 2), Fraction(4)):
        for _ in range(8):
            unit = len(units)
            units.append((unit, f"u-{unit:03d}", 0))
            for mean_score in _edge_unit(target, rng.randint(k, k + 4), rng):
                r = len(respondents)
                respondents.append((r, unit))
                values = _score_as_answers(mean_score)
                assert values is not None
                for item, value in zip(rl_items, values, strict=False):
                    answers.append((r, None, item, value))
    return ScoringInput(
        instrument=instrument,
        units=pl.DataFrame(
            units,
            schema={"unit": pl.Int32, "external_id": pl.String, "parent": pl.Int32},
            orient="row",
        ).with_columns(pl.lit(None, dtype=pl.Int32).alias("headcount")),
        respondents=pl.DataFrame(
            respondents, schema={"respondent": pl.Int64, "unit": pl.Int32}, orient="row"
        ),
        answers=pl.DataFrame(
            answers,
            schema={
                "respondent": pl.Int64,
                "target": pl.Int32,
                "item": pl.Int16,
                "value": pl.Int16,
            },
            orient="row",
        ),
        settings=ScoringSettings(min_group_size=k),
    )


def test_band_edges_are_decided_on_exact_means() -> None:
    """A unit mean of exactly 3.5 or 4.0 is ``moderate`` even when a float sum lands an ulp off."""
    inp = band_edge_input()
    reference = reference_score(inp)
    rows = reference.unit_scores.filter(
        pl.col("scale") == "relational_leadership",
        pl.col("measure") == "index",
        ~pl.col("rollup"),
        pl.col("unit") != "u-root",
    )
    assert rows.height == 16 and set(rows["band"]) == {"moderate"}
    problems = result_differences(score(inp), reference)
    assert not problems, "engine and reference disagree:\n" + "\n".join(problems)


# --------------------------------------------------------------------------------------------
# A handcrafted round for rules the synthetic cases rarely reach
# --------------------------------------------------------------------------------------------


def handcrafted_input(k: int = 5) -> ScoringInput:
    """Units (k = 5)::

        h-p (2 members)            h-r (a root without children: 6 members who answer, one who
        ├── h-a (6 members)            sends nothing at all; 2 say "don't know" to one RL item)
        └── h-b (9 members, one of whom answers "don't know" to everything)

    * Organisation family for an item measure: h-r's row for that item holds 4 (< k), so the
      other root's roll-up row for the item is suppressed (complementary).
    * Coherence of h-a: internal holds 3 (only half of h-a rate their own unit), incoming is
      published; leadership and safety are complementary-suppressed (h-p's 2 direct members), so
      the coherence row is suppressed as ``complementary``.
    """
    instrument = builtin_instrument("coherence-v1")
    by_scale: dict[str, list[int]] = {}
    for index, (scale, _) in enumerate(instrument.items):
        by_scale.setdefault(scale.key, []).append(index)
    units = [(0, "h-p", None, 4), (1, "h-a", 0, 8), (2, "h-b", 0, 10), (3, "h-r", None, 7)]
    sizes = {0: 2, 1: 6, 2: 9, 3: 7}
    homes = [u for u, n in sizes.items() for _ in range(n)]
    respondents = list(enumerate(homes))
    rng = random.Random(12)
    answers: list[tuple[int, int | None, int, int | None]] = []
    position = {u: 0 for u in sizes}
    for r, u in respondents:
        i = position[u]
        position[u] += 1
        if u == 3 and i == 6:
            continue  # sends nothing
        silent = u == 2 and i == 8
        for scale in ("relational_leadership", "psychological_safety"):
            for item in by_scale[scale]:
                value = None if silent else rng.randint(2, 5)
                if u == 3 and i < 2 and item == by_scale["relational_leadership"][0]:
                    value = None
                answers.append((r, None, item, value))
        if u == 0:
            targets = [0, 1]
        elif u == 1:
            targets = [1, 2] if i < 3 else [2]
        elif u == 2:
            targets = [2, 1]
        else:
            targets = [3, 2]
        for t in targets:
            for item in by_scale["relational_capacity"]:
                answers.append((r, t, item, None if silent else rng.randint(2, 5)))
    return ScoringInput(
        instrument=instrument,
        units=pl.DataFrame(
            units,
            schema={
                "unit": pl.Int32,
                "external_id": pl.String,
                "parent": pl.Int32,
                "headcount": pl.Int32,
            },
            orient="row",
        ),
        respondents=pl.DataFrame(
            respondents, schema={"respondent": pl.Int64, "unit": pl.Int32}, orient="row"
        ),
        answers=pl.DataFrame(
            answers,
            schema={
                "respondent": pl.Int64,
                "target": pl.Int32,
                "item": pl.Int16,
                "value": pl.Int16,
            },
            orient="row",
        ),
        settings=ScoringSettings(min_group_size=k),
    )


def test_engine_matches_reference_on_handcrafted_edges() -> None:
    inp = handcrafted_input()
    reference = reference_score(inp)

    def row(unit: str, scale: str, measure: str, rollup: bool) -> dict[str, Any]:
        rows = reference.unit_scores.filter(
            pl.col("unit") == unit,
            pl.col("scale") == scale,
            pl.col("measure") == measure,
            pl.col("perspective") == "members",
            pl.col("rollup") == rollup,
        ).to_dicts()
        assert len(rows) == 1
        return rows[0]

    # the case reaches the rules it is meant for
    item = "rl_frame_direction"
    assert row("h-r", "relational_leadership", item, False)["suppression_reason"] == (
        "min_group_size"
    )
    assert row("h-p", "relational_leadership", item, True)["suppression_reason"] == (
        "complementary"
    )
    assert not row("h-p", "relational_leadership", "index", True)["suppressed"]
    assert row("h-a", "coherence", "index", False)["suppression_reason"] == "complementary"
    assert reference.summary["respondents"] == 24
    problems = result_differences(score(inp), reference)
    assert not problems, "engine and reference disagree:\n" + "\n".join(problems)


def test_network_uses_the_first_scale_asked_per_target_unit() -> None:
    """Without a scale named relational_capacity, engine and reference both compute the network
    statistics on the first unit-targeted scale (the comparison case renamed-network-k3)."""
    case = next(c for c in CASES if c.instrument == "renamed-network")
    inp = case.scoring_input()
    network = score(inp).summary["network"]
    assert network is not None and network["between_mean"] is not None
    assert reference_score(inp).summary["network"] == network
