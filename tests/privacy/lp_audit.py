"""An independent attacker's-LP auditor for SCORING.md §5.

Written from ``shared/SCORING.md`` (§3 pooled means, §5 threat model and guarantee) and
``docs/scoring-decisions.md`` ("Scales and perspectives", "Base cells and rows") only. It does not
read or import the scoring engine (only the frame contract in ``engine/types.py``) and does not use
``tests/reference``.

What it does
============

Given one or more *publications* — pairs ``(ScoringInput, published)`` where ``published`` has
``unit_scores``, ``tie_scores`` and ``summary`` like a ``ScoringResult`` — it plays the attacker of
§5:

* **Variables.** Every counted response (answered, not "don't know", of a respondent *eligible*
  for the scale about that referent, i.e. with at least ``scale.min_answered`` answered items),
  after recoding and reversal, bounded by the scale's ``[response_min, response_max]``. Across
  publications a response is the same variable when the same respondent id gives the same item
  about the same target (external id; ``None`` for ``self`` scales) with the same scored value;
  otherwise it is a new variable (a changed answer is a new variable, the old one stays in the
  older publication's equations).
* **Equalities.** Every published row (``mean`` not null) of every publication: unit rows of every
  perspective and roll-up, tie rows, the summary's ``scales[s]["mean"]`` and
  ``network["within_mean"]`` / ``["between_mean"]``. A published float mean is turned into the
  exact integer sum ``round(mean × count)``: scored responses are integers, so the smallest step of
  a sum is 1, and the float noise of ``mean × count`` (≈ count × 1e-16) is far below ½, so the
  rounding is exact. Float noise would not by itself upset HiGHS (its 1e-7 feasibility tolerance
  dwarfs an ulp), but integer right-hand sides make the equalities of linked rows (index = Σ items,
  a tie = the internal row) agree exactly, and let the auditor check every published mean against
  the responses it should pool. The attacker is assumed to know every count (published or not) and
  who answered what (the sparsity pattern): the strongest reader.
  A published coherence row adds nothing when its inputs are published (it is their function); when
  it is published without them that is reported as an inconsistency and the row is added as the
  linear equality it is (a weighted sum of its inputs' sums).
* **Objectives.** For every group ``G`` of the family below and every cell ``X`` of every
  publication, minimise and maximise the mean of ``G``'s response variables in ``X`` (one LP pair per
  distinct objective) and report the width of that interval. Requirement (§5): width ≥ 1.0, or — when
  a single published row of at least ``k`` people containing all those variables already pins their
  mean closer using its own equation and the bounds (computed in closed form:
  ``[max(s·lo, T − r·hi), min(s·hi, T − r·lo)] / s``) — no narrower than the least wide such row.
* **Change objectives** (§5 "nor a change of answer", rule 3): when the same cell exists in two
  publications and the variables of every member of ``G`` in it differ (a member whose responses
  are unchanged adds nothing to the change of the group's sum), the difference of ``G``'s two
  means is also minimised and maximised; required width ``min(1.0, b₁ + b₂)`` with ``bᵢ`` the
  single-row baselines of the two means (the width the two rows, each on its own, leave for the
  difference).
* ``k`` is the smallest ``min_group_size`` among the publications unless given.

Cells ``X`` (per publication)
-----------------------------
Every row of the publication schema that pools at least one counted response, published or not:
``members`` rows of ``self`` scales (roll-up or not), ``internal`` / ``incoming`` / ``outgoing``
rows of ``unit`` scales (roll-up or not), every tie ``R[a,b]`` (diagonal included), each at every
measure (``index``, every subscale, every item), the summary scale means and the network
within/between means. Base cells are among them: ``(unit, item)`` is the ``members`` item row with
``rollup: false``, ``(from, to, item)`` the tie item row. Coherence rows are not cells (they are not
a pool of responses; their inputs are).

Groups ``G``
------------
Enumerating all subsets is impossible, so the family is the one along which differencing attacks
actually run — the people sets that the publication schema itself cuts out, and pairs of them:

1. every single person (respondent id with a counted response in some publication);
2. the set of all people of every cell above (any publication) that has 1..k−1 people — every
   small base cell, tie, column, roll-up, subscale or item row;
3. the counted members of every unit and of every roll-up subtree with 1..k−1 such people;
4. every union of two sets of 1–3 with at most k−1 people (pairs of people included). A union is
   evaluated only in cells where both parts have responses: in any other cell its responses are
   those of one part, already checked.

Objectives are deduplicated by their variable sets, and each LP is solved on an aggregated form:
the constraint system is split into independent components (no shared variable), and variables with
identical constraint columns and bounds form an *atom* that enters the LP as one variable per part
(inside / outside the objective) with summed bounds — exact for an LP, since a sum of box-bounded
variables takes every value between its summed bounds. Objectives with the same per-atom counts in
a component share one solve; a component with a single sum row is solved in closed form. All LPs use
``scipy.optimize.linprog(method="highs")``. Before an LP, a cheap *lower* bound of the width is
tried: every LP optimum is kept as a feasible point (its atom totals), and for a new objective each
kept point is re-optimised inside its atoms with the atoms' totals held (which keeps every published
sum); the spread over those feasible points can only be smaller than the true width, so when it
already reaches the requirement no LP is needed. Only objectives that might fail are solved exactly.
The published rows with a non-zero dual in the two LPs are reported as the rows that pin a
violation (one set of them when several would do).

:class:`Attack` exposes the attacker's model: ``Attack(pubs).mean_range(group, key, publication)``
is the interval a reader can pin a group's mean in one cell to (``plain=True`` solves the
unaggregated LP, as a cross-check).

Also reported (they make the LP meaningless if wrong, so ``assert_private`` fails on them):
``inconsistencies`` — a published row this model cannot place, a published mean or ``n`` that does not
match the responses the documents say the row pools, infeasible published sums; and, unless
disabled, ``second_moment_findings`` — a published row carrying ``sd``/``ci``/``rwg`` although one of
its base cells is not published (scoring-decisions.md, "Second moments").

Previews: a publication whose ``published.preview`` is true is perturbed (SCORING.md §5.3), so its
means are not exact sums; its rows are not used as equalities (listed in
``AuditResult.previews_skipped``) and its cells are still checked against the other publications.
Whether the perturbation itself is wide enough is outside this LP (its noise bound is not known
to the reader).

Not modelled: non-linear statistics (sd/ci/rwg beyond the rule above, α, ICC, correlations); the
participation rows and respondent counts (presence, not answers, §5.5).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import linprog
from scipy.sparse import csc_matrix
from scipy.sparse import hstack as sparse_hstack

from coherence_core.instruments import InstrumentDefinition
from coherence_scoring.engine.types import ScoringInput

__all__ = [
    "Attack",
    "AuditResult",
    "PublicationModel",
    "Response",
    "RowKey",
    "Violation",
    "assert_private",
    "audit",
    "row_responses",
]

REQUIRED_WIDTH = 1.0
#: Slack for LP round-off when comparing widths.
TOLERANCE = 1e-6
#: Feasible points kept per component for the cheap width bound.
POOL_LIMIT = 400
NETWORK_SCALE = "relational_capacity"
COHERENCE = "coherence"
RC, RL, PS = "relational_capacity", "relational_leadership", "psychological_safety"

SECOND_MOMENT_COLUMNS = ("sd", "ci_low", "ci_high", "rwg", "low_agreement")


# --------------------------------------------------------------------------------------------
# Row keys and responses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class RowKey:
    """One row of the publication schema.

    ``kind`` is ``"unit"`` (unit_scores), ``"tie"`` (tie_scores), ``"scale_mean"`` (the summary's
    ``scales[scale]["mean"]``) or ``"network"`` (``perspective`` = ``"within"`` | ``"between"``).
    """

    kind: str
    scale: str
    measure: str = "index"
    unit: str = ""
    perspective: str = ""
    rollup: bool = False
    from_unit: str = ""
    to_unit: str = ""

    @classmethod
    def unit_row(
        cls,
        unit: str,
        scale: str,
        measure: str = "index",
        perspective: str = "members",
        rollup: bool = False,
    ) -> RowKey:
        return cls("unit", scale, measure, unit=unit, perspective=perspective, rollup=rollup)

    @classmethod
    def tie(cls, from_unit: str, to_unit: str, scale: str, measure: str = "index") -> RowKey:
        return cls("tie", scale, measure, from_unit=from_unit, to_unit=to_unit)

    @classmethod
    def scale_mean(cls, scale: str) -> RowKey:
        return cls("scale_mean", scale)

    @classmethod
    def network(cls, which: str, scale: str = NETWORK_SCALE) -> RowKey:
        if which not in ("within", "between"):
            raise ValueError("network rows are 'within' or 'between'")
        return cls("network", scale, perspective=which)

    @classmethod
    def of(cls, key: RowKey | Mapping[str, Any]) -> RowKey:
        """A RowKey, or a row of ``unit_scores`` / ``tie_scores`` as a mapping."""
        if isinstance(key, RowKey):
            return key
        if "from_unit" in key:
            return cls.tie(
                str(key["from_unit"]), str(key["to_unit"]), str(key["scale"]), str(key["measure"])
            )
        return cls.unit_row(
            str(key["unit"]),
            str(key["scale"]),
            str(key.get("measure", "index")),
            str(key.get("perspective", "members")),
            bool(key.get("rollup") or False),
        )

    def __str__(self) -> str:
        if self.kind == "unit":
            roll = " rollup" if self.rollup else ""
            return f"unit[{self.unit} {self.scale}/{self.measure} {self.perspective}{roll}]"
        if self.kind == "tie":
            return f"tie[{self.from_unit}->{self.to_unit} {self.scale}/{self.measure}]"
        if self.kind == "scale_mean":
            return f"summary.scales[{self.scale}].mean"
        return f"summary.network.{self.perspective}_mean[{self.scale}]"


@dataclass(frozen=True, order=True)
class Response:
    """One counted response: scored (recoded, then reversed) value of an eligible respondent."""

    respondent: int
    scale: str
    referent: str  # the target unit (unit scales) or the respondent's home unit (self scales)
    item: str
    subscale: str | None
    home: str
    value: int
    raw: int
    targeting: str

    @property
    def variable_key(self) -> tuple[int, str, str | None, int]:
        target = self.referent if self.targeting == "unit" else None
        return (self.respondent, self.item, target, self.value)

    @property
    def base_cell(self) -> RowKey:
        if self.targeting == "unit":
            return RowKey.tie(self.home, self.referent, self.scale, self.item)
        return RowKey.unit_row(self.home, self.scale, self.item, "members", False)


def _score(scale: Any, item: Any, raw: int) -> int:
    value = int(raw)
    if item.recode is not None:
        if value not in item.recode:
            raise ValueError(f"item {item.key!r}: answer {value} is not in its recode map")
        value = int(item.recode[value])
    elif not scale.response_min <= value <= scale.response_max:
        raise ValueError(f"item {item.key!r}: answer {value} is outside the response range")
    if item.reversed:
        value = scale.response_min + scale.response_max - value
    return value


class PublicationModel:
    """Which counted responses exist in a round and which rows of the schema pool them."""

    def __init__(self, inp: ScoringInput) -> None:
        self.input = inp
        self.instrument: InstrumentDefinition = inp.instrument
        self.k = int(inp.settings.min_group_size)
        self.scales = {s.key: s for s in self.instrument.scales}
        unit_scales = [s.key for s in self.instrument.scales if s.targeting == "unit"]
        self.network_scale: str | None = (
            NETWORK_SCALE
            if NETWORK_SCALE in unit_scales
            else (unit_scales[0] if unit_scales else None)
        )

        rows = list(inp.units.iter_rows(named=True))
        external = {int(r["unit"]): str(r["external_id"]) for r in rows}
        self.units: list[str] = [external[int(r["unit"])] for r in rows]
        self.parent: dict[str, str | None] = {
            external[int(r["unit"])]: (
                external[int(r["parent"])] if r["parent"] is not None else None
            )
            for r in rows
        }
        children: dict[str, list[str]] = defaultdict(list)
        for unit, parent in self.parent.items():
            if parent is not None:
                children[parent].append(unit)
        self.subtree: dict[str, frozenset[str]] = {}
        for unit in self.units:
            seen, stack = {unit}, [unit]
            while stack:
                for child in children.get(stack.pop(), []):
                    if child not in seen:
                        seen.add(child)
                        stack.append(child)
            self.subtree[unit] = frozenset(seen)
        #: Units with child units: they get roll-up rows.
        self.rollup_units = [u for u in self.units if children.get(u)]
        self.home: dict[int, str] = {
            int(r["respondent"]): external[int(r["unit"])]
            for r in inp.respondents.iter_rows(named=True)
        }

        grouped: dict[tuple[int, str, str], dict[str, Any]] = {}
        for row in inp.answers.iter_rows(named=True):
            respondent = int(row["respondent"])
            if respondent not in self.home:
                raise ValueError(f"answer of unknown respondent {respondent}")
            scale, item = self.instrument.items[int(row["item"])]
            if scale.targeting == "self":
                referent = self.home[respondent]
            else:
                if row["target"] is None:
                    raise ValueError(f"item {item.key!r} is asked per target unit; target is null")
                referent = external[int(row["target"])]
            answers = grouped.setdefault((respondent, scale.key, referent), {})
            if item.key in answers:
                raise ValueError(f"respondent {respondent} answered {item.key!r} twice")
            answers[item.key] = row["value"]

        self.responses: list[Response] = []
        for (respondent, scale_key, referent), answers in sorted(grouped.items()):
            scale = self.scales[scale_key]
            answered = {key: v for key, v in answers.items() if v is not None}
            if len(answered) < scale.min_answered:
                continue  # not eligible: none of these responses count (SCORING.md §2-3)
            for item in scale.items:
                if item.key in answered:
                    raw = int(answered[item.key])
                    self.responses.append(
                        Response(
                            respondent=respondent,
                            scale=scale_key,
                            referent=referent,
                            item=item.key,
                            subscale=item.subscale,
                            home=self.home[respondent],
                            value=_score(scale, item, raw),
                            raw=raw,
                            targeting=scale.targeting,
                        )
                    )

        self.rows: dict[RowKey, list[int]] = defaultdict(list)
        for index, response in enumerate(self.responses):
            for key in self.row_keys_of(response):
                self.rows[key].append(index)
        self.rows = dict(sorted(self.rows.items()))

    def row_keys_of(self, r: Response) -> list[RowKey]:
        """Every schema row that pools this response (scoring-decisions.md, "Base cells and rows")."""
        measures = ["index"] + ([r.subscale] if r.subscale else []) + [r.item]
        keys: list[RowKey] = [RowKey.scale_mean(r.scale)]
        if r.targeting == "self":
            u = r.home
            for m in measures:
                keys.append(RowKey.unit_row(u, r.scale, m, "members", False))
                for p in self.rollup_units:
                    if u in self.subtree[p]:
                        keys.append(RowKey.unit_row(p, r.scale, m, "members", True))
            return keys
        a, b = r.home, r.referent
        if r.scale == self.network_scale:
            keys.append(RowKey.network("within" if a == b else "between", r.scale))
        for m in measures:
            keys.append(RowKey.tie(a, b, r.scale, m))
            if a == b:
                keys.append(RowKey.unit_row(a, r.scale, m, "internal", False))
            else:
                keys.append(RowKey.unit_row(b, r.scale, m, "incoming", False))
                keys.append(RowKey.unit_row(a, r.scale, m, "outgoing", False))
            for p in self.rollup_units:
                inside_a, inside_b = a in self.subtree[p], b in self.subtree[p]
                if inside_a and inside_b:
                    keys.append(RowKey.unit_row(p, r.scale, m, "internal", True))
                elif inside_b:
                    keys.append(RowKey.unit_row(p, r.scale, m, "incoming", True))
                elif inside_a:
                    keys.append(RowKey.unit_row(p, r.scale, m, "outgoing", True))
        return keys

    def row_responses(self, key: RowKey | Mapping[str, Any]) -> list[Response]:
        return [self.responses[i] for i in self.rows.get(RowKey.of(key), [])]

    def people(self, key: RowKey) -> set[int]:
        return {self.responses[i].respondent for i in self.rows.get(key, [])}


def row_responses(
    inp: ScoringInput | PublicationModel, key: RowKey | Mapping[str, Any]
) -> list[Response]:
    """The counted responses a row pools (after recoding, reversal and eligibility).

    ``key`` is a :class:`RowKey` or a row of ``unit_scores`` / ``tie_scores`` (e.g. from
    ``frame.iter_rows(named=True)``). An empty list means the row does not exist (no response).
    """
    model = inp if isinstance(inp, PublicationModel) else PublicationModel(inp)
    return model.row_responses(key)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    kind: str  # "mean" | "change"
    group: tuple[int, ...]  # respondent ids whose responses the objective holds
    publication: int  # index into the publications (the later one for "change")
    cell: RowKey
    low: float  # attainable range of the group's mean (or change of mean)
    high: float
    width: float
    required: float
    responses: int
    earlier_publication: int | None = None  # for "change"
    rows: tuple[tuple[int, RowKey], ...] = ()  # published rows with a non-zero dual
    baseline_row: tuple[int, RowKey] | None = None

    def __str__(self) -> str:
        what = "mean" if self.kind == "mean" else f"change since pub {self.earlier_publication}"
        text = (
            f"pub {self.publication} {self.cell}: group {list(self.group)} ({self.responses} "
            f"responses) {what} in [{self.low:.4f}, {self.high:.4f}], width {self.width:.4f} "
            f"< required {self.required:.4f}"
        )
        if self.rows:
            shown = ", ".join(f"pub {p} {k}" for p, k in self.rows[:8])
            more = f" … (+{len(self.rows) - 8})" if len(self.rows) > 8 else ""
            text += f"; pinned by {shown}{more}"
        return text


@dataclass
class AuditResult:
    k: int
    violations: list[Violation] = field(default_factory=list)
    inconsistencies: list[str] = field(default_factory=list)
    second_moment_findings: list[str] = field(default_factory=list)
    groups_checked: int = 0
    cells_checked: int = 0
    objectives_checked: int = 0
    lps_solved: int = 0
    closed_form: int = 0
    #: Objectives narrower than the required width but allowed by a single-row baseline.
    exempted: int = 0
    variables: int = 0
    constraints: int = 0
    #: Publications flagged ``preview`` (perturbed): their rows are not used as equalities.
    previews_skipped: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.violations or self.inconsistencies or self.second_moment_findings)

    def violations_for(self, group: Iterable[int]) -> list[Violation]:
        wanted = tuple(sorted(group))
        return [v for v in self.violations if v.group == wanted]

    def report(self, limit: int = 25) -> str:
        lines = [
            f"LP audit (k={self.k}): {len(self.violations)} violation(s), "
            f"{len(self.inconsistencies)} inconsistency(ies), "
            f"{len(self.second_moment_findings)} second-moment finding(s); checked "
            f"{self.groups_checked} groups, {self.cells_checked} cells, "
            f"{self.objectives_checked} objectives ({self.lps_solved} LPs, "
            f"{self.closed_form} closed-form), {self.variables} variables, "
            f"{self.constraints} published equalities"
        ]
        for title, items in (
            ("inconsistencies", self.inconsistencies),
            ("second moments", self.second_moment_findings),
            ("violations", [str(v) for v in self.violations]),
        ):
            if items:
                lines.append(f"{title}:")
                lines.extend(f"  - {item}" for item in items[:limit])
                if len(items) > limit:
                    lines.append(f"  … and {len(items) - limit} more")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Reading what was published
# --------------------------------------------------------------------------------------------


def _part(published: Any, name: str) -> Any:
    if isinstance(published, Mapping):
        return published.get(name)
    return getattr(published, name, None)


def _frame_rows(frame: Any) -> list[dict[str, Any]]:
    if frame is None:
        return []
    if isinstance(frame, pl.DataFrame):
        return list(frame.iter_rows(named=True))
    return [dict(r) for r in frame]


@dataclass
class _PublishedRow:
    key: RowKey
    mean: float
    n: int | None
    record: dict[str, Any]


def _published_rows(
    pub: int, model: PublicationModel, published: Any, issues: list[str]
) -> tuple[list[_PublishedRow], list[_PublishedRow]]:
    """(pooled rows, coherence rows) that carry a mean."""
    pooled: list[_PublishedRow] = []
    coherence: list[_PublishedRow] = []
    for source in ("unit_scores", "tie_scores"):
        for record in _frame_rows(_part(published, source)):
            if record.get("mean") is None:
                continue
            key = RowKey.of(record)
            if record.get("suppressed"):
                issues.append(f"pub {pub} {key}: suppressed but carries a mean")
            row = _PublishedRow(key, float(record["mean"]), record.get("n"), record)
            (coherence if key.scale == COHERENCE else pooled).append(row)
    summary = _part(published, "summary") or {}
    for scale, values in (summary.get("scales") or {}).items():
        if scale not in model.scales:
            continue  # e.g. a derived coherence entry: not a pool of responses
        if values and values.get("mean") is not None:
            pooled.append(_PublishedRow(RowKey.scale_mean(scale), float(values["mean"]), None, {}))
    network = summary.get("network") or {}
    if model.network_scale is not None:
        for which in ("within", "between"):
            if network.get(f"{which}_mean") is not None:
                key = RowKey.network(which, model.network_scale)
                pooled.append(_PublishedRow(key, float(network[f"{which}_mean"]), None, {}))
    return pooled, coherence


# --------------------------------------------------------------------------------------------
# The attacker's LP
# --------------------------------------------------------------------------------------------


@dataclass
class _Constraint:
    coefs: dict[int, float]
    rhs: float
    origins: list[tuple[int, RowKey]]
    people: int  # distinct people of the row (0 for non-sum rows)
    unit: bool  # a plain sum (all coefficients 1)
    lo_sum: float = 0.0
    hi_sum: float = 0.0


@dataclass
class _Component:
    constraints: list[int]
    atoms: list[int]
    matrix: csc_matrix
    rhs: np.ndarray
    size: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    closed_form: bool
    pool: list[np.ndarray] = field(default_factory=list)
    pool_matrix: np.ndarray | None = None


class _Attacker:
    def __init__(self) -> None:
        self.var_index: dict[tuple[Any, ...], int] = {}
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.owner: list[int] = []
        self.constraints: list[_Constraint] = []
        self._by_support: dict[frozenset[tuple[int, float]], int] = {}
        self.lps = 0
        self.closed = 0
        self._cache: dict[tuple[Any, ...], tuple[float, float, frozenset[int]] | None] = {}

    def variable(self, response: Response, scale: Any) -> int:
        key = (*response.variable_key, scale.response_min, scale.response_max)
        index = self.var_index.get(key)
        if index is None:
            index = len(self.lo)
            self.var_index[key] = index
            self.lo.append(float(scale.response_min))
            self.hi.append(float(scale.response_max))
            self.owner.append(response.respondent)
        return index

    def add(
        self,
        coefs: dict[int, float],
        rhs: float,
        origin: tuple[int, RowKey],
        people: int,
        unit: bool,
        issues: list[str],
    ) -> None:
        support = frozenset(coefs.items())
        existing = self._by_support.get(support)
        if existing is not None:
            other = self.constraints[existing]
            if abs(other.rhs - rhs) > TOLERANCE * max(1.0, abs(rhs)):
                issues.append(
                    f"pub {origin[0]} {origin[1]} pools the same responses as pub "
                    f"{other.origins[0][0]} {other.origins[0][1]} but publishes another sum "
                    f"({rhs} vs {other.rhs})"
                )
            other.origins.append(origin)
            return
        self._by_support[support] = len(self.constraints)
        constraint = _Constraint(dict(coefs), rhs, [origin], people, unit)
        if unit:
            constraint.lo_sum = sum(self.lo[v] for v in coefs)
            constraint.hi_sum = sum(self.hi[v] for v in coefs)
        self.constraints.append(constraint)

    # -- structure -------------------------------------------------------------------------

    def build(self) -> None:
        n = len(self.lo)
        parent = list(range(n))

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        self.var_constraints: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        for cid, constraint in enumerate(self.constraints):
            variables = list(constraint.coefs)
            for v in variables:
                self.var_constraints[v].append((cid, constraint.coefs[v]))
            root = find(variables[0])
            for v in variables[1:]:
                other = find(v)
                if other != root:
                    parent[other] = root
        #: Published plain-sum rows of at least k people containing a variable (for baselines).
        self.var_rows: list[list[int]] = [[] for _ in range(n)]

        signature_atom: dict[tuple[Any, ...], int] = {}
        self.atom_of = [-1] * n
        atom_members: list[list[int]] = []
        for v in range(n):
            if not self.var_constraints[v]:
                continue
            sig = (find(v), tuple(self.var_constraints[v]), self.lo[v], self.hi[v])
            atom = signature_atom.get(sig)
            if atom is None:
                atom = len(atom_members)
                signature_atom[sig] = atom
                atom_members.append([])
            atom_members[atom].append(v)
            self.atom_of[v] = atom

        by_root: dict[int, list[int]] = defaultdict(list)
        for atom, members in enumerate(atom_members):
            by_root[find(members[0])].append(atom)
        self.component_of_atom = [0] * len(atom_members)
        self.components: list[_Component] = []
        for atoms in by_root.values():
            cids = sorted(
                {cid for a in atoms for cid, _ in self.var_constraints[atom_members[a][0]]}
            )
            row_of = {cid: i for i, cid in enumerate(cids)}
            col_of = {a: j for j, a in enumerate(atoms)}
            data, rows, cols = [], [], []
            for a in atoms:
                for cid, coef in self.var_constraints[atom_members[a][0]]:
                    data.append(coef)
                    rows.append(row_of[cid])
                    cols.append(col_of[a])
            matrix = csc_matrix((data, (rows, cols)), shape=(len(cids), len(atoms)))
            comp = _Component(
                constraints=cids,
                atoms=atoms,
                matrix=matrix,
                rhs=np.array([self.constraints[c].rhs for c in cids]),
                size=np.array([len(atom_members[a]) for a in atoms], dtype=float),
                lo=np.array([self.lo[atom_members[a][0]] for a in atoms]),
                hi=np.array([self.hi[atom_members[a][0]] for a in atoms]),
                closed_form=len(cids) == 1 and self.constraints[cids[0]].unit,
            )
            index = len(self.components)
            for a in atoms:
                self.component_of_atom[a] = index
            self.components.append(comp)
        self.col_of_atom = {a: j for comp in self.components for j, a in enumerate(comp.atoms)}

    def infeasible_components(self) -> list[_Component]:
        """Components whose published sums no responses within the bounds can produce; each
        feasible component's first feasible point seeds the pool of the cheap bound."""
        bad = []
        for comp in self.components:
            if comp.closed_form:
                if (
                    not (comp.size * comp.lo).sum() - TOLERANCE
                    <= comp.rhs[0]
                    <= (comp.size * comp.hi).sum() + TOLERANCE
                ):
                    bad.append(comp)
                continue
            bounds = [
                (float(n * lo), float(n * hi))
                for n, lo, hi in zip(comp.size, comp.lo, comp.hi, strict=True)
            ]
            self.lps += 1
            res = linprog(
                np.zeros(len(comp.atoms)),
                A_eq=comp.matrix,
                b_eq=comp.rhs,
                bounds=bounds,
                method="highs",
            )
            if res.status == 2:
                bad.append(comp)
            elif res.status == 0:
                comp.pool.append(np.array(res.x, dtype=float))
        return bad

    def index_baseline_rows(self, k: int) -> None:
        for cid, constraint in enumerate(self.constraints):
            if constraint.unit and constraint.people >= k:
                for v in constraint.coefs:
                    self.var_rows[v].append(cid)

    # -- solving ---------------------------------------------------------------------------

    def _split(
        self, coefs: Mapping[int, float]
    ) -> tuple[float, float, dict[int, dict[tuple[int, float], int]]]:
        """The bounds-only part (variables in no published row) and per-component atom counts."""
        low = high = 0.0
        parts: dict[int, dict[tuple[int, float], int]] = defaultdict(lambda: defaultdict(int))
        for v, c in coefs.items():
            if c == 0.0:
                continue
            atom = self.atom_of[v]
            if atom < 0:  # in no published row: only its bounds
                low += min(c * self.lo[v], c * self.hi[v])
                high += max(c * self.lo[v], c * self.hi[v])
                continue
            parts[self.component_of_atom[atom]][(atom, c)] += 1
        return low, high, parts

    @staticmethod
    def _key(comp_index: int, counts: Mapping[tuple[int, float], int]) -> tuple[Any, ...]:
        return (comp_index, tuple(sorted(counts.items())))

    def width_lower_bound(self, coefs: Mapping[int, float]) -> float:
        """A cheap lower bound of max − min: exact where already solved or closed-form, else
        the spread over feasible points met so far (earlier LP optima), each re-optimised
        within its atoms with the atoms' totals held (which keeps every published sum)."""
        low, high, parts = self._split(coefs)
        width = high - low
        for comp_index, counts in parts.items():
            comp = self.components[comp_index]
            key = self._key(comp_index, counts)
            if key not in self._cache and comp.closed_form and len({c for _, c in counts}) == 1:
                self._cache[key] = self._solve(comp, counts)
            if key in self._cache:
                solved = self._cache[key]
                if solved is None:
                    return math.inf  # infeasible; the exact pass reports it
                width += solved[1] - solved[0]
                continue
            width += self._pool_spread(comp, counts)
        return width

    def _pool_spread(self, comp: _Component, counts: Mapping[tuple[int, float], int]) -> float:
        if not comp.pool:
            return 0.0
        atoms = [atom for atom, _ in counts]
        if len(set(atoms)) != len(atoms):
            return 0.0  # one atom with two coefficients: leave it to the LP
        if comp.pool_matrix is None or len(comp.pool_matrix) != len(comp.pool):
            comp.pool_matrix = np.vstack(comp.pool)
        cols = np.array([self.col_of_atom[atom] for atom in atoms])
        a = np.array(list(counts.values()), dtype=float)
        c = np.array([coef for _, coef in counts], dtype=float)
        size, lo, hi = comp.size[cols], comp.lo[cols], comp.hi[cols]
        totals = comp.pool_matrix[:, cols]
        s_min = np.maximum(a * lo, totals - (size - a) * hi)
        s_max = np.minimum(a * hi, totals - (size - a) * lo)
        v_min = np.where(c > 0, c * s_min, c * s_max).sum(axis=1)
        v_max = np.where(c > 0, c * s_max, c * s_min).sum(axis=1)
        return float(v_max.max() - v_min.min())

    def extremes(self, coefs: Mapping[int, float]) -> tuple[float, float, frozenset[int]] | None:
        """min and max of Σ coef·x over the attacker's feasible set, and the binding rows."""
        low, high, parts = self._split(coefs)
        involved: set[int] = set()
        for comp_index, counts in parts.items():
            key = self._key(comp_index, counts)
            if key not in self._cache:
                self._cache[key] = self._solve(self.components[comp_index], counts)
            solved = self._cache[key]
            if solved is None:
                return None
            low += solved[0]
            high += solved[1]
            involved |= solved[2]
        return low, high, frozenset(involved)

    def _solve(
        self, comp: _Component, counts: Mapping[tuple[int, float], int]
    ) -> tuple[float, float, frozenset[int]] | None:
        coefs = {c for (_, c) in counts}
        if comp.closed_form and len(coefs) == 1:
            self.closed += 1
            (c,) = coefs
            rhs = float(comp.rhs[0])
            in_lo = in_hi = 0.0
            used = np.zeros(len(comp.atoms))
            for (atom, _), count in counts.items():
                j = self.col_of_atom[atom]
                used[j] += count
                in_lo += count * comp.lo[j]
                in_hi += count * comp.hi[j]
            rest_lo = float(((comp.size - used) * comp.lo).sum())
            rest_hi = float(((comp.size - used) * comp.hi).sum())
            s_min, s_max = max(in_lo, rhs - rest_hi), min(in_hi, rhs - rest_lo)
            if s_min > s_max + TOLERANCE:
                return None
            binding = s_min > in_lo + TOLERANCE or s_max < in_hi - TOLERANCE
            involved = frozenset(comp.constraints) if binding else frozenset()
            lo_val, hi_val = sorted((c * s_min, c * s_max))
            return lo_val, hi_val, involved

        used = np.zeros(len(comp.atoms))
        extra_cols: list[int] = []
        extra_obj: list[float] = []
        extra_bounds: list[tuple[float, float]] = []
        for (atom, c), count in sorted(counts.items()):
            j = self.col_of_atom[atom]
            used[j] += count
            extra_cols.append(j)
            extra_obj.append(c)
            extra_bounds.append((count * comp.lo[j], count * comp.hi[j]))
        rest = comp.size - used
        bounds = [
            (float(r * lo), float(r * hi)) for r, lo, hi in zip(rest, comp.lo, comp.hi, strict=True)
        ]
        bounds += extra_bounds
        matrix = sparse_hstack([comp.matrix, comp.matrix[:, extra_cols]], format="csc")
        objective = np.concatenate([np.zeros(len(comp.atoms)), np.array(extra_obj)])
        results = []
        for sign in (1.0, -1.0):
            self.lps += 1
            res = linprog(
                sign * objective, A_eq=matrix, b_eq=comp.rhs, bounds=bounds, method="highs"
            )
            if res.status == 2:
                return None
            if res.status != 0:
                raise RuntimeError(f"linprog failed: {res.message}")
            results.append(res)
            # Keep the optimum as a feasible point (atom totals) for later cheap bounds.
            if len(comp.pool) < POOL_LIMIT:
                totals = np.array(res.x[: len(comp.atoms)], dtype=float)
                np.add.at(totals, extra_cols, res.x[len(comp.atoms) :])
                comp.pool.append(totals)
        involved: set[int] = set()
        for res in results:
            marginals = getattr(getattr(res, "eqlin", None), "marginals", None)
            if marginals is not None:
                involved |= {comp.constraints[i] for i, m in enumerate(marginals) if abs(m) > 1e-9}
        return float(results[0].fun), float(-results[1].fun), frozenset(involved)

    def baseline(self, variables: Sequence[int], k: int) -> tuple[float, int | None]:
        """The narrowest width a single published row of ≥ k people leaves for the mean of
        ``variables`` by its own equation and the bounds (inf when no row contains them all)."""
        if not variables:
            return math.inf, None
        candidates = min((self.var_rows[v] for v in variables), key=len)
        wanted = set(variables)
        best, best_row = math.inf, None
        s = len(variables)
        in_lo = sum(self.lo[v] for v in variables)
        in_hi = sum(self.hi[v] for v in variables)
        for cid in candidates:
            constraint = self.constraints[cid]
            if not wanted.issubset(constraint.coefs.keys()):
                continue
            rest_lo, rest_hi = constraint.lo_sum - in_lo, constraint.hi_sum - in_hi
            s_min = max(in_lo, constraint.rhs - rest_hi)
            s_max = min(in_hi, constraint.rhs - rest_lo)
            width = max(0.0, s_max - s_min) / s
            if width < best:
                best, best_row = width, cid
        return best, best_row


