"""The scoring engine agrees with the independent reference implementation (scoring method 2).

Both follow SCORING.md and docs/scoring-decisions.md; the reference (``tests/reference``) is a
plain, slow re-implementation written from the documents, in exact rational arithmetic, that
applies anonymity rule 1 only. The engine publishes less (its protection hides further rows,
``complementary``, and the second moments of rows that pool a hidden base cell), so the two are
compared on what both define:

* the same unit, tie and participation row keys;
* every row the reference suppresses (fewer than k people) is suppressed by the engine for
  ``min_group_size``, and the engine gives that reason to no other row;
* every row the engine publishes has the reference's ``n``, ``mean`` and ``band`` (1e-9), and its
  ``sd``, ``ci_low``, ``ci_high``, ``rwg`` and ``low_agreement`` are the reference's when every
  base cell the row pools is published by the engine, null otherwise ("Second moments");
* a suppressed row shows no number;
* coherence rows are checked against the engine's own published inputs (published exactly when
  all three are, their mean, the smallest ``n``, the reason from the inputs' status);
* the summary's ``respondents``, ``response_rate``, α, ICC and ``holes`` equal the reference's;
  the pooled means (scale, within, between) are null or equal to it; the statistics over
  published rows (strong / weak shares, reciprocity gap, leadership–collaboration) are recomputed
  from the engine's own published rows;
* participation rows equal the reference's (rule 1 only).

The cases: synthetic organisations of several shapes — k = 3, 4 and 5, tiny units, custom
instruments with recode maps, a 0..6 scale and scales without subscales — and two handcrafted
rounds: pooled means exactly on the band edges (3.5, 4.0) whose mean of respondent scores lies
on the other side of the edge, and respondents who send nothing or only "don't know".
Changes since an earlier round are left to the API tests (the change view is the API's).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy import stats

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
from tests.reference import reference_row_members, reference_score
from tests.reference.scoring import Reference

TOLERANCE = 1e-9

UNIT_KEYS = ["unit", "scale", "measure", "perspective", "rollup"]
TIE_KEYS = ["from_unit", "to_unit", "scale", "measure"]
PARTICIPATION_KEYS = ["unit", "rollup"]
#: the values a suppressed row must not show
VALUES = ["n", "mean", "sd", "ci_low", "ci_high", "rwg", "band", "low_agreement"]
#: published only when every base cell of the row is published (scoring-decisions.md)
SECOND_MOMENTS = ["sd", "ci_low", "ci_high", "rwg", "low_agreement"]
RC, RL, PS = "relational_capacity", "relational_leadership", "psychological_safety"
MIN_GROUP_SIZE, COMPLEMENTARY = "min_group_size", "complementary"
REASONS = (MIN_GROUP_SIZE, COMPLEMENTARY)


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


@dataclass
class Comparison:
    """What differs (``problems``) and how often each rule was exercised (``seen``)."""

    problems: list[str] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)

    def expect_equal(self, where: str, engine: Any, reference: Any) -> None:
        if not same_value(engine, reference):
            self.problems.append(f"{where}: engine {engine!r}, expected {reference!r}")

    def report(self, limit: int = 40) -> str:
        shown = self.problems[:limit]
        more = len(self.problems) - len(shown)
        return "\n".join(shown) + (f"\n... and {more} more" if more > 0 else "")


RowKey = tuple[Any, ...]
Rows = dict[RowKey, dict[str, Any]]
BaseCell = tuple[str, str | None, str]


def keyed(frame: pl.DataFrame, keys: list[str]) -> Rows:
    return {tuple(r[k] for k in keys): r for r in frame.iter_rows(named=True)}


def reference_with_members(
    inp: ScoringInput,
) -> tuple[ScoringResult, dict[RowKey, frozenset[BaseCell]]]:
    """``reference_score(inp)`` and ``reference_row_members(inp)`` from one run of the reference
    (each of the two would score the round on its own; checked by
    ``test_reference_members_from_one_run``)."""
    ref = Reference(inp)
    result = ref.run()
    return result, dict(ref.row_cells)


def network_scale(instrument: InstrumentDefinition) -> str | None:
    """relational_capacity when asked per target unit, else the first scale asked so."""
    targeted = [s.key for s in instrument.scales if s.targeting == "unit"]
    return RC if RC in targeted else next(iter(targeted), None)


def band_of(mean: float, settings: ScoringSettings) -> str:
    if mean < settings.weak_below:
        return "weak"
    return "strong" if mean > settings.strong_above else "moderate"


def _frame_shape(
    out: Comparison, name: str, frame: pl.DataFrame, keys: list[str], schema: Any
) -> None:
    """The engine's frame has its declared schema, unique keys, and is sorted by them."""
    if dict(frame.schema) != dict(schema):
        out.problems.append(f"{name}: schema {dict(frame.schema)} != {dict(schema)}")
    if frame.select(keys).is_duplicated().any():
        out.problems.append(f"{name}: duplicate keys")
    if not frame.sort(keys).select(keys).equals(frame.select(keys)):
        out.problems.append(f"{name}: not sorted by {keys}")


