"""What the engine needs to know before it reads an answer: measures, items and the unit tree.

Everything is derived from the instrument definition and the round's unit frame, never from item
names, so custom instruments score like the built-in one. Measures, perspectives and units are
small integer codes inside the engine; they become strings only when the result is formatted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from coherence_core.instruments import InstrumentDefinition

#: Perspective codes; PERSPECTIVES[code] is the published name.
MEMBERS, INTERNAL, INCOMING, OUTGOING = 0, 1, 2, 3
PERSPECTIVES = ("members", "internal", "incoming", "outgoing")

#: Measure kinds.
INDEX, SUBSCALE, ITEM = 0, 1, 2

#: The largest common denominator used for exact arithmetic on a person's value in a row of one
#: referent (the mean of their c counted responses): ``value · L`` is an integer when every
#: possible c divides L. Measures so long that lcm(1..J) exceeds this use L = 2**32 instead:
#: values are then rounded to 2**-32 (≈ 2e-10) before their moments are summed (sd only; means
#: are pooled from exact integer sums and never rounded).
MAX_EXACT_DENOMINATOR = 2**32

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Measures:
    """One row per measure: ``frame`` has columns mid, scale_idx, scale, measure, kind,
    unit_targeted, min_answered, denominator, exact, sigma_eu2, n_items."""

    frame: pl.DataFrame
    #: item index → the mid of the item measure, of its scale's index, of its subscale (or -1)
    item_mid: IntArray
    index_mid: IntArray
    subscale_mid: IntArray
    #: item index → targets units (True) or asked once (False)
    item_unit_targeted: BoolArray
    #: the raw → scored lookup: ``lut[item, raw - raw_low]``, -1 where the raw value is invalid
    lut: npt.NDArray[np.int32]
    raw_low: int
    #: item index → the smallest and largest scored value it can take (the attacker knows them)
    item_low: IntArray
    item_high: IntArray

    @property
    def count(self) -> int:
        return self.frame.height

    @property
    def mid_item(self) -> dict[int, int]:
        """The item index of every item measure's mid."""
        return {int(m): i for i, m in enumerate(self.item_mid)}

    def column(self, name: str) -> npt.NDArray[np.generic]:
        return self.frame[name].to_numpy()


@dataclass(frozen=True)
class UnitTree:
    """The round's frozen unit tree; units are the round-local indices 0..U-1.

    Everything here is linear in the number of units (plus the sum of depths for
    ``rollup_ancestors``): no units × units table, so deep and wide trees both fit.
    """

    external_id: list[str]
    parent: IntArray  # -1 for a root
    depth: IntArray
    has_children: BoolArray
    #: rank of each unit's external id in sorted order (ties between parts are broken by it)
    external_rank: IntArray
    headcount: list[int | None]
    #: position in a depth-first (pre-order) walk, and one past the last position of the
    #: unit's subtree: v is in S(u) exactly when preorder[u] <= preorder[v] < subtree_end[u]
    preorder: IntArray
    subtree_end: IntArray
    #: (unit, p): every unit with each of its ancestors-or-self that has children, by unit,
    #: nearest first
    rollup_ancestors: pl.DataFrame

    @property
    def count(self) -> int:
        return len(self.external_id)

    def contains(self, p: IntArray, v: IntArray) -> BoolArray:
        """Whether unit v lies in the subtree S(p), elementwise."""
        pv = self.preorder[v]
        return (self.preorder[p] <= pv) & (pv < self.subtree_end[p])


def _lcm_range(low: int, high: int) -> int:
    value = 1
    for c in range(max(low, 1), high + 1):
        value = math.lcm(value, c)
        if value > MAX_EXACT_DENOMINATOR:
            return 0
    return value


def build_measures(instrument: InstrumentDefinition) -> Measures:
    rows: list[dict[str, object]] = []
    items = instrument.items
    n_items = len(items)
    item_mid = np.full(n_items, -1, dtype=np.int64)
    index_mid = np.full(n_items, -1, dtype=np.int64)
    subscale_mid = np.full(n_items, -1, dtype=np.int64)
    position = {id(item): i for i, (_, item) in enumerate(items)}

    def add(scale_idx: int, measure: str, kind: int, item_count: int, min_answered: int) -> int:
        scale = instrument.scales[scale_idx]
        exact_l = 1 if kind == ITEM else _lcm_range(1, item_count)
        rows.append(
            {
                "mid": len(rows),
                "scale_idx": scale_idx,
                "scale": scale.key,
                "measure": measure,
                "kind": kind,
                "unit_targeted": scale.targeting == "unit",
                "min_answered": min_answered,
                "denominator": exact_l or MAX_EXACT_DENOMINATOR,
                "exact": exact_l > 0,
                "sigma_eu2": (scale.options**2 - 1) / 12.0,
                "n_items": item_count,
            }
        )
        return len(rows) - 1

    for s_idx, scale in enumerate(instrument.scales):
        idx = add(s_idx, "index", INDEX, len(scale.items), scale.min_answered)
        sub_mids = {
            sub.key: add(
                s_idx,
                sub.key,
                SUBSCALE,
                sum(1 for i in scale.items if i.subscale == sub.key),
                scale.subscale_min_answered(sub.key),
            )
            for sub in scale.subscales
        }
        for item in scale.items:
            i = position[id(item)]
            index_mid[i] = idx
            subscale_mid[i] = sub_mids[item.subscale] if item.subscale is not None else -1
            item_mid[i] = add(s_idx, item.key, ITEM, 1, 1)

    frame = pl.DataFrame(
        rows,
        schema={
            "mid": pl.Int32,
            "scale_idx": pl.Int32,
            "scale": pl.String,
            "measure": pl.String,
            "kind": pl.Int8,
            "unit_targeted": pl.Boolean,
            "min_answered": pl.Int32,
            "denominator": pl.Int64,
            "exact": pl.Boolean,
            "sigma_eu2": pl.Float64,
            "n_items": pl.Int32,
        },
    )
    lut, raw_low = _scoring_lut(instrument)
    valid = np.where(lut >= 0, lut, np.iinfo(np.int32).max)
    return Measures(
        frame=frame,
        item_mid=item_mid,
        index_mid=index_mid,
        subscale_mid=subscale_mid,
        item_unit_targeted=np.array([s.targeting == "unit" for s, _ in items], dtype=bool),
        lut=lut,
        raw_low=raw_low,
        item_low=valid.min(axis=1).astype(np.int64),
        item_high=lut.max(axis=1).astype(np.int64),
    )


