"""A deterministic synthetic organisation: unit tree, respondents and answers.

The answers come from latent traits so that the published magnitudes of relational coordination
and psychological safety research come out: unit means between about 3.0 and 4.5, within-unit
standard deviations of 0.5–0.7, ICC(1) of 0.05–0.20, internal ties rated above external ones, and
a positive unit-level correlation between relational leadership and how other units rate the unit
(incoming relational capacity).

Everything is vectorised with numpy: 50,000 respondents with about 120 answers each take a few
seconds. The same arguments give the same organisation, bit for bit.

The model, in "1..5 units" (mapped linearly onto each scale's response range):

* unit traits (standard normal): leadership ``L``; safety ``0.6 L + 0.8 z``; capacity — how others
  experience working with the unit — ``0.7 L + 0.71 z``; generosity of the unit's raters ``z``;
  internal cohesion ``0.5 L + 0.87 z``; one further trait per other self-targeted scale.
* a self-targeted scale item: ``μ + 0.24·trait(unit) + 0.5·person + item offset + 0.7·ε``.
* a unit-targeted (relational capacity) item about target ``t`` from a rater in unit ``a``:
  ``3.45 + 0.4·[t = a] + 0.2·capacity(t) + 0.1·generosity(a) + 0.15·cohesion(a)·[t = a]
  + 0.15·dyad(a, t) + 0.5·person + 0.3·ν(tie) + item offset + 0.7·ε``.
* values are rounded and clipped to the response range, then turned into raw answers (reversed
  items are stored reversed; recoded items take a raw answer whose recoded value is the nearest).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from coherence_core.instruments import InstrumentDefinition, Scale, builtin_instrument
from coherence_core.synthetic.tree import build_tree, neighbourhood, unit_names, unit_sizes

#: ``answer_value`` of a "don't know" answer (JSON ``null``).
NULL_VALUE = int(np.iinfo(np.int16).min)
#: ``answer_target`` of an item asked once (``targeting: "self"``).
NO_TARGET = -1

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]

# model constants (1..5 units)
_SELF_MEANS = {"relational_leadership": 3.55, "psychological_safety": 3.85}
_SELF_MEAN_DEFAULT = 3.7
_UNIT_EFFECT = 0.22
_PERSON_SD = 0.58
_ITEM_NOISE_SD = 0.7
_ITEM_OFFSET_SD = 0.15
_EXTERNAL_MEAN = 3.55
_INTERNAL_BONUS = 0.4
_CAPACITY_EFFECT = 0.17
_GENEROSITY_EFFECT = 0.07
_COHESION_EFFECT = 0.1
_DYAD_SD = 0.1
_TIE_SD = 0.3
_SPARSE_TIE_SHARE = 0.05
_SPARSE_ABSENT = 0.75
_SPARSE_TIE_ABSENT = 0.6


@dataclass(frozen=True)
class SyntheticUnit:
    external_id: str
    name: str
    parent_external_id: str | None
    headcount: int | None
    level: int  # 0 = directorate, 1 = department, 2 = section


@dataclass(frozen=True, eq=False)
class SyntheticOrg:
    """A generated organisation, stored column-wise.

    Respondent ``i`` (0-based) is ``respondent_id(i)``; its home unit is ``respondent_unit[i]``
    (an index into ``units``). Submissions ``0..N-1`` are the originals of respondents ``0..N-1``;
    submissions from ``N`` on are resubmissions, which replace the respondent's original. Answers
    are sorted by submission; ``answer_target`` is ``NO_TARGET`` for items asked once and
    ``answer_value`` is ``NULL_VALUE`` for "don't know". Items are indices into
    ``instrument.items``; values are raw answers (before recoding and reversal).
    """

    instrument: InstrumentDefinition
    seed: int
    units: list[SyntheticUnit]
    unit_parent: IntArray  # parent unit index, -1 for a root
    respondent_unit: IntArray
    submission_respondent: IntArray
    answer_submission: IntArray
    answer_target: IntArray
    answer_item: npt.NDArray[np.int16]
    answer_value: npt.NDArray[np.int16]
    traits: dict[str, FloatArray] = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def n_respondents(self) -> int:
        return len(self.respondent_unit)

    @property
    def n_submissions(self) -> int:
        return len(self.submission_respondent)

    @property
    def n_resubmissions(self) -> int:
        return self.n_submissions - self.n_respondents

    def respondent_id(self, i: int) -> str:
        return f"hr-{i + 1:06d}"

    def latest_submission(self) -> IntArray:
        """Per respondent, the submission that counts (the last one)."""
        latest = np.arange(self.n_respondents, dtype=np.int32)
        latest[self.submission_respondent[self.n_respondents :]] = np.arange(
            self.n_respondents, self.n_submissions, dtype=np.int32
        )
        return latest


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


def _hash_uniform(keys: npt.NDArray[np.int64], salt: int) -> FloatArray:
    """A stable uniform(0, 1) per key (splitmix64), for effects tied to a pair of units."""
    z = keys.astype(np.uint64) + np.uint64((salt * 0x9E3779B97F4A7C15) % 2**64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def _to_raw(
    scale: Scale, item_index: int, scored: npt.NDArray[np.int64], rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Scored values (best = high) → raw answers: undo reversal, then pick a recode preimage."""
    item = scale.items[item_index]
    lo, hi = scale.response_min, scale.response_max
    pre = lo + hi - scored if item.reversed else scored
    if item.recode is None:
        return pre
    raws = np.array(sorted(item.recode), dtype=np.int64)
    mapped = np.array([item.recode[int(r)] for r in raws], dtype=np.int64)
    table = np.zeros((hi - lo + 1, len(raws)), dtype=np.int64)
    counts = np.zeros(hi - lo + 1, dtype=np.int64)
    for v in range(lo, hi + 1):
        dist = np.abs(mapped - v)
        best = raws[dist == dist.min()]
        table[v - lo, : len(best)] = best
        counts[v - lo] = len(best)
    row = pre - lo
    pick = np.floor(rng.random(len(pre)) * counts[row]).astype(np.int64)
    return table[row, pick]


