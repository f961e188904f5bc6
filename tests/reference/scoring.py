"""Reference scoring, method 2 (pooled means): every number of SCORING.md and
docs/scoring-decisions.md, step by step.

The input is the engine's ``ScoringInput``; the polars frames are turned into plain Python rows at
the start, and the output is built as the same three polars frames and summary dict as the engine's
``ScoringResult`` at the end, so that a test can compare them.

Arithmetic is exact (``fractions.Fraction`` and integer sums): a row's mean is an integer sum
divided once, equal means are equal, band edges (3.5, 4.0), the rwg(J) cut-off and
``rwg < 0.70`` are decided exactly, and Spearman ranks see true ties. Only square roots, t
quantiles and p-values use floats.

The whole method in one paragraph: a **response** is one answered item of one respondent about one
referent (their home unit for a ``self`` scale, a target unit for a ``unit`` scale). It is
**counted** when its respondent answered at least ``Scale.min_answered`` (``ceil(items / 2)``) of
the scale's items about that referent, and then lies in exactly one **base cell**
``(home unit, target or None, item)``. Every row pools the counted responses of a set of base
cells: ``mean`` = their sum / their number, ``n`` = distinct people among them, a person's value
= the mean of their own responses in the row, ``sd`` and the 95% t-interval (centred on the pooled
mean) over those values.

Anonymity here is **rule 1 only** (a row with 1..k−1 people is suppressed, ``min_group_size``).
The engine's further protection (``complementary`` suppression, the "second moments" rule) is not
reproduced; tests compare what both publish and check the rest otherwise
(``reference_row_members`` gives each row's base cells for that).

Choices where neither document is explicit (kept here so that a reviewer can check them):

* Answer rows with a null value ("don't know") are not answered. A raw value that is not a key of
  the item's recode map, a ``self`` item with a target, a ``unit`` item without a target or with a
  target outside the round, and rows of respondents missing from ``respondents`` are ignored (the
  API rejects all of these). Duplicate (respondent, target, item) rows are assumed absent.
* Eligibility counts answered items as above; a respondent below the minimum about a referent
  contributes nothing about it anywhere (rows, summary means, ICC, holes), but their answers still
  form complete cases for α when they answered every item (they then meet the minimum anyway).
* A unit's coherence row exists (rollup false: every unit; rollup true: units with children) when
  at least one of its four input rows (internal, incoming, leadership, safety) exists.
* ``reference_changes``: the difference is the exact difference of the two means, rounded once;
  the Welch p-value comes from the published (float) means, sds and ns; it is null when scipy
  returns NaN (both sds 0). Coherence rows take part with a null p-value (their sd is null).
* Summary ICC of a unit-targeted scale other than relational capacity also uses the internal tie
  score; α is null for a scale with a single item (J/(J−1) undefined).
* ``leadership_collaboration`` is null unless the instrument has both relational leadership and
  relational capacity; when either side has zero variance, r, ρ and both p-values are null and
  ``n_units`` is still given.
* ``holes`` are counted on the network scale, over the units of the round's unit frame.
* ``reference_row_members`` lists, per row, only the base cells that hold at least one counted
  response of the row (the cells that actually contribute); coherence rows pool no base cells and
  are left out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

import polars as pl
from scipy import stats as sps

from coherence_core.instruments import InstrumentDefinition, Scale
from coherence_scoring.engine.types import (
    TIE_SCORES_SCHEMA,
    UNIT_PARTICIPATION_SCHEMA,
    UNIT_SCORES_SCHEMA,
    ScoringInput,
    ScoringResult,
    ScoringSettings,
)

Rational = Fraction | int
#: (unit or from_unit, to_unit or None, item key), in round-local unit ids
Cell = tuple[int, int | None, str]
UnitKey = tuple[str, str, str, str, bool]  # (unit, scale, measure, perspective, rollup)
TieKey = tuple[str, str, str, str]  # (from_unit, to_unit, scale, measure)

MIN_GROUP_SIZE = "min_group_size"
COMPLEMENTARY = "complementary"

RC = "relational_capacity"
RL = "relational_leadership"
PS = "psychological_safety"
COHERENCE = "coherence"


# --------------------------------------------------------------------------------------------
# Small statistics helpers
# --------------------------------------------------------------------------------------------


def _integers(values: Sequence[Rational]) -> tuple[list[int], int]:
    """The values as integer numerators over one common denominator (exact and fast)."""
    den = math.lcm(*{Fraction(v).denominator for v in values})
    return [Fraction(v).numerator * (den // Fraction(v).denominator) for v in values], den


def mean_of(values: Sequence[Rational]) -> Fraction:
    nums, den = _integers(values)
    return Fraction(sum(nums), len(values) * den)


def sample_variance(values: Sequence[Rational]) -> Fraction:
    """The exact sample variance (ddof 1); needs at least two values."""
    nums, den = _integers(values)
    n, total = len(values), sum(nums)
    return Fraction(n * sum(a * a for a in nums) - total * total, n * (n - 1) * den * den)


def as_float(x: Fraction | None) -> float | None:
    return None if x is None else float(x)


@cache
def t975(df: int) -> float:
    return float(sps.t.ppf(0.975, df))


def band_of(mean: Fraction, settings: ScoringSettings) -> str:
    """Thresholds are the exact decimals they are written as (scoring-decisions.md)."""
    if mean < Fraction(str(settings.weak_below)):
        return "weak"
    if mean > Fraction(str(settings.strong_above)):
        return "strong"
    return "moderate"


def rwg_j(item_values: Iterable[Sequence[int]], sigma_eu: Fraction) -> Fraction | None:
    """rwg(J) over the items with at least two values (the single-item rwg when J is 1);
    0 when the mean item variance reaches σ²_EU; None when no item has two values."""
    variances = [sample_variance(v) for v in item_values if len(v) >= 2]
    if not variances:
        return None
    j = len(variances)
    s2 = mean_of(variances)
    if s2 >= sigma_eu:
        return Fraction(0)
    ratio = s2 / sigma_eu
    return j * (1 - ratio) / (j * (1 - ratio) + ratio)


def sigma_eu(scale: Scale) -> Fraction:
    a = scale.response_max - scale.response_min + 1
    return Fraction(a * a - 1, 12)


def pearson(xs: Sequence[Fraction], ys: Sequence[Fraction]) -> tuple[float, float] | None:
    """Pearson r and its two-sided p-value (t with n − 2 df); None when a side is constant."""
    n = len(xs)
    mx, my = mean_of(xs), mean_of(ys)
    sxx = sum(((x - mx) ** 2 for x in xs), Fraction(0))
    syy = sum(((y - my) ** 2 for y in ys), Fraction(0))
    if sxx == 0 or syy == 0:
        return None
    sxy = sum(((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)), Fraction(0))
    r2 = sxy * sxy / (sxx * syy)
    r = math.copysign(math.sqrt(r2), sxy)
    if r2 == 1:
        return r, 0.0
    t = r * math.sqrt((n - 2) / float(1 - r2))
    p = 2.0 * float(sps.t.sf(abs(t), n - 2))
    return r, min(1.0, p)


def average_ranks(values: Sequence[Fraction]) -> list[Fraction]:
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [Fraction(0)] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for pos in range(i, j + 1):
            ranks[order[pos]] = Fraction(i + j + 2, 2)
        i = j + 1
    return ranks


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    key: str
    items: tuple[str, ...]


def measures_of(scale: Scale) -> list[Measure]:
    """index, then the subscales, then the items (no measure has a minimum of its own)."""
    out = [Measure("index", tuple(i.key for i in scale.items))]
    for sub in scale.subscales:
        out.append(Measure(sub.key, tuple(i.key for i in scale.items if i.subscale == sub.key)))
    out += [Measure(item.key, (item.key,)) for item in scale.items]
    return out


@dataclass(eq=False)
class Row:
    """One row before it is written out. ``mean`` is exact; sd and the interval are floats."""

    n: int
    mean: Fraction | None = None
    sd: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    rwg: Fraction | None = None
    band: str | None = None
    headcount: int | None = None  # participation rows only
    response_rate: Fraction | None = None  # participation rows only
    suppressed: bool = False
    reason: str | None = None

    def suppress(self, reason: str) -> None:
        self.suppressed = True
        self.reason = reason
        self.mean = self.rwg = self.band = None
        self.sd = self.ci_low = self.ci_high = None
        self.response_rate = None


def describe(per_person: dict[int, list[int]]) -> Row:
    """The pooled mean of every response, n distinct people, and sd / t-interval over each
    person's own mean, the interval centred on the pooled mean."""
    count = sum(len(v) for v in per_person.values())
    total = sum(sum(v) for v in per_person.values())
    n = len(per_person)
    mean = Fraction(total, count)
    row = Row(n=n, mean=mean)
    if n >= 2:
        person_values = [Fraction(sum(v), len(v)) for v in per_person.values()]
        row.sd = math.sqrt(sample_variance(person_values))
        half = t975(n - 1) * row.sd / math.sqrt(n)
        row.ci_low = float(mean) - half
        row.ci_high = float(mean) + half
    return row