def _key_sets(out: Comparison, name: str, engine: Rows, reference: Rows) -> None:
    missing, extra = set(reference) - set(engine), set(engine) - set(reference)
    for key in sorted(missing, key=str)[:10]:
        out.problems.append(f"{name}: missing in the engine: {key}")
    for key in sorted(extra, key=str)[:10]:
        out.problems.append(f"{name}: extra in the engine: {key}")
    if missing or extra:
        out.problems.append(f"{name}: {len(missing)} rows missing, {len(extra)} extra")


def _compare_row(
    out: Comparison,
    where: str,
    engine: dict[str, Any],
    reference: dict[str, Any],
    hidden_cells: list[BaseCell],
) -> None:
    """One unit or tie row (not coherence); ``hidden_cells``: the row's base cells that the
    engine does not publish."""
    reason = engine["suppression_reason"]
    if engine["suppressed"] != (reason is not None) or reason not in (None, *REASONS):
        out.problems.append(f"{where}: suppressed {engine['suppressed']}, reason {reason!r}")
    if engine["suppressed"]:
        shown = {c: engine[c] for c in VALUES if engine.get(c) is not None}
        if shown:
            out.problems.append(f"{where}: suppressed but shows {shown}")
    if reference["suppressed"]:  # rule 1: fewer than k people
        out.seen["rule 1"] += 1
        if reason == MIN_GROUP_SIZE:
            return
        out.problems.append(f"{where}: fewer than k people, engine reason {reason!r}")
        return
    if reason == MIN_GROUP_SIZE:
        out.problems.append(f"{where}: n = {reference['n']} ≥ k, suppressed for min_group_size")
        return
    if reason == COMPLEMENTARY:
        out.seen["complementary"] += 1
        return
    for column in ("n", "mean", "band"):
        out.expect_equal(f"{where} {column}", engine[column], reference[column])
    for column in SECOND_MOMENTS:
        if column in engine:
            expected = None if hidden_cells else reference[column]
            out.expect_equal(
                f"{where} {column} (hidden cells {hidden_cells[:2]})", engine[column], expected
            )
    out.seen["second moments hidden" if hidden_cells else "second moments shown"] += 1


def _status(row: dict[str, Any] | None) -> str:
    if row is None:
        return "missing"
    return "published" if not row["suppressed"] else row["suppression_reason"]


def coherence_reason(status: dict[str, str]) -> str | None:
    """The reason of a suppressed coherence row from its inputs' status (scoring-decisions.md:
    ``min_group_size`` when any input is missing or suppressed for min_group_size, else
    ``complementary``; relational capacity is missing only when both its rows are, and
    suppressed for min_group_size when either is)."""
    too_few = ("missing", MIN_GROUP_SIZE)
    parts = (status["internal"], status["incoming"])
    if "published" in parts:
        capacity = "published"
    elif parts == ("missing", "missing") or MIN_GROUP_SIZE in parts:
        capacity = MIN_GROUP_SIZE
    else:
        capacity = COMPLEMENTARY
    if capacity == MIN_GROUP_SIZE or any(status[s] in too_few for s in ("rl", "ps")):
        return MIN_GROUP_SIZE
    return COMPLEMENTARY