# --------------------------------------------------------------------------------------------
# The audit
# --------------------------------------------------------------------------------------------


def _publications(publications: Any) -> list[tuple[ScoringInput, Any]]:
    if (
        isinstance(publications, tuple)
        and len(publications) == 2
        and hasattr(publications[0], "answers")
        and hasattr(publications[0], "instrument")
    ):
        return [publications]
    return list(publications)


class Attack:
    """The attacker's knowledge of a set of publications: variables, published equalities and
    the aggregated LP over them. ``audit`` runs the §5 check with it; later tests can ask it
    directly what a reader can learn about one group in one cell (``mean_range``)."""

    def __init__(
        self,
        publications: Sequence[tuple[ScoringInput, Any]] | tuple[ScoringInput, Any],
        *,
        k: int | None = None,
        check_second_moments: bool = True,
    ) -> None:
        pubs = _publications(publications)
        self.models = [PublicationModel(inp) for inp, _ in pubs]
        self.k = k if k is not None else min(m.k for m in self.models)
        self.result = AuditResult(k=self.k)
        self.attacker = attacker = _Attacker()
        result = self.result

        # Variables, per publication: response index -> variable.
        self.var_of: list[list[int]] = [
            [attacker.variable(r, model.scales[r.scale]) for r in model.responses]
            for model in self.models
        ]

        # Published equalities.
        self.published_keys: list[set[RowKey]] = []
        for pub, (model, (_, published)) in enumerate(zip(self.models, pubs, strict=True)):
            issues = result.inconsistencies
            pooled, coherence = _published_rows(pub, model, published, issues)
            self.published_keys.append({row.key for row in pooled})
            if check_second_moments:
                _check_second_moments(pub, model, published, self.published_keys[pub], result)
            if _part(published, "preview"):
                # A perturbed preview (SCORING.md §5.3) publishes no exact sums: no equalities.
                result.previews_skipped.append(pub)
                continue
            means: dict[RowKey, float] = {row.key: row.mean for row in pooled}
            for row in pooled:
                indices = model.rows.get(row.key)
                if not indices:
                    issues.append(f"pub {pub} {row.key}: published, but pools no counted response")
                    continue
                count = len(indices)
                people = len({model.responses[i].respondent for i in indices})
                scaled = row.mean * count
                total = round(scaled)  # exact: the sum is an integer, float noise ≪ 0.5
                true_total = sum(model.responses[i].value for i in indices)
                if abs(scaled - total) > 1e-6 * max(1, count):
                    issues.append(
                        f"pub {pub} {row.key}: mean {row.mean!r} × {count} responses is not an "
                        "integer sum"
                    )
                if total != true_total:
                    issues.append(
                        f"pub {pub} {row.key}: published mean {row.mean!r} but its {count} "
                        f"counted responses sum to {true_total} (mean {true_total / count!r})"
                    )
                if row.n is not None and int(row.n) != people:
                    issues.append(f"pub {pub} {row.key}: published n={row.n} but {people} people")
                coefs = {self.var_of[pub][i]: 1.0 for i in indices}
                attacker.add(coefs, float(total), (pub, row.key), people, True, issues)
            for row in coherence:
                _coherence_constraint(pub, model, row, means, self.var_of[pub], attacker, issues)

        attacker.build()
        attacker.index_baseline_rows(self.k)
        for comp in attacker.infeasible_components():
            rows = _origins(attacker, comp.constraints)
            shown = ", ".join(f"pub {p} {key}" for p, key in rows[:6])
            more = f" … (+{len(rows) - 6})" if len(rows) > 6 else ""
            result.inconsistencies.append(
                f"published sums no answers within the response range can produce: {shown}{more}"
            )
        result.variables = len(attacker.lo)
        result.constraints = len(attacker.constraints)

    def group_variables(
        self, group: Iterable[int], key: RowKey | Mapping[str, Any], publication: int = 0
    ) -> list[int]:
        model = self.models[publication]
        wanted = set(group)
        return [
            self.var_of[publication][i]
            for i in model.rows.get(RowKey.of(key), [])
            if model.responses[i].respondent in wanted
        ]

    def mean_range(
        self,
        group: Iterable[int],
        key: RowKey | Mapping[str, Any],
        publication: int = 0,
        *,
        plain: bool = False,
    ) -> tuple[float, float] | None:
        """The interval the attacker can pin the group's mean in the cell to (None when the
        group has no response there or the published sums are infeasible). ``plain`` solves
        the unaggregated LP over every variable instead (slow; a cross-check)."""
        variables = self.group_variables(group, key, publication)
        if not variables:
            return None
        s = len(variables)
        if not plain:
            solved = self.attacker.extremes(dict.fromkeys(variables, 1.0))
            return None if solved is None else (solved[0] / s, solved[1] / s)
        att = self.attacker
        n = len(att.lo)
        data, rows, cols = [], [], []
        for cid, constraint in enumerate(att.constraints):
            for v, coef in constraint.coefs.items():
                data.append(coef)
                rows.append(cid)
                cols.append(v)
        objective = np.zeros(n)
        objective[variables] = 1.0
        if not att.constraints:
            return (
                sum(att.lo[v] for v in variables) / s,
                sum(att.hi[v] for v in variables) / s,
            )
        matrix = csc_matrix((data, (rows, cols)), shape=(len(att.constraints), n))
        rhs = np.array([c.rhs for c in att.constraints])
        bounds = list(zip(att.lo, att.hi, strict=True))
        ends = []
        for sign in (1.0, -1.0):
            res = linprog(sign * objective, A_eq=matrix, b_eq=rhs, bounds=bounds, method="highs")
            if res.status != 0:
                return None
            ends.append(sign * res.fun / s)
        return ends[0], ends[1]