# --------------------------------------------------------------------------------------------
# The computation
# --------------------------------------------------------------------------------------------


class Reference:
    def __init__(self, inp: ScoringInput) -> None:
        self.instrument: InstrumentDefinition = inp.instrument
        self.settings = inp.settings
        self.k = inp.settings.min_group_size

        # ---- units
        self.ext: dict[int, str] = {}
        self.parent: dict[int, int | None] = {}
        self.headcount: dict[int, int | None] = {}
        for u in inp.units.iter_rows(named=True):
            self.ext[u["unit"]] = u["external_id"]
            self.parent[u["unit"]] = u["parent"]
            self.headcount[u["unit"]] = u["headcount"]
        self.units = sorted(self.ext, key=lambda u: self.ext[u])
        self.children: dict[int, list[int]] = defaultdict(list)
        for u in self.units:
            p = self.parent[u]
            if p is not None:
                self.children[p].append(u)
        self.parents = [u for u in self.units if self.children.get(u)]
        self.subtree: dict[int, set[int]] = {u: self._subtree(u) for u in self.units}

        # ---- respondents
        self.home: dict[int, int] = {}
        for r in inp.respondents.iter_rows(named=True):
            self.home[r["respondent"]] = r["unit"]
        self.members: dict[int, list[int]] = defaultdict(list)
        for r, u in sorted(self.home.items()):
            self.members[u].append(r)

        # ---- answers: answers[scale][(respondent, target or None)][item] = scored value
        self.answers: dict[str, dict[tuple[int, int | None], dict[str, int]]] = {
            s.key: defaultdict(dict) for s in self.instrument.scales
        }
        items = self.instrument.items
        for respondent, target, item_index, value in inp.answers.select(
            "respondent", "target", "item", "value"
        ).iter_rows():
            if value is None or respondent not in self.home:
                continue
            scale, item = items[item_index]
            if scale.targeting == "self" and target is not None:
                continue
            if scale.targeting == "unit" and (target is None or target not in self.ext):
                continue
            v = value
            if item.recode is not None:
                if v not in item.recode:
                    continue
                v = item.recode[v]
            if item.reversed:
                v = scale.response_min + scale.response_max - v
            self.answers[scale.key][(respondent, target)][item.key] = v

        # ---- counted responses by base cell: cells[scale][(a, b, item)] = [(person, value)]
        self.cells: dict[str, dict[Cell, list[tuple[int, int]]]] = {}
        self.pairs: dict[str, set[tuple[int, int | None]]] = {}
        for scale in self.instrument.scales:
            cells: dict[Cell, list[tuple[int, int]]] = defaultdict(list)
            for (person, target), ans in sorted(self.answers[scale.key].items(), key=_answer_key):
                if len(ans) < scale.min_answered:
                    continue  # not eligible about this referent: counts nowhere
                for item_key, v in ans.items():
                    cells[(self.home[person], target, item_key)].append((person, v))
            self.cells[scale.key] = dict(cells)
            self.pairs[scale.key] = {(a, b) for a, b, _ in cells}

        self.unit_rows: dict[UnitKey, Row] = {}
        self.tie_rows: dict[TieKey, Row] = {}
        self.participation_rows: dict[tuple[str, bool], Row] = {}
        self.row_cells: dict[UnitKey | TieKey, frozenset[tuple[str, str | None, str]]] = {}

    def _subtree(self, u: int) -> set[int]:
        out, stack = {u}, [u]
        while stack:
            for c in self.children.get(stack.pop(), []):
                out.add(c)
                stack.append(c)
        return out

    # ---- pooling ---------------------------------------------------------------------------

    def pool(
        self, scale: Scale, items: Sequence[str], pairs: Iterable[tuple[int, int | None]]
    ) -> tuple[dict[int, list[int]], dict[str, list[int]], set[Cell]]:
        """The counted responses of the base cells pairs × items: per person, per item, and the
        cells that hold any."""
        per_person: dict[int, list[int]] = defaultdict(list)
        per_item: dict[str, list[int]] = defaultdict(list)
        used: set[Cell] = set()
        cells = self.cells[scale.key]
        for a, b in pairs:
            for item in items:
                responses = cells.get((a, b, item))
                if not responses:
                    continue
                used.add((a, b, item))
                for person, v in responses:
                    per_person[person].append(v)
                    per_item[item].append(v)
        return per_person, per_item, used

    def make_row(
        self,
        key: UnitKey | TieKey,
        scale: Scale,
        m: Measure,
        pairs: Iterable[tuple[int, int | None]],
        with_rwg: bool,
    ) -> Row | None:
        per_person, per_item, used = self.pool(scale, m.items, pairs)
        if not per_person:
            return None  # no counted response: no row
        row = describe(per_person)
        if with_rwg:
            row.rwg = rwg_j((per_item[i] for i in m.items if i in per_item), sigma_eu(scale))
        self.row_cells[key] = frozenset(
            (self.ext[a], None if b is None else self.ext[b], item) for a, b, item in used
        )
        return row

    def add_unit_row(
        self,
        unit: int,
        scale: Scale,
        m: Measure,
        perspective: str,
        rollup: bool,
        pairs: Iterable[tuple[int, int | None]],
        with_rwg: bool = False,
    ) -> None:
        key = (self.ext[unit], scale.key, m.key, perspective, rollup)
        row = self.make_row(key, scale, m, list(pairs), with_rwg)
        if row is not None:
            self.unit_rows[key] = row

    def score_self_scale(self, scale: Scale) -> None:
        for m in measures_of(scale):
            for u in self.units:
                self.add_unit_row(u, scale, m, "members", False, [(u, None)], with_rwg=True)
            for p in self.parents:
                pairs = [(u, None) for u in sorted(self.subtree[p])]
                self.add_unit_row(p, scale, m, "members", True, pairs, with_rwg=True)

    def score_unit_scale(self, scale: Scale) -> None:
        present = sorted(self.pairs[scale.key], key=lambda ab: (ab[0], ab[1]))
        for m in measures_of(scale):
            for a, b in present:
                assert b is not None
                key = (self.ext[a], self.ext[b], scale.key, m.key)
                row = self.make_row(key, scale, m, [(a, b)], with_rwg=False)
                if row is not None:
                    self.tie_rows[key] = row
            for u in self.units:
                self.add_unit_row(u, scale, m, "internal", False, [(u, u)], with_rwg=True)
                incoming = [(a, b) for a, b in present if b == u and a != u]
                self.add_unit_row(u, scale, m, "incoming", False, incoming)
                outgoing = [(a, b) for a, b in present if a == u and b != u]
                self.add_unit_row(u, scale, m, "outgoing", False, outgoing)
            for p in self.parents:
                s = self.subtree[p]
                internal = [(a, b) for a, b in present if a in s and b in s]
                self.add_unit_row(p, scale, m, "internal", True, internal)
                incoming = [(a, b) for a, b in present if a not in s and b in s]
                self.add_unit_row(p, scale, m, "incoming", True, incoming)
                outgoing = [(a, b) for a, b in present if a in s and b not in s]
                self.add_unit_row(p, scale, m, "outgoing", True, outgoing)

    # ---- participation ---------------------------------------------------------------------

    def score_participation(self) -> None:
        for u in self.units:
            n = len(self.members.get(u, []))
            if n:
                self.participation_rows[(self.ext[u], False)] = _participation(n, self.headcount[u])
        for p in self.parents:
            n = sum(len(self.members.get(u, [])) for u in self.subtree[p])
            if not n:
                continue
            counts = [self.headcount[u] for u in self.subtree[p]]
            headcount = None if any(c is None for c in counts) else sum(c or 0 for c in counts)
            self.participation_rows[(self.ext[p], True)] = _participation(n, headcount)

    # ---- anonymity: rule 1 only ---------------------------------------------------------------

    def rule_one(self) -> None:
        for row in [
            *self.unit_rows.values(),
            *self.tie_rows.values(),
            *self.participation_rows.values(),
        ]:
            if row.n < self.k:
                row.suppress(MIN_GROUP_SIZE)

    def set_bands(self) -> None:
        for (_, _, measure, _, _), row in self.unit_rows.items():
            if measure == "index" and not row.suppressed and row.mean is not None:
                row.band = band_of(row.mean, self.settings)
        for (_, _, _, measure), row in self.tie_rows.items():
            if measure == "index" and not row.suppressed and row.mean is not None:
                row.band = band_of(row.mean, self.settings)

    # ---- coherence -------------------------------------------------------------------------

    def score_coherence(self) -> None:
        """Mean of three published means (relational capacity = mean of the published internal
        and incoming index means), n the smallest n among the inputs used."""
        if not self.instrument.has_coherence_index:
            return

        def published(x: Row | None) -> bool:
            return x is not None and not x.suppressed

        def too_few(x: Row | None) -> bool:  # missing or suppressed for min_group_size
            return x is None or x.reason == MIN_GROUP_SIZE

        for rollup in (False, True):
            for u in self.parents if rollup else self.units:
                ext = self.ext[u]
                internal = self.unit_rows.get((ext, RC, "index", "internal", rollup))
                incoming = self.unit_rows.get((ext, RC, "index", "incoming", rollup))
                rl = self.unit_rows.get((ext, RL, "index", "members", rollup))
                ps = self.unit_rows.get((ext, PS, "index", "members", rollup))
                if all(x is None for x in (internal, incoming, rl, ps)):
                    continue
                key = (ext, COHERENCE, "index", "members", rollup)
                rc_used = [x for x in (internal, incoming) if x is not None and published(x)]
                if (
                    rc_used
                    and rl is not None
                    and ps is not None
                    and published(rl)
                    and published(ps)
                ):
                    rc_mean = mean_of([x.mean for x in rc_used if x.mean is not None])
                    assert rl.mean is not None and ps.mean is not None
                    row = Row(n=min(x.n for x in [*rc_used, rl, ps]))
                    row.mean = (rc_mean + rl.mean + ps.mean) / 3
                    row.band = band_of(row.mean, self.settings)
                    self.unit_rows[key] = row
                    continue
                # capacity is missing only when neither of its rows exists
                rc_too_few = not rc_used and (
                    (internal is None and incoming is None)
                    or any(
                        x is not None and x.reason == MIN_GROUP_SIZE for x in (internal, incoming)
                    )
                )
                row = Row(n=0)
                if rc_too_few or too_few(rl) or too_few(ps):
                    row.suppress(MIN_GROUP_SIZE)
                else:
                    row.suppress(COMPLEMENTARY)
                self.unit_rows[key] = row

    # ---- summary ---------------------------------------------------------------------------

    def pooled_summary_mean(
        self, scale: Scale, pairs: Iterable[tuple[int, int | None]]
    ) -> float | None:
        """Pooled over every counted response (all items) of the pairs; null under k people."""
        per_person, _, _ = self.pool(scale, [i.key for i in scale.items], pairs)
        if len(per_person) < self.k:
            return None
        return as_float(describe(per_person).mean)

    def alpha(self, scale: Scale) -> float | None:
        """Cronbach's α over complete cases (respondent, or respondent × target)."""
        items = [i.key for i in scale.items]
        j = len(items)
        complete = [
            (person, ans)
            for (person, _), ans in self.answers[scale.key].items()
            if all(i in ans for i in items)
        ]
        people = {person for person, _ in complete}
        if j < 2 or len(complete) < 2 or len(people) < self.k:
            return None
        total = sample_variance([sum(ans[i] for i in items) for _, ans in complete])
        if total == 0:
            return None
        item_vars = sum(sample_variance([ans[i] for _, ans in complete]) for i in items)
        return float(Fraction(j, j - 1) * (1 - item_vars / total))

    def icc_scores(self, scale: Scale) -> dict[int, Fraction]:
        """Each eligible respondent's scale score: about their own unit (self scales: the one
        answer set; unit scales: their internal tie)."""
        out: dict[int, Fraction] = {}
        for (person, target), ans in self.answers[scale.key].items():
            if len(ans) < scale.min_answered:
                continue
            if scale.targeting == "self" or target == self.home[person]:
                out[person] = mean_of(list(ans.values()))
        return out

    def icc(self, scores: dict[int, Fraction]) -> tuple[float | None, float | None]:
        groups: dict[int, list[Fraction]] = defaultdict(list)
        for person, s in sorted(scores.items()):
            groups[self.home[person]].append(s)
        groups = {u: v for u, v in groups.items() if len(v) >= 2}
        g = len(groups)
        n_total = sum(len(v) for v in groups.values())
        if g < 2 or n_total < self.k:
            return None, None
        grand = mean_of([x for v in groups.values() for x in v])
        means = {u: mean_of(v) for u, v in groups.items()}
        ss_between = sum(len(v) * (means[u] - grand) ** 2 for u, v in groups.items())
        ss_within = sum((x - means[u]) ** 2 for u, v in groups.items() for x in v)
        msb = ss_between / (g - 1)
        msw = ss_within / (n_total - g)
        k_bar = Fraction(n_total * n_total - sum(len(v) ** 2 for v in groups.values()), n_total)
        k_bar /= g - 1
        denominator = msb + (k_bar - 1) * msw
        icc1 = None if denominator == 0 else float((msb - msw) / denominator)
        icc2 = None if msb == 0 else float((msb - msw) / msb)
        return icc1, icc2

    def network_scale(self) -> Scale | None:
        targeted = [s for s in self.instrument.scales if s.targeting == "unit"]
        return next((s for s in targeted if s.key == RC), next(iter(targeted), None))

    def network(self) -> dict[str, Any] | None:
        scale = self.network_scale()
        if scale is None:
            return None
        net = scale.key
        present = self.pairs[net]
        within = self.pooled_summary_mean(scale, [(a, b) for a, b in present if a == b])
        between = self.pooled_summary_mean(scale, [(a, b) for a, b in present if a != b])
        external = [
            row
            for (a, b, s, m), row in self.tie_rows.items()
            if s == net and m == "index" and a != b and not row.suppressed
        ]
        strong = weak = None
        if external:
            strong = sum(1 for r in external if r.band == "strong") / len(external)
            weak = sum(1 for r in external if r.band == "weak") / len(external)
        gaps: list[Fraction] = []
        for (a, b, s, m), row in self.tie_rows.items():
            if s != net or m != "index" or a >= b or row.suppressed:
                continue
            other = self.tie_rows.get((b, a, s, m))
            if other is not None and not other.suppressed:
                assert row.mean is not None and other.mean is not None
                gaps.append(abs(row.mean - other.mean))
        linked = {(min(a, b), max(a, b)) for a, b in present if b is not None and a != b}
        n_units = len(self.units)
        return {
            "within_mean": within,
            "between_mean": between,
            "strong_share": strong,
            "weak_share": weak,
            "reciprocity_gap": float(mean_of(gaps)) if gaps else None,
            "holes": n_units * (n_units - 1) // 2 - len(linked),
        }

    def leadership_collaboration(self) -> dict[str, Any] | None:
        if self.instrument.scale(RL) is None or self.instrument.scale(RC) is None:
            return None
        xs: list[Fraction] = []
        ys: list[Fraction] = []
        for u in self.units:
            rl = self.unit_rows.get((self.ext[u], RL, "index", "members", False))
            rc = self.unit_rows.get((self.ext[u], RC, "index", "incoming", False))
            if rl is None or rc is None or rl.suppressed or rc.suppressed:
                continue
            assert rl.mean is not None and rc.mean is not None
            xs.append(rl.mean)
            ys.append(rc.mean)
        if len(xs) < 4:
            return None
        out: dict[str, Any] = {
            "pearson_r": None,
            "pearson_p": None,
            "spearman_rho": None,
            "spearman_p": None,
            "n_units": len(xs),
        }
        p = pearson(xs, ys)
        s = pearson(average_ranks(xs), average_ranks(ys))
        if p is not None and s is not None:
            out["pearson_r"], out["pearson_p"] = p
            out["spearman_rho"], out["spearman_p"] = s
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"respondents": len(self.home)}
        known = [u for u in self.units if self.headcount[u] is not None]
        heads = sum(self.headcount[u] or 0 for u in known)
        out["response_rate"] = (
            float(Fraction(sum(len(self.members.get(u, [])) for u in known), heads))
            if heads > 0
            else None
        )
        scales: dict[str, Any] = {}
        for scale in self.instrument.scales:
            icc1, icc2 = self.icc(self.icc_scores(scale))
            scales[scale.key] = {
                "mean": self.pooled_summary_mean(scale, self.pairs[scale.key]),
                "alpha": self.alpha(scale),
                "icc1": icc1,
                "icc2": icc2,
            }
        out["scales"] = scales
        out["network"] = self.network()
        out["leadership_collaboration"] = self.leadership_collaboration()
        return out

    # ---- run -------------------------------------------------------------------------------

    def run(self) -> ScoringResult:
        for scale in self.instrument.scales:
            if scale.targeting == "self":
                self.score_self_scale(scale)
            else:
                self.score_unit_scale(scale)
        self.score_participation()
        self.rule_one()
        self.set_bands()
        self.score_coherence()
        return ScoringResult(
            unit_scores=self.unit_frame(),
            tie_scores=self.tie_frame(),
            participation=self.participation_frame(),
            summary=self.summary(),
        )

    def unit_frame(self) -> pl.DataFrame:
        records = []
        for (unit, scale, measure, perspective, rollup), row in sorted(self.unit_rows.items()):
            pub = not row.suppressed
            records.append(
                {
                    "unit": unit,
                    "scale": scale,
                    "measure": measure,
                    "perspective": perspective,
                    "rollup": rollup,
                    "n": row.n if pub else None,
                    "mean": as_float(row.mean),
                    "sd": row.sd,
                    "ci_low": row.ci_low,
                    "ci_high": row.ci_high,
                    "rwg": as_float(row.rwg),
                    "band": row.band,
                    "low_agreement": None if row.rwg is None else row.rwg < Fraction(7, 10),
                    "suppressed": row.suppressed,
                    "suppression_reason": row.reason,
                }
            )
        return pl.DataFrame(records, schema=UNIT_SCORES_SCHEMA, orient="row")

    def tie_frame(self) -> pl.DataFrame:
        records = []
        for (a, b, scale, measure), row in sorted(self.tie_rows.items()):
            pub = not row.suppressed
            records.append(
                {
                    "from_unit": a,
                    "to_unit": b,
                    "scale": scale,
                    "measure": measure,
                    "n": row.n if pub else None,
                    "mean": as_float(row.mean),
                    "sd": row.sd,
                    "ci_low": row.ci_low,
                    "ci_high": row.ci_high,
                    "band": row.band,
                    "suppressed": row.suppressed,
                    "suppression_reason": row.reason,
                }
            )
        return pl.DataFrame(records, schema=TIE_SCORES_SCHEMA, orient="row")

    def participation_frame(self) -> pl.DataFrame:
        records = []
        for (unit, rollup), row in sorted(self.participation_rows.items()):
            pub = not row.suppressed
            records.append(
                {
                    "unit": unit,
                    "rollup": rollup,
                    "respondents": row.n if pub else None,
                    "headcount": row.headcount,
                    "response_rate": as_float(row.response_rate),
                    "suppressed": row.suppressed,
                    "suppression_reason": row.reason,
                }
            )
        return pl.DataFrame(records, schema=UNIT_PARTICIPATION_SCHEMA, orient="row")