COHERENCE_INPUTS = {
    "internal": (RC, "internal"),
    "incoming": (RC, "incoming"),
    "rl": (RL, "members"),
    "ps": (PS, "members"),
}


def _compare_coherence(
    out: Comparison, settings: ScoringSettings, units: Rows, reference: Rows
) -> None:
    """Coherence rows against the engine's own published inputs (scoring-decisions.md)."""
    for key, row in units.items():
        unit, scale, measure, perspective, rollup = key
        if scale != "coherence":
            continue
        where = f"unit_scores {key}"
        if (measure, perspective) != ("index", "members"):
            out.problems.append(f"{where}: a coherence row other than the members index")
        inputs = {
            name: units.get((unit, s, "index", p, rollup))
            for name, (s, p) in COHERENCE_INPUTS.items()
        }
        status = {name: _status(r) for name, r in inputs.items()}
        capacity = [
            r
            for name, r in inputs.items()
            if name in ("internal", "incoming") and r and status[name] == "published"
        ]
        publishable = bool(capacity) and status["rl"] == status["ps"] == "published"
        for column in ("sd", "ci_low", "ci_high", "rwg", "low_agreement"):
            if row[column] is not None:
                out.problems.append(f"{where}: {column} = {row[column]} (must be null)")
        if row["suppressed"] == publishable:
            out.problems.append(f"{where}: suppressed {row['suppressed']}, inputs {status}")
            continue
        if publishable:
            out.seen["coherence published"] += 1
            rl, ps = inputs["rl"], inputs["ps"]
            assert rl is not None and ps is not None
            rc_mean = sum(r["mean"] for r in capacity) / len(capacity)
            mean = (rc_mean + rl["mean"] + ps["mean"]) / 3
            out.expect_equal(f"{where} mean", row["mean"], mean)
            out.expect_equal(f"{where} n", row["n"], min(r["n"] for r in [*capacity, rl, ps]))
            near_edge = min(abs(mean - settings.weak_below), abs(mean - settings.strong_above))
            if near_edge > TOLERANCE:
                out.expect_equal(f"{where} band", row["band"], band_of(mean, settings))
            elif key in reference and same_value(reference[key]["mean"], row["mean"]):
                # on an edge up to float error: the reference decides on the exact mean
                out.expect_equal(f"{where} band", row["band"], reference[key]["band"])
            else:
                out.seen["coherence band on an edge not checked"] += 1
            continue
        expected = coherence_reason(status)
        out.seen[f"coherence {expected}"] += 1
        out.expect_equal(f"{where} reason", row["suppression_reason"], expected)


def _compare_participation(out: Comparison, engine: pl.DataFrame, reference: pl.DataFrame) -> None:
    e_rows, r_rows = keyed(engine, PARTICIPATION_KEYS), keyed(reference, PARTICIPATION_KEYS)
    _key_sets(out, "participation", e_rows, r_rows)
    for key in sorted(set(e_rows) & set(r_rows), key=str):
        for column in UNIT_PARTICIPATION_SCHEMA:
            out.expect_equal(
                f"participation {key} {column}", e_rows[key][column], r_rows[key][column]
            )


def _published_network(tie_scores: pl.DataFrame, scale: str) -> dict[str, Any]:
    """strong / weak shares and the reciprocity gap over the published external ties."""
    ties = tie_scores.filter(
        pl.col("scale") == scale,
        pl.col("measure") == "index",
        ~pl.col("suppressed"),
        pl.col("from_unit") != pl.col("to_unit"),
    )
    bands = Counter(ties["band"].to_list())
    count = ties.height
    means = {(a, b): m for a, b, m in ties.select("from_unit", "to_unit", "mean").rows()}
    gaps = [abs(m - means[(b, a)]) for (a, b), m in means.items() if a < b and (b, a) in means]
    return {
        "strong_share": bands["strong"] / count if count else None,
        "weak_share": bands["weak"] / count if count else None,
        "reciprocity_gap": sum(gaps) / len(gaps) if gaps else None,
    }