def audit(
    publications: Sequence[tuple[ScoringInput, Any]] | tuple[ScoringInput, Any],
    *,
    k: int | None = None,
    required_width: float = REQUIRED_WIDTH,
    check_changes: bool = True,
    check_second_moments: bool = True,
) -> AuditResult:
    """Run the attacker's LP over every publication together (SCORING.md §5).

    ``k`` defaults to the smallest ``min_group_size`` among the publications (the weakest
    threshold every version must at least honour).
    """
    attack = Attack(publications, k=k, check_second_moments=check_second_moments)
    models, var_of, attacker, result = attack.models, attack.var_of, attack.attacker, attack.result
    k = attack.k

    # Cells: (publication, key, person -> variables).
    cells: list[tuple[int, RowKey, dict[int, tuple[int, ...]]]] = []
    for pub, model in enumerate(models):
        for key, indices in model.rows.items():
            by_person: dict[int, list[int]] = defaultdict(list)
            for i in indices:
                by_person[model.responses[i].respondent].append(var_of[pub][i])
            cells.append((pub, key, {p: tuple(sorted(vs)) for p, vs in by_person.items()}))
    result.cells_checked = len(cells)
    person_cells: dict[int, set[int]] = defaultdict(set)
    for c, (_, _, by_person) in enumerate(cells):
        for p in by_person:
            person_cells[p].add(c)

    # Groups.
    base: set[frozenset[int]] = {frozenset([p]) for p in person_cells}
    for _, _, by_person in cells:
        if 1 <= len(by_person) <= k - 1:
            base.add(frozenset(by_person))
    for model in models:
        counted: dict[str, set[int]] = defaultdict(set)
        for r in model.responses:
            counted[r.home].add(r.respondent)
        for unit in model.units:
            members = set().union(*(counted.get(u, set()) for u in model.subtree[unit]))
            for people in (counted.get(unit, set()), members):
                if 1 <= len(people) <= k - 1:
                    base.add(frozenset(people))
    base_list = sorted(base, key=lambda g: (len(g), sorted(g)))
    base_cells = [set().union(*(person_cells[p] for p in g)) for g in base_list]

    # Objectives: variable tuple -> witnesses {(group, cell index)}.
    objectives: dict[tuple[int, ...], set[tuple[tuple[int, ...], int]]] = defaultdict(set)

    def visit(group: frozenset[int], cell_ids: Iterable[int]) -> None:
        for c in cell_ids:
            by_person = cells[c][2]
            members = sorted(p for p in group if p in by_person)
            if not members:
                continue
            variables = tuple(sorted(v for p in members for v in by_person[p]))
            objectives[variables].add((tuple(members), c))

    groups: set[frozenset[int]] = set(base_list)
    for group, cell_ids in zip(base_list, base_cells, strict=True):
        visit(group, cell_ids)
    for i, first in enumerate(base_list):
        for j in range(i + 1, len(base_list)):
            second = base_list[j]
            union = first | second
            if len(union) > k - 1 or union in groups:  # base sets are in groups already
                continue
            shared = base_cells[i] & base_cells[j]
            groups.add(union)
            visit(union, shared)
    result.groups_checked = len(groups)

    _check_means(objectives, cells, attacker, k, required_width, result)
    if check_changes and len(models) > 1:
        _check_changes(objectives, cells, attacker, k, required_width, result)

    result.objectives_checked = len(objectives) + result.objectives_checked
    result.lps_solved = attacker.lps
    result.closed_form = attacker.closed
    result.violations.sort(
        key=lambda v: (v.publication, v.cell, v.group, v.kind, v.earlier_publication or -1)
    )
    return result


