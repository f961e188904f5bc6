"""Reference scoring: every measure of SCORING.md and docs/scoring-decisions.md, step by step.

The input is the engine's ``ScoringInput``; the polars frames are turned into plain Python rows at
the start, and the output is built as the same three polars frames and summary dict as the engine's
``ScoringResult`` at the end, so a test can compare them.

Arithmetic is exact (``fractions.Fraction``; sums over a common denominator in integers): equal
means are equal, band edges (3.5, 4.0), the rwg(J) cut-off and ``rwg < 0.70`` are decided exactly,
and Spearman ranks see true ties. Only square roots, t quantiles and p-values use floats.

Choices where neither document is explicit (kept here so a reviewer can check them):

* Answer rows with a null value ("don't know") count as not answered. A raw value that is not a key
  of the item's recode map, a ``self`` item with a target, a ``unit`` item without one, and rows of
  respondents missing from ``respondents`` are ignored (the API rejects all of these).
* Ties include the diagonal ``R[a, a]`` (SCORING.md §3: "R[a,a] is the internal relational
  capacity of a"); it is never a part of the incoming-column family.
* Rule 2 families are checked whether or not their aggregate is itself suppressed; when it is,
  the suppressed parts must hold at least k respondents unless every part is suppressed (so a
  hidden aggregate cannot be rebuilt from its published parts); the organisation family applies
  to every measure of a self-targeted scale; its aggregate is visible only as the summary's scale
  mean.
* Roll-up participation rows: ``headcount`` is the sum of the subtree's headcounts when every
  unit in the subtree has one, else null (the summary's response rate treats a unit's headcount
  as its own people, so a roll-up adds them up). Suppressed participation rows keep
  ``headcount`` (the org chart is not respondent data) and null ``respondents`` and
  ``response_rate``.
* Coherence row suppression reason: the three inputs are relational capacity (published when its
  ``internal`` or ``incoming`` row is; otherwise it counts as "missing / min_group_size" when either
  of the two rows is missing or suppressed for ``min_group_size``, else "complementary"),
  relational leadership and psychological safety.
* After rule 2, ``outgoing`` (no roll-up) and roll-up ``internal`` / ``incoming`` / ``outgoing``
  rows of a unit-targeted scale (parts of no family) are suppressed (complementary) when the
  distinct raters of the suppressed ties they pool number 1..k−1 (``rule_two_pooled``). Then
  the roll-up ``internal`` row of q is suppressed (complementary) when q ⊋ p both have published
  roll-up internal rows and the suppressed ties in S(q) but not in S(p) have 1..k−1 distinct
  raters (``rule_two_nested``).
* Summary values resting on fewer than k distinct respondents are null (rule 1): a scale mean
  (respondents with the score; relational capacity: raters with a tie score), α (respondents in
  its complete cases), ICC(1)/ICC(2) (respondents in the units used), within/between means
  (raters with an internal / external tie score).
* Summary values that pool published rows are aggregates of rule 2 (``summary_nulls``):
  within_mean (the ``internal`` rows), between_mean (the ``incoming`` rows), a unit-targeted
  scale's mean (both; for the network scale also null when exactly one of within_mean and
  between_mean is), the response rate (the direct participation rows of units with a headcount,
  also checked against the published participation sums). Each is null when its suppressed
  parts hold 1..k−1 distinct people; no further row is suppressed for it.
* ``leadership_collaboration``: when either side has zero variance, r, ρ and both p-values are null;
  ``n_units`` is still given.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    den = math.lcm(*{v.denominator for v in values})
    return [v.numerator * (den // v.denominator) for v in values], den


def mean_of(values: Sequence[Rational]) -> Fraction:
    """The exact mean (so that equal means are equal and band edges are exact)."""
    nums, den = _integers(values)
    return Fraction(sum(nums), len(values) * den)


def sample_variance(values: Sequence[Rational]) -> Fraction:
    """The exact sample variance (ddof 1)."""
    nums, den = _integers(values)
    n, total = len(values), sum(nums)
    return Fraction(n * sum(a * a for a in nums) - total * total, n * (n - 1) * den * den)


def as_float(x: Fraction | None) -> float | None:
    return None if x is None else float(x)


@cache
def t975(df: int) -> float:
    return float(sps.t.ppf(0.975, df))


def band_of(mean: Fraction, settings: ScoringSettings) -> str:
    if mean < settings.weak_below:
        return "weak"
    if mean > settings.strong_above:
        return "strong"
    return "moderate"


def rwg_j(item_values: Sequence[Sequence[Rational]], sigma_eu: Fraction) -> Fraction | None:
    """rwg(J) over the items with at least two values; the single-item rwg when J is 1."""
    variances = [sample_variance(v) for v in item_values if len(v) >= 2]
    if not variances:
        return None
    j = len(variances)
    s2 = mean_of(variances)
    if s2 >= sigma_eu:
        return Fraction(0)
    ratio = s2 / sigma_eu
    if j == 1:
        return max(Fraction(0), 1 - ratio)
    return j * (1 - ratio) / (j * (1 - ratio) + ratio)


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
    """Ranks 1..n, tied values sharing the mean of their ranks (exact ties: exact values)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [Fraction(0)] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        rank = Fraction(i + j + 2, 2)
        for pos in range(i, j + 1):
            ranks[order[pos]] = rank
        i = j + 1
    return ranks