def _published_correlation(
    instrument: InstrumentDefinition, unit_scores: pl.DataFrame
) -> dict[str, Any] | None:
    """Leadership–collaboration over the units whose two rows the engine publishes."""
    if instrument.scale(RL) is None or instrument.scale(RC) is None:
        return None
    published = unit_scores.filter(
        ~pl.col("rollup"), ~pl.col("suppressed"), pl.col("measure") == "index"
    )

    def means(scale: str, perspective: str) -> dict[str, float]:
        found = published.filter(pl.col("scale") == scale, pl.col("perspective") == perspective)
        return dict(found.select("unit", "mean").rows())

    rl, rc = means(RL, "members"), means(RC, "incoming")
    units = sorted(set(rl) & set(rc))
    if len(units) < 4:
        return None
    x = np.array([rl[u] for u in units])
    y = np.array([rc[u] for u in units])
    out: dict[str, Any] = dict.fromkeys(
        ("pearson_r", "pearson_p", "spearman_rho", "spearman_p"), None
    )
    out["n_units"] = len(units)
    if np.ptp(x) > 0 and np.ptp(y) > 0:
        pearson, spearman = stats.pearsonr(x, y), stats.spearmanr(x, y)
        out.update(
            pearson_r=float(pearson.statistic),
            pearson_p=float(pearson.pvalue),
            spearman_rho=float(spearman.statistic),
            spearman_p=float(spearman.pvalue),
        )
    return out


def _compare_summary(
    out: Comparison, inp: ScoringInput, engine: ScoringResult, reference: ScoringResult
) -> None:
    e, r = engine.summary, reference.summary
    if set(e) != set(r):
        out.problems.append(f"summary keys {sorted(e)} != {sorted(r)}")
        return
    for key in ("respondents", "response_rate"):
        out.expect_equal(f"summary.{key}", e[key], r[key])
    if set(e["scales"]) != set(r["scales"]):
        out.problems.append(f"summary scales {sorted(e['scales'])} != {sorted(r['scales'])}")
        return
    for scale, expected in r["scales"].items():
        got = e["scales"][scale]
        if set(got) != set(expected):
            out.problems.append(f"summary.scales.{scale} keys {sorted(got)}")
            continue
        for key in ("alpha", "icc1", "icc2"):
            out.expect_equal(f"summary.scales.{scale}.{key}", got[key], expected[key])
        _pooled(out, f"summary.scales.{scale}.mean", got["mean"], expected["mean"])
    net = network_scale(inp.instrument)
    if r["network"] is None or e["network"] is None or net is None:
        out.expect_equal("summary.network", e["network"], r["network"])
    elif set(e["network"]) != set(r["network"]):
        out.problems.append(f"summary.network keys {sorted(e['network'])}")
    else:
        out.expect_equal("summary.network.holes", e["network"]["holes"], r["network"]["holes"])
        for key in ("within_mean", "between_mean"):
            _pooled(out, f"summary.network.{key}", e["network"][key], r["network"][key])
        for key, value in _published_network(engine.tie_scores, net).items():
            out.expect_equal(f"summary.network.{key}", e["network"][key], value)
    expected_correlation = _published_correlation(inp.instrument, engine.unit_scores)
    got_correlation = e["leadership_collaboration"]
    if expected_correlation is None or got_correlation is None:
        out.expect_equal("summary.leadership_collaboration", got_correlation, expected_correlation)
    else:
        for key, value in expected_correlation.items():
            out.expect_equal(f"summary.leadership_collaboration.{key}", got_correlation[key], value)