def _origins(attacker: _Attacker, cids: Iterable[int]) -> tuple[tuple[int, RowKey], ...]:
    return tuple(sorted({o for cid in cids for o in attacker.constraints[cid].origins}))


def _check_means(
    objectives: Mapping[tuple[int, ...], set[tuple[tuple[int, ...], int]]],
    cells: list[tuple[int, RowKey, dict[int, tuple[int, ...]]]],
    attacker: _Attacker,
    k: int,
    required_width: float,
    result: AuditResult,
) -> None:
    infeasible_reported = False
    for variables, witnesses in sorted(objectives.items()):
        s = len(variables)
        coefs = dict.fromkeys(variables, 1.0)
        if attacker.width_lower_bound(coefs) / s >= required_width - TOLERANCE:
            continue
        solved = attacker.extremes(coefs)
        if solved is None:
            if not infeasible_reported:
                result.inconsistencies.append(
                    "the published sums are infeasible together with the response bounds"
                )
                infeasible_reported = True
            continue
        low, high, involved = solved
        width = (high - low) / s
        if width >= required_width - TOLERANCE:
            continue
        base_width, base_row = attacker.baseline(variables, k)
        required = min(required_width, base_width)
        if width >= required - TOLERANCE:
            result.exempted += 1
            continue
        rows = _origins(attacker, involved)
        baseline_row = attacker.constraints[base_row].origins[0] if base_row is not None else None
        for group, c in sorted(witnesses):
            pub, key, _ = cells[c]
            result.violations.append(
                Violation(
                    kind="mean",
                    group=group,
                    publication=pub,
                    cell=key,
                    low=low / s,
                    high=high / s,
                    width=width,
                    required=required,
                    responses=s,
                    rows=rows,
                    baseline_row=baseline_row,
                )
            )