# --------------------------------------------------------------------------------------------
# Instrument helpers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    key: str
    items: tuple[str, ...]
    min_answered: int
    is_index: bool


def measures_of(scale: Scale) -> list[Measure]:
    items = tuple(i.key for i in scale.items)
    out = [Measure("index", items, math.ceil(len(items) / 2), True)]
    for sub in scale.subscales:
        sub_items = tuple(i.key for i in scale.items if i.subscale == sub.key)
        out.append(Measure(sub.key, sub_items, math.ceil(len(sub_items) / 2), False))
    for item in scale.items:
        out.append(Measure(item.key, (item.key,), 1, False))
    return out


def score_of(answers: dict[str, int], measure: Measure) -> Fraction | None:
    values = [answers[i] for i in measure.items if i in answers]
    if not values or len(values) < measure.min_answered:
        return None
    return Fraction(sum(values), len(values))


def sigma_eu(scale: Scale) -> Fraction:
    a = scale.response_max - scale.response_min + 1
    return Fraction(a * a - 1, 12)


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Row:
    """One published cell before it is written out; ``values`` are its respondents' scores."""

    n: int
    order_key: tuple[str, str]  # for "smallest first, ties broken by unit id, then to/from key"
    values: list[Fraction] = field(default_factory=list)
    mean: Fraction | None = None  # exact; written out as the nearest float
    sd: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    rwg: Fraction | None = None
    band: str | None = None
    headcount: int | None = None  # participation rows only
    response_rate: Fraction | None = None  # participation rows only
    suppressed: bool = False
    reason: str | None = None

    def suppress(self, reason: str) -> bool:
        if self.suppressed:
            return False
        self.suppressed = True
        self.reason = reason
        return True


def describe(values: list[Fraction], order_key: tuple[str, str]) -> Row:
    n = len(values)
    row = Row(n=n, order_key=order_key, values=list(values))
    row.mean = mean_of(values)
    if n >= 2:
        row.sd = math.sqrt(sample_variance(values))
        half = t975(n - 1) * row.sd / math.sqrt(n)
        row.ci_low = float(row.mean) - half
        row.ci_high = float(row.mean) + half
    return row


@dataclass
class Family:
    aggregate: Row
    parts: list[Row]


# --------------------------------------------------------------------------------------------
# The computation
# --------------------------------------------------------------------------------------------