def _pooled(out: Comparison, where: str, engine: float | None, reference: float | None) -> None:
    """A pooled summary mean: hidden by the protection (null) or the reference's value."""
    if engine is None:
        out.seen["summary mean hidden" if reference is not None else "summary mean rule 1"] += 1
        return
    out.seen["summary mean published"] += 1
    out.expect_equal(where, engine, reference)


def compare(
    inp: ScoringInput,
    engine: ScoringResult,
    reference: ScoringResult,
    members: dict[RowKey, frozenset[BaseCell]],
) -> Comparison:
    """Everything the module docstring lists, for one round."""
    out = Comparison()
    _frame_shape(out, "unit_scores", engine.unit_scores, UNIT_KEYS, UNIT_SCORES_SCHEMA)
    _frame_shape(out, "tie_scores", engine.tie_scores, TIE_KEYS, TIE_SCORES_SCHEMA)
    _frame_shape(
        out, "participation", engine.participation, PARTICIPATION_KEYS, UNIT_PARTICIPATION_SCHEMA
    )
    units, ties = keyed(engine.unit_scores, UNIT_KEYS), keyed(engine.tie_scores, TIE_KEYS)
    ref_units, ref_ties = (
        keyed(reference.unit_scores, UNIT_KEYS),
        keyed(reference.tie_scores, TIE_KEYS),
    )
    _key_sets(out, "unit_scores", units, ref_units)
    _key_sets(out, "tie_scores", ties, ref_ties)

    def published(scale: str, cell: BaseCell) -> bool:
        """Whether the engine publishes a base cell: the members item row (rollup false) of a
        (unit, item), the tie item row of a (from, to, item)."""
        a, b, item = cell
        own = (
            units.get((a, scale, item, "members", False))
            if b is None
            else ties.get((a, b, scale, item))
        )
        if own is None:
            out.problems.append(f"base cell {cell} of {scale} has no row of its own")
            return False
        return not own["suppressed"]

    for name, rows, ref_rows, scale_at in (
        ("unit_scores", units, ref_units, 1),
        ("tie_scores", ties, ref_ties, 2),
    ):
        for key in sorted(set(rows) & set(ref_rows), key=str):
            scale = key[scale_at]
            if scale == "coherence":
                continue
            cells = members.get(key)
            if cells is None:
                out.problems.append(f"{name} {key}: the reference lists no base cells")
                continue
            hidden = sorted((c for c in cells if not published(scale, c)), key=str)
            _compare_row(
                out,
                f"{name} {key}",
                rows[key],
                ref_rows[key],
                hidden,
            )
    _compare_coherence(out, inp.settings, units, ref_units)
    _compare_participation(out, engine.participation, reference.participation)
    _compare_summary(out, inp, engine, reference)
    return out


@cache
def compared(case: Case) -> Comparison:
    inp = case.scoring_input()
    reference, members = reference_with_members(inp)
    return compare(inp, score(inp), reference, members)


def check(case: Case) -> None:
    comparison = compared(case)
    assert not comparison.problems, (
        f"{case.name}: engine and reference disagree:\n{comparison.report()}"
    )


# --------------------------------------------------------------------------------------------
# The synthetic cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_engine_matches_reference(case: Case) -> None:
    check(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_CASES, ids=lambda c: c.name)
def test_engine_matches_reference_on_larger_organisations(case: Case) -> None:
    check(case)


def test_cases_exercise_the_rules() -> None:
    """The comparison is only meaningful if the cases reach every branch of it: rule 1, rows
    hidden by the protection, published rows with and without second moments, coherence rows
    published and suppressed for both reasons, summary means published."""
    seen: Counter[str] = Counter()
    for case in (CASES[2], CASES[4]):  # custom-k5, tiny-units-k5
        seen += compared(case).seen
    for what in (
        "rule 1",
        "complementary",
        "second moments shown",
        "second moments hidden",
        "coherence published",
        "coherence min_group_size",
        "coherence complementary",
        "summary mean published",
    ):
        assert seen[what] > 0, f"no case reaches {what!r}: {seen}"
    result = score(CASES[2].scoring_input())
    assert result.summary["leadership_collaboration"] is not None
    assert result.unit_scores.filter(pl.col("rollup") & ~pl.col("suppressed")).height > 0