def _check_changes(
    objectives: Mapping[tuple[int, ...], set[tuple[tuple[int, ...], int]]],
    cells: list[tuple[int, RowKey, dict[int, tuple[int, ...]]]],
    attacker: _Attacker,
    k: int,
    required_width: float,
    result: AuditResult,
) -> None:
    """The change of a group's mean in one cell between two publications."""
    by_group_key: dict[tuple[tuple[int, ...], RowKey], dict[int, tuple[int, ...]]] = defaultdict(
        dict
    )
    for variables, witnesses in objectives.items():
        for group, c in witnesses:
            pub, key, _ = cells[c]
            by_group_key[(group, key)][pub] = variables
    person_vars: dict[tuple[int, RowKey, int], tuple[int, ...]] = {}
    for pub, key, by_person in cells:
        for person, variables in by_person.items():
            person_vars[(person, key, pub)] = variables

    def all_changed(group: tuple[int, ...], key: RowKey, earlier: int, later: int) -> bool:
        # A member whose responses are the same in both versions adds nothing to the change
        # of the group's sum; such groups are covered by the group without that member.
        return all(
            person_vars.get((p, key, earlier)) != person_vars.get((p, key, later)) for p in group
        )

    pairs: dict[
        tuple[tuple[int, ...], tuple[int, ...]], list[tuple[tuple[int, ...], RowKey, int, int]]
    ]
    pairs = defaultdict(list)
    for (group, key), versions in by_group_key.items():
        pubs = sorted(versions)
        for i, earlier in enumerate(pubs):
            for later in pubs[i + 1 :]:
                if versions[earlier] != versions[later] and all_changed(group, key, earlier, later):
                    pairs[(versions[earlier], versions[later])].append((group, key, earlier, later))
    for (before, after), witnesses in sorted(pairs.items()):
        coefs: dict[int, float] = defaultdict(float)
        for v in after:
            coefs[v] += 1.0 / len(after)
        for v in before:
            coefs[v] -= 1.0 / len(before)
        result.objectives_checked += 1
        if attacker.width_lower_bound(coefs) >= required_width - TOLERANCE:
            continue
        solved = attacker.extremes(coefs)
        if solved is None:
            continue  # reported by the mean check
        low, high, involved = solved
        width = high - low
        if width >= required_width - TOLERANCE:
            continue
        required = min(
            required_width, attacker.baseline(before, k)[0] + attacker.baseline(after, k)[0]
        )
        if width >= required - TOLERANCE:
            result.exempted += 1
            continue
        rows = _origins(attacker, involved)
        for group, key, earlier, later in sorted(witnesses):
            result.violations.append(
                Violation(
                    kind="change",
                    group=group,
                    publication=later,
                    earlier_publication=earlier,
                    cell=key,
                    low=low,
                    high=high,
                    width=width,
                    required=required,
                    responses=len(after),
                    rows=rows,
                )
            )