def _answer_key(entry: tuple[tuple[int, int | None], dict[str, int]]) -> tuple[int, int]:
    (person, target), _ = entry
    return person, -1 if target is None else target


def _participation(n: int, headcount: int | None) -> Row:
    row = Row(n=n, headcount=headcount)
    row.response_rate = Fraction(n, headcount) if headcount else None
    return row


def reference_score(inp: ScoringInput) -> ScoringResult:
    """Score a round the slow, obvious way (see the module docstring for the choices made)."""
    return Reference(inp).run()


def reference_row_members(
    inp: ScoringInput,
) -> dict[UnitKey | TieKey, frozenset[tuple[str, str | None, str]]]:
    """For every unit row key ``(unit, scale, measure, perspective, rollup)`` and tie row key
    ``(from_unit, to_unit, scale, measure)`` (external ids), the base cells the row pools:
    ``(unit or from_unit, to_unit or None, item_key)``, only cells holding at least one counted
    response. Coherence rows pool no base cells and are not listed."""
    ref = Reference(inp)
    ref.run()
    return dict(ref.row_cells)


# --------------------------------------------------------------------------------------------
# Change since an earlier round (SCORING.md §4, scoring-decisions.md) — not in ScoringResult
# --------------------------------------------------------------------------------------------

CHANGES_SCHEMA = {
    "unit": pl.String,
    "scale": pl.String,
    "measure": pl.String,
    "perspective": pl.String,
    "rollup": pl.Boolean,
    "mean": pl.Float64,
    "earlier_mean": pl.Float64,
    "difference": pl.Float64,
    "p_value": pl.Float64,
}