def test_reference_members_from_one_run() -> None:
    inp = handcrafted_input()
    reference, members = reference_with_members(inp)
    assert members == reference_row_members(inp)
    assert reference.unit_scores.equals(reference_score(inp).unit_scores)


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
    """SCORING.md §6: bit-identical results whatever the row order — including what the
    protection chooses to hide."""
    inp = CASES[2].scoring_input()
    first = score(inp)
    assert first.unit_scores.filter(pl.col("suppression_reason") == COMPLEMENTARY).height > 0
    for seed in (99, 7):
        again = score(shuffled(inp, seed))
        assert first.unit_scores.equals(again.unit_scores)
        assert first.tie_scores.equals(again.tie_scores)
        assert first.participation.equals(again.participation)
        assert first.summary == again.summary


def test_reference_ignores_row_order() -> None:
    inp = CASES[4].scoring_input()
    first, again = reference_score(inp), reference_score(shuffled(inp, 5))
    assert first.unit_scores.equals(again.unit_scores)
    assert first.tie_scores.equals(again.tie_scores)
    assert first.participation.equals(again.participation)
    assert first.summary == again.summary


def test_network_uses_the_first_scale_asked_per_target_unit() -> None:
    """Without a scale named relational_capacity, engine and reference both compute the network
    statistics on the first unit-targeted scale (the comparison case renamed-network-k3)."""
    case = next(c for c in CASES if c.instrument == "renamed-network")
    inp = case.scoring_input()
    assert network_scale(inp.instrument) == "collaboration"
    network = score(inp).summary["network"]
    expected = reference_score(inp).summary["network"]
    assert network is not None and expected is not None
    assert network["between_mean"] is not None and network["within_mean"] is not None
    for key in ("within_mean", "between_mean"):
        assert network[key] == pytest.approx(expected[key], abs=TOLERANCE)
    assert network["holes"] == expected["holes"]
    assert network["strong_share"] is not None
    check(case)


# --------------------------------------------------------------------------------------------
# Band edges: pooled means exactly on 3.5 or 4.0 whose respondent scores say otherwise
# --------------------------------------------------------------------------------------------


def _edge_unit(target: Fraction, k: int, rng: random.Random) -> list[list[int]]:
    """Relational leadership answers, one list per respondent (the first items of the scale),
    of a unit whose pooled mean is exactly ``target`` while the mean of its respondents' scores
    lies on the other side of the edge (below 3.5, above 4.0): method 1 would band it otherwise.
    k respondents answer all 9 items and 1..4 more answer 5..8, so every item cell holds at
    least k people and the protection has nothing to hide."""
    while True:
        counts = [9] * k + [rng.randint(5, 8) for _ in range(rng.randint(1, 4))]
        total = target * sum(counts)
        if total.denominator != 1:
            continue
        answers = [[rng.randint(2, 5) for _ in range(c)] for c in counts]
        missing = int(total) - sum(map(sum, answers))
        slots = [(i, j) for i, c in enumerate(counts) for j in range(c)]
        while missing:
            i, j = rng.choice(slots)
            step = 1 if missing > 0 else -1
            if 1 <= answers[i][j] + step <= 5:
                answers[i][j] += step
                missing -= step
        scores = [Fraction(sum(a), len(a)) for a in answers]
        method_one = sum(scores) / len(scores)
        if method_one < target if target == Fraction(7, 2) else method_one > target:
            return answers


def band_edge_input(k: int = 5) -> ScoringInput:
    instrument = builtin_instrument("coherence-v1")
    rl_items = [i for i, (scale, _) in enumerate(instrument.items) if scale.key == RL]
    rng = random.Random(4)
    units: list[tuple[int, str, int | None]] = [(0, "u-root", None)]
    respondents: list[tuple[int, int]] = []
    answers: list[tuple[int, int | None, int, int | None]] = []
    for target in (Fraction(7, 2), Fraction(4)):
        for _ in range(8):
            unit = len(units)
            units.append((unit, f"u-{unit:03d}", 0))
            for values in _edge_unit(target, k, rng):
                r = len(respondents)
                respondents.append((r, unit))
                answers += [(r, None, item, v) for item, v in zip(rl_items, values, strict=False)]
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