def _item_values(
    scale: Scale,
    base: FloatArray,
    offsets: FloatArray,
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    """Raw answers, one row per respondent (or tie) and one column per item of the scale."""
    latent = (
        base[:, None]
        + offsets[None, :]
        + _ITEM_NOISE_SD * rng.standard_normal((len(base), len(offsets)))
    )
    lo, hi = scale.response_min, scale.response_max
    scaled = lo + (latent - 1.0) * (hi - lo) / 4.0
    scored = np.clip(np.rint(scaled), lo, hi).astype(np.int64)
    for j in range(len(scale.items)):
        scored[:, j] = _to_raw(scale, j, scored[:, j], rng)
    return scored


def _missing(
    shape: tuple[int, int], rate: FloatArray, rng: np.random.Generator
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(absent, don't know) masks; ``rate`` per row is the share of answers not given."""
    u = rng.random(shape)
    absent = u < rate[:, None] * 0.5
    null = (u >= rate[:, None] * 0.5) & (u < rate[:, None])
    return absent, null


@dataclass
class _Block:
    submission: list[IntArray] = field(default_factory=list)
    target: list[IntArray] = field(default_factory=list)
    item: list[IntArray] = field(default_factory=list)
    value: list[npt.NDArray[np.int64]] = field(default_factory=list)

    def add(
        self,
        submission: IntArray,
        target: IntArray,
        first_item: int,
        values: npt.NDArray[np.int64],
        absent: npt.NDArray[np.bool_],
        null: npt.NDArray[np.bool_],
    ) -> None:
        rows, cols = np.nonzero(~absent)
        self.submission.append(submission[rows])
        self.target.append(target[rows])
        self.item.append((first_item + cols).astype(np.int32))
        v = values[rows, cols].copy()
        v[null[rows, cols]] = NULL_VALUE
        self.value.append(v)


@dataclass(frozen=True)
class _World:
    instrument: InstrumentDefinition
    unit_traits: dict[str, FloatArray]
    person: FloatArray  # general person effect
    person_scale: FloatArray  # (respondents, scales) scale-specific person effects
    offsets: list[FloatArray]  # per scale, item offsets
    first_item: list[int]  # per scale, index of its first item in instrument.items
    neighbourhood: list[tuple[IntArray, FloatArray]]
    n_units: int
    targets_per_respondent: int
    missing_rate: float
    sparse_share: float
    seed: int


def _self_trait(world: _World, scale_pos: int, scale: Scale) -> FloatArray:
    if scale.key == "relational_leadership":
        return world.unit_traits["leadership"]
    if scale.key == "psychological_safety":
        return world.unit_traits["safety"]
    return world.unit_traits[f"scale_{scale_pos}"]


def _choose_targets(
    world: _World, sub_unit: IntArray, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """(submission, target) pairs: the home unit first, then others from its neighbourhood."""
    n = len(sub_unit)
    wanted = np.rint(world.targets_per_respondent + 2.0 * rng.standard_normal(n)).astype(np.int64)
    wanted = np.clip(wanted, 1, None)
    order = np.argsort(sub_unit, kind="stable")
    bounds = np.searchsorted(sub_unit[order], np.arange(world.n_units + 1))
    subs: list[IntArray] = [np.arange(n, dtype=np.int32)]
    targets: list[IntArray] = [sub_unit.astype(np.int32)]
    for u in range(world.n_units):
        members = order[bounds[u] : bounds[u + 1]]
        cand, weight = world.neighbourhood[u]
        if len(members) == 0 or len(cand) == 0:
            continue
        k = np.minimum(wanted[members] - 1, len(cand))
        kmax = int(k.max())
        if kmax <= 0:
            continue
        keys = np.log(weight)[None, :] + rng.gumbel(size=(len(members), len(cand)))
        top = np.argsort(-keys, axis=1)[:, :kmax]
        take = np.arange(kmax)[None, :] < k[:, None]
        subs.append(np.broadcast_to(members[:, None], top.shape)[take].astype(np.int32))
        targets.append(cand[top[take]])
    return np.concatenate(subs), np.concatenate(targets)


def _answers(
    world: _World,
    sub_offset: int,
    sub_respondent: IntArray,
    sub_unit: IntArray,
    rng: np.random.Generator,
    block: _Block,
) -> None:
    """Generate the answers of submissions ``sub_offset + 0..len(sub_respondent)-1``."""
    n = len(sub_respondent)
    sub_ids = (sub_offset + np.arange(n)).astype(np.int32)
    sparse = rng.random(n) < world.sparse_share
    base_rate = np.where(sparse, _SPARSE_ABSENT, world.missing_rate)
    tie_sub, tie_target = _choose_targets(world, sub_unit, rng)
    tie_home = sub_unit[tie_sub]
    own = tie_target == tie_home
    tie_resp = sub_respondent[tie_sub]
    traits = world.unit_traits
    forced = False
    for pos, scale in enumerate(world.instrument.scales):
        person = _PERSON_SD * (
            0.5 * world.person[sub_respondent] + 0.87 * world.person_scale[sub_respondent, pos]
        )
        if scale.targeting == "self":
            mu = _SELF_MEANS.get(scale.key, _SELF_MEAN_DEFAULT)
            base = mu + _UNIT_EFFECT * _self_trait(world, pos, scale)[sub_unit] + person
            values = _item_values(scale, base, world.offsets[pos], rng)
            absent, null = _missing(values.shape, base_rate, rng)
            if not forced:  # every submission answers at least one item (maybe "don't know")
                absent[:, 0] = False
                forced = True
            target = np.full(n, NO_TARGET, dtype=np.int32)
            block.add(sub_ids, target, world.first_item[pos], values, absent, null)
        else:
            pair = tie_home.astype(np.int64) * world.n_units + tie_target
            dyad = (_hash_uniform(pair, world.seed * 131 + pos) - 0.5) * math.sqrt(12.0)
            tie_person = _PERSON_SD * (
                0.5 * world.person[tie_resp] + 0.87 * world.person_scale[tie_resp, pos]
            )
            base = (
                _EXTERNAL_MEAN
                + _INTERNAL_BONUS * own
                + _CAPACITY_EFFECT * traits["capacity"][tie_target]
                + _GENEROSITY_EFFECT * traits["generosity"][tie_home]
                + _COHESION_EFFECT * traits["cohesion"][tie_home] * own
                + _DYAD_SD * dyad
                + tie_person
                + _TIE_SD * rng.standard_normal(len(tie_sub))
            )
            values = _item_values(scale, base, world.offsets[pos], rng)
            sparse_tie = rng.random(len(tie_sub)) < _SPARSE_TIE_SHARE
            rate = np.where(own, 1.0, 1.5) * world.missing_rate
            rate = np.where(sparse_tie, _SPARSE_TIE_ABSENT, rate)
            rate = np.maximum(rate, base_rate[tie_sub])
            absent, null = _missing(values.shape, rate, rng)
            if not forced:
                absent[own, 0] = False
                forced = True
            block.add(tie_sub + sub_offset, tie_target, world.first_item[pos], values, absent, null)


def generate_organisation(
    n_respondents: int = 1000,
    n_units: int = 60,
    *,
    targets_per_respondent: int = 12,
    missing_rate: float = 0.05,
    resubmission_rate: float = 0.02,
    instrument: InstrumentDefinition | None = None,
    seed: int = 0,
    tiny_unit_share: float = 0.1,
    unknown_headcount_share: float = 0.1,
    sparse_respondent_share: float = 0.03,
) -> SyntheticOrg:
    """Generate an organisation; the same arguments always give the same organisation.

    ``targets_per_respondent`` counts the home unit (always rated) and the others (about
    ±2 around it, from the unit's neighbourhood). ``missing_rate`` is the share of items not
    answered, half as "don't know" (null) and half left out; external ties miss 1.5 times as
    often. ``sparse_respondent_share`` of the respondents leave out most items, so that they fall
    below the minimum-answers rule. ``resubmission_rate`` of the respondents submit again later,
    with new answers (and targets) that replace their first submission.
    """
    if n_respondents < 1 or n_units < 1:
        raise ValueError("an organisation needs at least one respondent and one unit")
    if not 0.0 <= missing_rate < 1.0 or not 0.0 <= resubmission_rate <= 1.0:
        raise ValueError("rates must lie in [0, 1)")
    instrument = instrument or builtin_instrument("coherence-v1")
    rng = np.random.default_rng(seed)

    parent, level = build_tree(n_units, rng)
    has_children = np.zeros(n_units, dtype=bool)
    has_children[parent[parent >= 0]] = True
    sizes = unit_sizes(n_respondents, has_children, tiny_unit_share, rng)
    rates = rng.uniform(0.55, 0.95, n_units)
    heads = np.where(sizes > 0, np.ceil(sizes / rates), rng.integers(1, 8, n_units))
    known = rng.random(n_units) >= unknown_headcount_share
    names = unit_names(parent, level)
    ext = [f"u-{u + 1:04d}" for u in range(n_units)]
    units = [
        SyntheticUnit(
            external_id=ext[u],
            name=names[u],
            parent_external_id=ext[int(parent[u])] if parent[u] >= 0 else None,
            headcount=int(heads[u]) if known[u] else None,
            level=int(level[u]),
        )
        for u in range(n_units)
    ]

    z = rng.standard_normal((5 + len(instrument.scales), n_units))
    leadership = z[0]
    traits = {
        "leadership": leadership,
        "safety": 0.6 * leadership + 0.8 * z[1],
        "capacity": 0.7 * leadership + 0.71 * z[2],
        "generosity": z[3],
        "cohesion": 0.5 * leadership + 0.87 * z[4],
    }
    for pos in range(len(instrument.scales)):
        traits[f"scale_{pos}"] = 0.5 * leadership + 0.87 * z[5 + pos]

    respondent_unit = rng.permutation(np.repeat(np.arange(n_units, dtype=np.int32), sizes))
    first_item: list[int] = []
    count = 0
    for scale in instrument.scales:
        first_item.append(count)
        count += len(scale.items)
    world = _World(
        instrument=instrument,
        unit_traits=traits,
        person=rng.standard_normal(n_respondents),
        person_scale=rng.standard_normal((n_respondents, len(instrument.scales))),
        offsets=[_ITEM_OFFSET_SD * rng.standard_normal(len(s.items)) for s in instrument.scales],
        first_item=first_item,
        neighbourhood=neighbourhood(parent, rng),
        n_units=n_units,
        targets_per_respondent=targets_per_respondent,
        missing_rate=missing_rate,
        sparse_share=sparse_respondent_share,
        seed=seed,
    )
    block = _Block()
    originals = np.arange(n_respondents, dtype=np.int32)
    _answers(world, 0, originals, respondent_unit, rng, block)
    n_resub = round(resubmission_rate * n_respondents)
    resubmitters = rng.choice(n_respondents, size=n_resub, replace=False).astype(np.int32)
    if n_resub:
        _answers(world, n_respondents, resubmitters, respondent_unit[resubmitters], rng, block)

    submission = np.concatenate(block.submission).astype(np.int32)
    order = np.argsort(submission, kind="stable")
    return SyntheticOrg(
        instrument=instrument,
        seed=seed,
        units=units,
        unit_parent=parent,
        respondent_unit=respondent_unit,
        submission_respondent=np.concatenate([originals, resubmitters]),
        answer_submission=submission[order],
        answer_target=np.concatenate(block.target).astype(np.int32)[order],
        answer_item=np.concatenate(block.item).astype(np.int16)[order],
        answer_value=np.concatenate(block.value).astype(np.int16)[order],
        traits=traits,
    )