def _coherence_constraint(
    pub: int,
    model: PublicationModel,
    row: _PublishedRow,
    means: Mapping[RowKey, float],
    var_of: Sequence[int],
    attacker: _Attacker,
    issues: list[str],
) -> None:
    """A published coherence row is a function of its published inputs; published without
    them it is a linear equality over their responses, and an inconsistency."""
    unit, rollup = row.key.unit, row.key.rollup
    internal = RowKey.unit_row(unit, RC, "index", "internal", rollup)
    incoming = RowKey.unit_row(unit, RC, "index", "incoming", rollup)
    leadership = RowKey.unit_row(unit, RL, "index", "members", rollup)
    safety = RowKey.unit_row(unit, PS, "index", "members", rollup)
    capacity = [means[key] for key in (internal, incoming) if key in means]
    if capacity and leadership in means and safety in means:
        expected = (sum(capacity) / len(capacity) + means[leadership] + means[safety]) / 3
        if abs(expected - row.mean) > 1e-9:
            issues.append(
                f"pub {pub} {row.key}: coherence {row.mean!r} is not the mean of its published "
                f"inputs ({expected!r})"
            )
        return
    issues.append(f"pub {pub} {row.key}: coherence published without all its inputs published")
    existing = [key for key in (internal, incoming) if model.rows.get(key)]
    if not existing or not model.rows.get(leadership) or not model.rows.get(safety):
        return
    coefs: dict[int, float] = defaultdict(float)
    for key, weight in [(key, 1.0 / len(existing)) for key in existing] + [
        (leadership, 1.0),
        (safety, 1.0),
    ]:
        indices = model.rows[key]
        for i in indices:
            coefs[var_of[i]] += weight / len(indices)
    attacker.add(dict(coefs), 3.0 * row.mean, (pub, row.key), 0, False, issues)


def _check_second_moments(
    pub: int,
    model: PublicationModel,
    published: Any,
    published_keys: set[RowKey],
    result: AuditResult,
) -> None:
    for source in ("unit_scores", "tie_scores"):
        for record in _frame_rows(_part(published, source)):
            if record.get("mean") is None or record.get("scale") == COHERENCE:
                continue
            carried = [c for c in SECOND_MOMENT_COLUMNS if record.get(c) is not None]
            if not carried:
                continue
            key = RowKey.of(record)
            cells = {model.responses[i].base_cell for i in model.rows.get(key, [])}
            hidden = sorted(cells - published_keys)
            if hidden:
                result.second_moment_findings.append(
                    f"pub {pub} {key}: publishes {', '.join(carried)} although base cell(s) "
                    f"{', '.join(str(h) for h in hidden[:4])}{' …' if len(hidden) > 4 else ''} "
                    f"are not published"
                )


def assert_private(
    publications: Sequence[tuple[ScoringInput, Any]] | tuple[ScoringInput, Any],
    **options: Any,
) -> AuditResult:
    """Raise AssertionError with a readable report unless the publications satisfy §5."""
    result = audit(publications, **options)
    if not result.ok:
        raise AssertionError(result.report())
    return result