def test_band_edges_are_decided_on_exact_pooled_means() -> None:
    """A unit whose pooled mean is exactly 3.5 or 4.0 is ``moderate``, though the mean of its
    respondents' scores is weak or strong."""
    inp = band_edge_input()
    reference, members = reference_with_members(inp)
    engine = score(inp)
    for result in (reference, engine):
        rows = result.unit_scores.filter(
            pl.col("scale") == RL,
            pl.col("measure") == "index",
            ~pl.col("rollup"),
            pl.col("unit") != "u-root",
        )
        assert rows.height == 16 and not rows["suppressed"].any()
        assert sorted(set(rows["mean"])) == [3.5, 4.0]
        assert set(rows["band"]) == {"moderate"}
    comparison = compare(inp, engine, reference, members)
    assert not comparison.problems, comparison.report()


# --------------------------------------------------------------------------------------------
# A handcrafted round for what random organisations rarely produce
# --------------------------------------------------------------------------------------------


def handcrafted_input(k: int = 5) -> ScoringInput:
    """Units (k = 5)::

        h-p (2 members)            h-r (a root without children: 6 members who answer, one who
        ├── h-a (6 members)            sends nothing at all; 2 say "don't know" to one RL item)
        └── h-b (9 members, one of whom answers "don't know" to everything)

    * Rule 1 on an item row whose index row is published: h-r's first leadership item holds 4.
    * h-a's internal ties: only 3 of its 6 members rate their own unit (rule 1), while 10 rate
      it from outside (h-p's 2, h-b's 8 who answer).
    * h-p's 2 direct members lie inside h-p's roll-up rows, which pool at least k people: the
      protection must hide more than rule 1 does.
    * Silent respondents count in ``respondents`` and participation, in no ``n``.
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
        for scale in (RL, PS):
            for item in by_scale[scale]:
                value = None if silent else rng.randint(2, 5)
                if u == 3 and i < 2 and item == by_scale[RL][0]:
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
            for item in by_scale[RC]:
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
    reference, members = reference_with_members(inp)
    engine = score(inp)

    def row(
        result: ScoringResult, unit: str, scale: str, measure: str, perspective: str = "members"
    ) -> dict[str, Any]:
        return keyed(result.unit_scores, UNIT_KEYS)[(unit, scale, measure, perspective, False)]

    # the round reaches what it is meant for
    for result in (reference, engine):
        item = row(result, "h-r", RL, "rl_frame_direction")
        assert item["suppression_reason"] == MIN_GROUP_SIZE  # 6 − 2 "don't know" = 4 < 5
        assert row(result, "h-a", RC, "index", "internal")["suppression_reason"] == (
            MIN_GROUP_SIZE  # 3 raters
        )
        assert result.summary["respondents"] == 24  # the silent ones too
        participation = keyed(result.participation, PARTICIPATION_KEYS)
        assert participation[("h-b", False)]["respondents"] == 9
        assert participation[("h-r", False)]["respondents"] == 7
    assert not row(reference, "h-r", RL, "index")["suppressed"]
    assert row(reference, "h-r", RL, "index")["n"] == 6  # not the one who sent nothing
    assert row(reference, "h-b", RL, "index")["n"] == 8  # not the one who said "don't know"
    assert row(reference, "h-a", RC, "index", "incoming")["n"] == 10  # h-p 2, h-b 9 − 1 silent
    assert engine.unit_scores.filter(pl.col("suppression_reason") == COMPLEMENTARY).height > 0
    comparison = compare(inp, engine, reference, members)
    assert not comparison.problems, comparison.report()
    assert comparison.seen["second moments hidden"] > 0