def _scoring_lut(instrument: InstrumentDefinition) -> tuple[npt.NDArray[np.int32], int]:
    """raw answer → scored value: the recode map first, then reversal `(min + max) − value`."""
    maps: list[dict[int, int]] = []
    for scale, item in instrument.items:
        if item.recode is not None:
            mapping = dict(item.recode)
        else:
            mapping = {v: v for v in range(scale.response_min, scale.response_max + 1)}
        if item.reversed:
            mapping = {
                raw: scale.response_min + scale.response_max - v for raw, v in mapping.items()
            }
        maps.append(mapping)
    raws = [raw for m in maps for raw in m]
    low, high = (min(raws), max(raws)) if raws else (0, 0)
    lut = np.full((len(maps), high - low + 1), -1, dtype=np.int32)
    for i, mapping in enumerate(maps):
        for raw, scored in mapping.items():
            lut[i, raw - low] = scored
    return lut, low


def build_tree(units: pl.DataFrame) -> UnitTree:
    frame = units.select(
        pl.col("unit").cast(pl.Int64),
        pl.col("external_id").cast(pl.String),
        pl.col("parent").cast(pl.Int64),
        pl.col("headcount").cast(pl.Int64),
    ).sort("unit")
    n = frame.height
    if not frame["unit"].to_list() == list(range(n)):
        raise ValueError("units must be numbered 0..U-1")
    if frame["external_id"].n_unique() != n or frame["external_id"].null_count():
        raise ValueError("unit external ids must be present and unique")
    parent = frame["parent"].fill_null(-1).to_numpy().astype(np.int64)
    if ((parent < -1) | (parent >= n) | (parent == np.arange(n))).any():
        raise ValueError("a unit's parent must be another unit of the round")
    has_children = np.zeros(n, dtype=bool)
    has_children[parent[parent >= 0]] = True

    # children in index order, as CSR arrays; a depth-first walk from the roots numbers the
    # units in pre-order and sizes every subtree; a unit it never reaches sits on a cycle
    kids = np.argsort(parent, kind="stable")
    kids = kids[parent[kids] >= 0]
    first = np.searchsorted(parent[kids], np.arange(n + 1))
    preorder = np.full(n, -1, dtype=np.int64)
    subtree_end = np.zeros(n, dtype=np.int64)
    depth = np.zeros(n, dtype=np.int64)
    position = 0
    stack: list[tuple[int, bool]] = [(int(r), False) for r in np.flatnonzero(parent < 0)[::-1]]
    while stack:
        u, done = stack.pop()
        if done:
            subtree_end[u] = position
            continue
        preorder[u] = position
        position += 1
        stack.append((u, True))
        for c in kids[first[u] : first[u + 1]][::-1]:
            depth[c] = depth[u] + 1
            stack.append((int(c), False))
    if position != n:
        raise ValueError("the unit tree has a cycle")

    # (unit, p) for every ancestor-or-self p with children: walk up level by level
    us: list[IntArray] = []
    ps: list[IntArray] = []
    unit = np.arange(n, dtype=np.int64)
    p = unit.copy()
    while len(unit):
        rolled = has_children[p]
        us.append(unit[rolled])
        ps.append(p[rolled])
        p = parent[p]
        keep = p >= 0
        unit, p = unit[keep], p[keep]
    rollup_ancestors = pl.DataFrame(
        {"unit": np.concatenate(us), "p": np.concatenate(ps)} if us else {"unit": [], "p": []},
        schema={"unit": pl.Int32, "p": pl.Int32},
    ).sort("unit", maintain_order=True)  # per unit, nearest ancestor first
    external_id = frame["external_id"].to_list()
    order = sorted(range(n), key=lambda u: external_id[u])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return UnitTree(
        external_id=external_id,
        parent=parent,
        depth=depth,
        has_children=has_children,
        external_rank=rank,
        headcount=frame["headcount"].to_list(),
        preorder=preorder,
        subtree_end=subtree_end,
        rollup_ancestors=rollup_ancestors,
    )