def welch_p(later: Row, earlier: Row) -> float | None:
    """Welch's p-value from the two published rows' mean, sd and n."""
    if later.sd is None or earlier.sd is None or later.n < 2 or earlier.n < 2:
        return None
    assert later.mean is not None and earlier.mean is not None
    res = sps.ttest_ind_from_stats(
        float(later.mean),
        later.sd,
        later.n,
        float(earlier.mean),
        earlier.sd,
        earlier.n,
        equal_var=False,
    )
    p = float(res.pvalue)
    return None if math.isnan(p) else p


def reference_changes(earlier: ScoringInput, later: ScoringInput) -> pl.DataFrame:
    """Per unit row published (rule 1) in both rounds, matched by external id, scale, measure,
    perspective and roll-up flag: the difference of the means and Welch's p-value computed from
    the two published rows."""
    before, after = Reference(earlier), Reference(later)
    before.run()
    after.run()
    records = []
    for key, row in sorted(after.unit_rows.items()):
        old = before.unit_rows.get(key)
        if old is None or old.suppressed or row.suppressed:
            continue
        assert row.mean is not None and old.mean is not None
        unit, scale, measure, perspective, rollup = key
        records.append(
            {
                "unit": unit,
                "scale": scale,
                "measure": measure,
                "perspective": perspective,
                "rollup": rollup,
                "mean": float(row.mean),
                "earlier_mean": float(old.mean),
                "difference": float(row.mean - old.mean),
                "p_value": welch_p(row, old),
            }
        )
    return pl.DataFrame(records, schema=CHANGES_SCHEMA, orient="row")