class Reference:
    def __init__(self, inp: ScoringInput) -> None:
        self.instrument: InstrumentDefinition = inp.instrument
        self.settings = inp.settings
        self.k = inp.settings.min_group_size

        # ---- input frames → Python rows
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
        self.roots = [u for u in self.units if self.parent[u] is None]
        self.subtree: dict[int, set[int]] = {u: self._subtree(u) for u in self.units}
        # for each unit, the units with children whose subtree contains it (itself included)
        self.rollup_ancestors: dict[int, set[int]] = {
            u: {p for p in self.parents if u in self.subtree[p]} for u in self.units
        }

        self.home: dict[int, int] = {}
        for r in inp.respondents.iter_rows(named=True):
            self.home[r["respondent"]] = r["unit"]
        self.members: dict[int, list[int]] = defaultdict(list)
        for r, u in sorted(self.home.items()):
            self.members[u].append(r)

        # self_answers[scale][respondent][item] and tie_answers[scale][respondent][target][item]
        self.self_answers: dict[str, dict[int, dict[str, int]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        self.tie_answers: dict[str, dict[int, dict[int, dict[str, int]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(dict))
        )
        items = self.instrument.items
        for respondent, target, item_index, value in inp.answers.select(
            "respondent", "target", "item", "value"
        ).iter_rows():
            if value is None or respondent not in self.home:
                continue
            scale, item = items[item_index]
            v = value
            if item.recode is not None:
                if v not in item.recode:
                    continue
                v = item.recode[v]
            if item.reversed:
                v = scale.response_min + scale.response_max - v
            if scale.targeting == "self":
                if target is not None:
                    continue
                self.self_answers[scale.key][respondent][item.key] = v
            else:
                if target is None or target not in self.ext:
                    continue
                self.tie_answers[scale.key][respondent][target][item.key] = v

        self.unit_rows: dict[tuple[str, str, str, str, bool], Row] = {}
        self.tie_rows: dict[tuple[str, str, str, str], Row] = {}
        self.participation_rows: dict[tuple[str, bool], Row] = {}
        self.families: list[Family] = []
        self.org_rows: dict[tuple[str, str], Row] = {}  # (scale, measure) → organisation aggregate
        # respondent-level scores kept for the summary
        self.self_scores: dict[tuple[str, str], dict[int, Fraction]] = {}
        self.tie_scores: dict[tuple[str, str], dict[int, dict[int, Fraction]]] = {}

    def _subtree(self, u: int) -> set[int]:
        out = {u}
        stack = [u]
        while stack:
            x = stack.pop()
            for c in self.children.get(x, []):
                out.add(c)
                stack.append(c)
        return out

    def subtree_members(self, p: int) -> list[int]:
        return sorted(r for u in self.subtree[p] for r in self.members.get(u, []))

    # ---- unit rows -------------------------------------------------------------------------

    def add_unit_row(
        self,
        unit: int,
        scale: str,
        measure: Measure,
        perspective: str,
        rollup: bool,
        values: list[Fraction],
        rwg: Fraction | None = None,
    ) -> None:
        if not values:
            return
        row = describe(values, (self.ext[unit], ""))
        row.rwg = rwg
        self.unit_rows[(self.ext[unit], scale, measure.key, perspective, rollup)] = row

    def members_row(
        self,
        scale: Scale,
        m: Measure,
        unit: int,
        rollup: bool,
        respondents: list[int],
        scores: dict[int, Fraction],
        answers: dict[int, dict[str, int]],
    ) -> None:
        rated = [r for r in respondents if r in scores]
        if not rated:
            return
        # rwg: per item, the row's respondents who answered it
        item_values = [[answers[r][i] for r in rated if i in answers[r]] for i in m.items]
        values = [scores[r] for r in rated]
        self.add_unit_row(
            unit, scale.key, m, "members", rollup, values, rwg_j(item_values, sigma_eu(scale))
        )

    def score_self_scale(self, scale: Scale) -> None:
        answers = self.self_answers.get(scale.key, {})
        for m in measures_of(scale):
            scores: dict[int, Fraction] = {}
            for r in sorted(self.home):
                s = score_of(answers.get(r, {}), m)
                if s is not None:
                    scores[r] = s
            self.self_scores[(scale.key, m.key)] = scores

            for u in self.units:
                self.members_row(scale, m, u, False, self.members.get(u, []), scores, answers)
            for p in self.parents:
                self.members_row(scale, m, p, True, self.subtree_members(p), scores, answers)

            # organisation aggregate (family 3)
            if scores:
                self.org_rows[(scale.key, m.key)] = Row(n=len(scores), order_key=("", ""))

    def score_unit_scale(self, scale: Scale) -> None:
        answers = self.tie_answers.get(scale.key, {})
        s_eu = sigma_eu(scale)
        for m in measures_of(scale):
            # ties_by_rater[r][target] = tie score for this measure
            ties_by_rater: dict[int, dict[int, Fraction]] = {}
            for r in sorted(self.home):
                per_target: dict[int, Fraction] = {}
                for t, ans in answers.get(r, {}).items():
                    s = score_of(ans, m)
                    if s is not None:
                        per_target[t] = s
                if per_target:
                    ties_by_rater[r] = per_target
            self.tie_scores[(scale.key, m.key)] = ties_by_rater

            # ties R[a,b]: raters are direct members of a
            cells: dict[tuple[int, int], list[Fraction]] = defaultdict(list)
            for r, per_target in ties_by_rater.items():
                for t, s in per_target.items():
                    cells[(self.home[r], t)].append(s)
            for (a, b), values in cells.items():
                self.tie_rows[(self.ext[a], self.ext[b], scale.key, m.key)] = describe(
                    values, (self.ext[a], self.ext[b])
                )

            # rollup: false
            for u in self.units:
                # internal: direct members about their own unit, with rwg
                raters = [r for r in self.members.get(u, []) if u in ties_by_rater.get(r, {})]
                if raters:
                    item_values = [
                        [answers[r][u][i] for r in raters if i in answers[r][u]] for i in m.items
                    ]
                    self.add_unit_row(
                        u,
                        scale.key,
                        m,
                        "internal",
                        False,
                        [ties_by_rater[r][u] for r in raters],
                        rwg_j(item_values, s_eu),
                    )
                # incoming: raters whose home is not u, their tie score about u
                incoming_values = [
                    per_target[u]
                    for r, per_target in ties_by_rater.items()
                    if self.home[r] != u and u in per_target
                ]
                self.add_unit_row(u, scale.key, m, "incoming", False, incoming_values)
                # outgoing: per direct member, mean of tie scores about other units
                outgoing_values = []
                for r in self.members.get(u, []):
                    others = [s for t, s in ties_by_rater.get(r, {}).items() if t != u]
                    if others:
                        outgoing_values.append(mean_of(others))
                self.add_unit_row(u, scale.key, m, "outgoing", False, outgoing_values)

            # rollup: true — the subtree S(p) is one unit; one value per rater (the mean of
            # that rater's tie scores falling into the aggregate)
            internal: dict[int, list[Fraction]] = defaultdict(list)
            incoming: dict[int, list[Fraction]] = defaultdict(list)
            outgoing: dict[int, list[Fraction]] = defaultdict(list)
            for r, per_target in ties_by_rater.items():
                home_chain = self.rollup_ancestors[self.home[r]]
                # ties about units inside S(p), for every p containing the target
                into: dict[int, list[Fraction]] = defaultdict(list)
                for t, s in per_target.items():
                    for p in self.rollup_ancestors[t]:
                        into[p].append(s)
                for p, values in into.items():
                    (internal if p in home_chain else incoming)[p].append(mean_of(values))
                # ties about units outside S(p), for every p containing the rater
                for p in home_chain:
                    inside = self.subtree[p]
                    out = [s for t, s in per_target.items() if t not in inside]
                    if out:
                        outgoing[p].append(mean_of(out))
            for p in self.parents:
                self.add_unit_row(p, scale.key, m, "internal", True, internal.get(p, []))
                self.add_unit_row(p, scale.key, m, "incoming", True, incoming.get(p, []))
                self.add_unit_row(p, scale.key, m, "outgoing", True, outgoing.get(p, []))

    # ---- participation ---------------------------------------------------------------------

    def score_participation(self) -> None:
        for u in self.units:
            n = len(self.members.get(u, []))
            if n:
                self.participation_rows[(self.ext[u], False)] = self._participation(
                    u, n, self.headcount[u]
                )
        for p in self.parents:
            n = len(self.subtree_members(p))
            if not n:
                continue
            counts = [self.headcount[u] for u in self.subtree[p]]
            headcount = None if any(c is None for c in counts) else sum(c for c in counts if c)
            self.participation_rows[(self.ext[p], True)] = self._participation(p, n, headcount)

    def _participation(self, unit: int, n: int, headcount: int | None) -> Row:
        row = Row(n=n, order_key=(self.ext[unit], ""))
        row.headcount = headcount
        row.response_rate = Fraction(n, headcount) if headcount else None
        return row

    # ---- anonymity -------------------------------------------------------------------------

    def rule_one(self) -> None:
        rows: list[Row] = [
            *self.unit_rows.values(),
            *self.tie_rows.values(),
            *self.participation_rows.values(),
        ]
        for row in rows:
            if row.n < self.k:
                row.suppress(MIN_GROUP_SIZE)

    def hierarchy_part(self, rows: dict[Any, Row], key_of: Any, unit: int) -> Row | None:
        """A child's part in its parent's family: its roll-up row if it has children."""
        return rows.get(key_of(unit, bool(self.children.get(unit))))

    def build_families(self) -> None:
        unit_scales = [s for s in self.instrument.scales if s.targeting == "unit"]
        self_scales = [s for s in self.instrument.scales if s.targeting == "self"]

        # 1. incoming column: incoming(b) → ties R[a,b], a ≠ b
        column: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
        for (from_ext, to_ext, s, mk), row in sorted(self.tie_rows.items()):
            if from_ext != to_ext:
                column[(to_ext, s, mk)].append(row)
        for scale in unit_scales:
            for m in measures_of(scale):
                for b in self.units:
                    agg = self.unit_rows.get((self.ext[b], scale.key, m.key, "incoming", False))
                    if agg is not None:
                        self.families.append(Family(agg, column[(self.ext[b], scale.key, m.key)]))

        # 2 and 3 for members rows of self-targeted scales, and for participation
        def hierarchy(rows: dict[Any, Row], key_of: Any, org: Row | None) -> None:
            for p in self.parents:
                agg = rows.get(key_of(p, True))
                if agg is None:
                    continue
                parts = [rows.get(key_of(p, False))]
                parts += [self.hierarchy_part(rows, key_of, c) for c in self.children[p]]
                self.families.append(Family(agg, [x for x in parts if x is not None]))
            if org is not None:
                roots = [self.hierarchy_part(rows, key_of, r) for r in self.roots]
                self.families.append(Family(org, [x for x in roots if x is not None]))

        for scale in self_scales:
            for m in measures_of(scale):

                def key_of(u: int, rollup: bool, s: str = scale.key, mk: str = m.key) -> Any:
                    return (self.ext[u], s, mk, "members", rollup)

                hierarchy(self.unit_rows, key_of, self.org_rows.get((scale.key, m.key)))

        n_all = len(self.home)
        self.org_participation = Row(n=n_all, order_key=("", "")) if n_all else None
        hierarchy(
            self.participation_rows,
            lambda u, rollup: (self.ext[u], rollup),
            self.org_participation,
        )

    def rule_two(self) -> None:
        k = self.k
        changed = True
        while changed:
            changed = False
            for fam in self.families:
                while True:
                    held = sum(p.n for p in fam.parts if p.suppressed)
                    published = [p for p in fam.parts if not p.suppressed]
                    if fam.aggregate.suppressed:
                        # a hidden aggregate must not be rebuilt from its published parts
                        if held >= k or not published:
                            break
                    elif not 1 <= held <= k - 1:
                        break
                    if published:
                        victim = min(published, key=lambda p: (p.n, p.order_key))
                        victim.suppress(COMPLEMENTARY)
                        changed = True
                    else:
                        if fam.aggregate.suppress(COMPLEMENTARY):
                            changed = True
                        break

    def pooled_by(self, a: int, b: int) -> list[tuple[int, str, bool]]:
        """The (unit, perspective, rollup) rows that pool the tie scores of R[a, b] and are
        parts of no family: outgoing of a (a ≠ b), and per unit p with children, p's roll-up
        internal (a and b in S(p)), incoming (only b) or outgoing (only a) row."""
        out = [(a, "outgoing", False)] if a != b else []
        for p in self.parents:
            inside_a, inside_b = a in self.subtree[p], b in self.subtree[p]
            if inside_a and inside_b:
                out.append((p, "internal", True))
            elif inside_b:
                out.append((p, "incoming", True))
            elif inside_a:
                out.append((p, "outgoing", True))
        return out

    def rule_two_pooled(self) -> None:
        """After rule 2: a row that pools tie scores and is a part of no family (outgoing, roll-up
        internal / incoming / outgoing) is the aggregate of the ties it pools; suppressed
        (complementary) when the distinct raters of its suppressed ties number 1..k−1."""
        for scale in self.instrument.scales:
            if scale.targeting != "unit":
                continue
            for m in measures_of(scale):
                hidden: dict[tuple[int, str, bool], set[int]] = defaultdict(set)
                for r, per_target in self.tie_scores[(scale.key, m.key)].items():
                    a = self.home[r]
                    for b in per_target:
                        if self.tie_rows[(self.ext[a], self.ext[b], scale.key, m.key)].suppressed:
                            for key in self.pooled_by(a, b):
                                hidden[key].add(r)
                for (u, perspective, rollup), raters in hidden.items():
                    if 1 <= len(raters) <= self.k - 1:
                        row = self.unit_rows[(self.ext[u], scale.key, m.key, perspective, rollup)]
                        row.suppress(COMPLEMENTARY)

    def rule_two_nested(self) -> None:
        """After ``rule_two_pooled``: for q ⊋ p (both with children) whose roll-up internal rows
        are both published, q's × n − p's × n pools the ties R[a, b] with a and b in S(q) but
        not both in S(p); q's row is suppressed (complementary) when the distinct raters of
        those suppressed ties number 1..k−1. Each pass checks every pair against the status
        before it, then suppresses; passes repeat until nothing changes."""
        for scale in self.instrument.scales:
            if scale.targeting != "unit":
                continue
            for m in measures_of(scale):
                hidden = [
                    (r, self.home[r], b)
                    for r, per_target in self.tie_scores[(scale.key, m.key)].items()
                    for b in per_target
                    if self.tie_rows[
                        (self.ext[self.home[r]], self.ext[b], scale.key, m.key)
                    ].suppressed
                ]

                def internal(u: int, s: str = scale.key, mk: str = m.key) -> Row | None:
                    return self.unit_rows.get((self.ext[u], s, mk, "internal", True))

                while True:
                    victims = []
                    for q in self.parents:
                        for p in self.parents:
                            if p == q or p not in self.subtree[q]:
                                continue
                            row_q, row_p = internal(q), internal(p)
                            if row_q is None or row_p is None:
                                continue
                            if row_q.suppressed or row_p.suppressed:
                                continue
                            sq, sp = self.subtree[q], self.subtree[p]
                            raters = {
                                r
                                for r, a, b in hidden
                                if a in sq and b in sq and not (a in sp and b in sp)
                            }
                            if 1 <= len(raters) <= self.k - 1:
                                victims.append(row_q)
                    if not [row for row in victims if row.suppress(COMPLEMENTARY)]:
                        break

    # ---- coherence -------------------------------------------------------------------------

    def score_coherence(self) -> None:
        """Mean of three means, from rows already through both anonymity rules."""
        if not self.instrument.has_coherence_index:
            return

        def published(x: Row | None) -> bool:
            return x is not None and not x.suppressed

        def too_few(x: Row | None) -> bool:  # "missing or suppressed for min_group_size"
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
                if rc_used and published(rl) and published(ps):
                    assert rl is not None and ps is not None
                    rc_mean = mean_of([x.mean for x in rc_used if x.mean is not None])
                    assert rl.mean is not None and ps.mean is not None
                    row = Row(n=min(x.n for x in [*rc_used, rl, ps]), order_key=(ext, ""))
                    row.mean = (rc_mean + rl.mean + ps.mean) / 3
                    self.unit_rows[key] = row
                    continue
                rc_too_few = not rc_used and (too_few(internal) or too_few(incoming))
                if rc_too_few or too_few(rl) or too_few(ps):
                    reason = MIN_GROUP_SIZE
                else:
                    reason = COMPLEMENTARY
                row = Row(n=0, order_key=(ext, ""))
                row.suppress(reason)
                self.unit_rows[key] = row

    # ---- summary ---------------------------------------------------------------------------

    def alpha(self, cases: list[tuple[int, dict[str, int]]], items: list[str]) -> float | None:
        """Cronbach's α over complete cases, given as (respondent, answers) pairs."""
        j = len(items)
        complete = [c for _, c in cases if all(i in c for i in items)]
        people = {r for r, c in cases if all(i in c for i in items)}
        if j < 2 or len(complete) < 2 or len(people) < self.k:
            return None
        total = sample_variance([Fraction(sum(c[i] for i in items)) for c in complete])
        if total == 0:
            return None
        item_vars = sum(sample_variance([Fraction(c[i]) for c in complete]) for i in items)
        return float(Fraction(j, j - 1) * (1 - item_vars / total))

    def icc(self, score_by_respondent: dict[int, Fraction]) -> tuple[float | None, float | None]:
        groups: dict[int, list[Fraction]] = defaultdict(list)
        for r, s in score_by_respondent.items():
            groups[self.home[r]].append(s)
        groups = {u: v for u, v in groups.items() if len(v) >= 2}
        g = len(groups)
        if g < 2:
            return None, None
        n_total = sum(len(v) for v in groups.values())  # one score per respondent
        if n_total < self.k:
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

    # ---- summary values as aggregates (rule 2) ----------------------------------------------

    def hidden_tie_raters(self, scale: str) -> tuple[set[int], set[int]]:
        """The raters whose ``index`` tie scores fall in a suppressed ``internal`` row and in a
        suppressed ``incoming`` row (``rollup: false``) of a unit-targeted scale."""
        internal: set[int] = set()
        incoming: set[int] = set()
        for r, per in self.tie_scores[(scale, "index")].items():
            for t in per:
                own = t == self.home[r]
                perspective = "internal" if own else "incoming"
                row = self.unit_rows[(self.ext[t], scale, "index", perspective, False)]
                if row.suppressed:
                    (internal if own else incoming).add(r)
        return internal, incoming

    def tie_summary_nulls(self, scale: str) -> tuple[bool, bool, bool]:
        """(within_mean, between_mean, mean) null under rule 2: the suppressed parts hold 1..k−1
        distinct raters; the network scale's mean also when exactly one of the other two is
        null (mean and the published one give the other)."""
        internal, incoming = self.hidden_tie_raters(scale)

        def differenced(people: set[int]) -> bool:
            return 1 <= len(people) <= self.k - 1

        within, between = differenced(internal), differenced(incoming)
        mean = differenced(internal | incoming)
        if scale == self.network_scale():
            mean = mean or within != between
        return within, between, mean

    def response_rate_null(self) -> bool:
        """The response rate publishes the respondents of units with a headcount in total:
        null when the suppressed direct participation rows of those units hold 1..k−1, or when,
        against the published participation sums, it exposes 1..k−1 respondents (per group of
        suppressed direct rows under one nearest published sum, the smaller of its known and
        unknown sides; known rows under no published sum count in full)."""
        k = self.k
        hidden = [
            (u, row.n)
            for u in self.units
            if (row := self.participation_rows.get((self.ext[u], False))) is not None
            and row.suppressed
        ]
        known = {u for u in self.units if self.headcount[u] is not None}
        if 1 <= sum(n for u, n in hidden if u in known) <= k - 1:
            return True

        def published_rollup(p: int) -> bool:
            row = self.participation_rows.get((self.ext[p], True))
            return row is not None and not row.suppressed

        sides: dict[Any, list[int]] = defaultdict(lambda: [0, 0])  # group → [known, other]
        for u, n in hidden:
            chain = []
            x: int | None = u
            while x is not None:
                if self.children.get(x):
                    chain.append(x)
                x = self.parent[x]
            group: Any = next((p for p in chain if published_rollup(p)), None)
            if group is None and len(self.home) >= k:
                group = "organisation"
            sides[group][0 if u in known else 1] += n
        exposed = sum(side[0] if group is None else min(side) for group, side in sides.items())
        return 1 <= exposed <= k - 1

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"respondents": len(self.home)}
        known = [u for u in self.units if self.headcount[u] is not None]
        heads = sum(self.headcount[u] or 0 for u in known)
        if known and heads > 0 and not self.response_rate_null():
            out["response_rate"] = float(
                Fraction(sum(len(self.members.get(u, [])) for u in known), heads)
            )
        else:
            out["response_rate"] = None

        scales: dict[str, Any] = {}
        for scale in self.instrument.scales:
            items = [i.key for i in scale.items]
            if scale.targeting == "self":
                scores = self.self_scores[(scale.key, "index")]
                org = self.org_rows.get((scale.key, "index"))
                mean = None
                if len(scores) >= self.k and org is not None and not org.suppressed:
                    mean = float(mean_of(list(scores.values())))
                cases = list(self.self_answers.get(scale.key, {}).items())
                icc_scores = scores
            else:
                ties = self.tie_scores[(scale.key, "index")]
                all_ties = [s for per in ties.values() for s in per.values()]
                raters = {r for r, per in ties.items() if per}
                mean = None
                if len(raters) >= self.k and not self.tie_summary_nulls(scale.key)[2]:
                    mean = float(mean_of(all_ties))
                cases = [
                    (r, ans)
                    for r, per in self.tie_answers.get(scale.key, {}).items()
                    for ans in per.values()
                ]
                icc_scores = {
                    r: per[self.home[r]] for r, per in ties.items() if self.home[r] in per
                }
            icc1, icc2 = self.icc(icc_scores)
            scales[scale.key] = {
                "mean": mean,
                "alpha": self.alpha(cases, items),
                "icc1": icc1,
                "icc2": icc2,
            }
        out["scales"] = scales
        out["network"] = self.network()
        out["leadership_collaboration"] = self.leadership_collaboration()
        return out

    def network_scale(self) -> str | None:
        """The scale of the network statistics: relational capacity when it is asked per
        target unit, else the first scale asked per target unit."""
        targeted = [s.key for s in self.instrument.scales if s.targeting == "unit"]
        return RC if RC in targeted else next(iter(targeted), None)

    def network(self) -> dict[str, Any] | None:
        net = self.network_scale()
        if net is None:
            return None
        ties = self.tie_scores[(net, "index")]
        within = [s for r, per in ties.items() for t, s in per.items() if t == self.home[r]]
        between = [s for r, per in ties.items() for t, s in per.items() if t != self.home[r]]
        within_raters = {r for r, per in ties.items() if self.home[r] in per}
        between_raters = {r for r, per in ties.items() if any(t != self.home[r] for t in per)}
        published_external = [
            row
            for (from_ext, to_ext, s, m), row in self.tie_rows.items()
            if s == net and m == "index" and from_ext != to_ext and not row.suppressed
        ]
        strong = weak = None
        if published_external:
            strong = sum(1 for r in published_external if r.band == "strong") / len(
                published_external
            )
            weak = sum(1 for r in published_external if r.band == "weak") / len(published_external)
        gaps: list[Fraction] = []
        for (from_ext, to_ext, s, m), row in self.tie_rows.items():
            if s != net or m != "index" or from_ext >= to_ext or row.suppressed:
                continue
            other = self.tie_rows.get((to_ext, from_ext, s, m))
            if other is not None and not other.suppressed:
                assert row.mean is not None and other.mean is not None
                gaps.append(abs(row.mean - other.mean))
        linked: set[tuple[int, int]] = set()
        for r, per in ties.items():
            for t in per:
                home = self.home[r]
                if home != t:
                    linked.add((min(home, t), max(home, t)))
        n_units = len(self.units)
        within_null, between_null, _ = self.tie_summary_nulls(net)
        within_ok = len(within_raters) >= self.k and not within_null
        between_ok = len(between_raters) >= self.k and not between_null
        return {
            "within_mean": float(mean_of(within)) if within_ok else None,
            "between_mean": float(mean_of(between)) if between_ok else None,
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

    # ---- run -------------------------------------------------------------------------------

    def run(self) -> ScoringResult:
        for scale in self.instrument.scales:
            if scale.targeting == "self":
                self.score_self_scale(scale)
            else:
                self.score_unit_scale(scale)
        self.score_participation()
        self.rule_one()
        self.build_families()
        self.rule_two()
        self.rule_two_pooled()
        self.rule_two_nested()
        # bands on published index rows (coherence sets its own)
        for (_, _, measure, _, _), row in self.unit_rows.items():
            if measure == "index" and not row.suppressed:
                row.band = band_of(row.mean, self.settings)  # type: ignore[arg-type]
        for (_, _, _, measure), row in self.tie_rows.items():
            if measure == "index" and not row.suppressed:
                row.band = band_of(row.mean, self.settings)  # type: ignore[arg-type]
        self.score_coherence()
        for (_, scale, _, _, _), row in self.unit_rows.items():
            if scale == COHERENCE and not row.suppressed:
                row.band = band_of(row.mean, self.settings)  # type: ignore[arg-type]
        summary = self.summary()
        return ScoringResult(
            unit_scores=self.unit_frame(),
            tie_scores=self.tie_frame(),
            participation=self.participation_frame(),
            summary=summary,
        )

    def unit_frame(self) -> pl.DataFrame:
        records = []
        for (unit, scale, measure, perspective, rollup), row in sorted(self.unit_rows.items()):
            pub = not row.suppressed
            rwg = row.rwg if pub else None
            records.append(
                {
                    "unit": unit,
                    "scale": scale,
                    "measure": measure,
                    "perspective": perspective,
                    "rollup": rollup,
                    "n": row.n if pub else None,
                    "mean": as_float(row.mean) if pub else None,
                    "sd": row.sd if pub else None,
                    "ci_low": row.ci_low if pub else None,
                    "ci_high": row.ci_high if pub else None,
                    "rwg": as_float(rwg),
                    "band": row.band if pub else None,
                    "low_agreement": None if rwg is None else rwg < Fraction(7, 10),
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
                    "mean": as_float(row.mean) if pub else None,
                    "sd": row.sd if pub else None,
                    "ci_low": row.ci_low if pub else None,
                    "ci_high": row.ci_high if pub else None,
                    "band": row.band if pub else None,
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
                    "response_rate": as_float(row.response_rate) if pub else None,
                    "suppressed": row.suppressed,
                    "suppression_reason": row.reason,
                }
            )
        return pl.DataFrame(records, schema=UNIT_PARTICIPATION_SCHEMA, orient="row")


def reference_score(inp: ScoringInput) -> ScoringResult:
    """Score a round the slow, obvious way (see the module docstring for the choices made)."""
    return Reference(inp).run()


# --------------------------------------------------------------------------------------------
# Change since an earlier round (SCORING.md §4) — not part of ScoringResult
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


def reference_changes(earlier: ScoringInput, later: ScoringInput) -> pl.DataFrame:
    """Per unit row published in both rounds (matched by external id): the difference of means
    and the Welch t-test p-value on the respondent-level scores. Coherence rows have no
    respondent-level scores and get no p-value."""
    before, after = Reference(earlier), Reference(later)
    before.run()
    after.run()
    records = []
    for key, row in sorted(after.unit_rows.items()):
        old = before.unit_rows.get(key)
        if old is None or old.suppressed or row.suppressed:
            continue
        p_value = None
        if row.values and old.values and len(row.values) >= 2 and len(old.values) >= 2:
            res = sps.ttest_ind(
                [float(x) for x in row.values], [float(x) for x in old.values], equal_var=False
            )
            p_value = None if math.isnan(res.pvalue) else float(res.pvalue)
        unit, scale, measure, perspective, rollup = key
        records.append(
            {
                "unit": unit,
                "scale": scale,
                "measure": measure,
                "perspective": perspective,
                "rollup": rollup,
                "mean": as_float(row.mean),
                "earlier_mean": as_float(old.mean),
                "difference": as_float(row.mean - old.mean),  # type: ignore[operator]
                "p_value": p_value,
            }
        )
    return pl.DataFrame(records, schema=CHANGES_SCHEMA, orient="row")
