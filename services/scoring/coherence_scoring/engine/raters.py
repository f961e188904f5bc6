"""Rows that pool several referents per person: outgoing (no roll-up) and the roll-up internal,
incoming and outgoing rows.

A person's value in such a row is the mean of all their counted responses in it (SCORING.md §3):
``y / m``, with ``y`` and ``m`` the sum and number of those responses. The ties are sorted by
(rater, pre-order position of the target): a rater's ties are then one contiguous block, and
within it the targets in any subtree S(p) are the contiguous run of pre-order positions
``[preorder[p], subtree_end[p])``. Every per-rater sum is then a difference of two prefix sums
found by binary search — no units × units table, for all measures at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from coherence_scoring.engine.cells import Ints, int128
from coherence_scoring.engine.layout import INCOMING, INTERNAL, OUTGOING, UnitTree
from coherence_scoring.engine.respondent import Wide

GROUP_SCHEMA = {
    "unit": pl.Int32,
    "rollup": pl.Boolean,
    "persp": pl.Int8,
    "mid": pl.Int32,
    "den": pl.Int64,
    "n": pl.Int64,
    "s1": pl.Int128,
    "s2": pl.Int128,
    "Y": pl.Int64,
    "M": pl.Int64,
}


@dataclass(frozen=True)
class _Block:
    """Per-rater sums for one perspective: row g is rater ``r[g]`` in the row of ``unit[g]``;
    ``y[g, j]`` and ``m[g, j]`` are the sum and number of their responses for column j."""

    unit: Ints
    rollup: bool
    persp: int
    r: Ints
    y: Ints
    m: Ints


def _blocks(ties: Wide, tree: UnitTree) -> Iterator[_Block]:
    n_units = tree.count
    r, a, b = ties.column("r"), ties.column("a"), ties.column("b")
    key = r * n_units + tree.preorder[b]
    order = np.argsort(key, kind="stable")
    key, r, a, b = key[order], r[order], a[order], b[order]
    y = ties.y[order]
    m = ties.m[order]
    if len(r) == 0:
        return
    cum_y = np.vstack([np.zeros((1, y.shape[1]), dtype=np.int64), np.cumsum(y, axis=0)])
    cum_m = np.vstack([np.zeros((1, m.shape[1]), dtype=np.int64), np.cumsum(m, axis=0)])

    def interval(rater: Ints, low: Ints, high: Ints) -> tuple[Ints, Ints]:
        """Sums over rater's ties whose target's pre-order position is in [low, high)."""
        lo = np.searchsorted(key, rater * n_units + low)
        hi = np.searchsorted(key, rater * n_units + high)
        return cum_y[hi] - cum_y[lo], cum_m[hi] - cum_m[lo]

    starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
    block_r, block_a = r[starts], a[starts]
    ends = np.r_[starts[1:], len(r)]
    total_y, total_m = cum_y[ends] - cum_y[starts], cum_m[ends] - cum_m[starts]
    own_y, own_m = interval(block_r, tree.preorder[block_a], tree.preorder[block_a] + 1)
    yield _Block(block_a, False, OUTGOING, block_r, total_y - own_y, total_m - own_m)

    # roll-up internal and outgoing: each rater with every ancestor-or-self p (with children)
    # of their home unit: inside = targets in S(p), outside = the rest
    anc = tree.rollup_ancestors
    if anc.height == 0:
        return
    rater_of_unit = pl.DataFrame({"g": np.arange(len(block_r)), "unit": block_a.astype(np.int32)})
    pairs = rater_of_unit.join(anc, on="unit").sort("g", "p")
    g = pairs["g"].to_numpy().astype(np.int64)
    p = pairs["p"].to_numpy().astype(np.int64)
    in_y, in_m = interval(block_r[g], tree.preorder[p], tree.subtree_end[p])
    yield _Block(p, True, INTERNAL, block_r[g], in_y, in_m)
    yield _Block(p, True, OUTGOING, block_r[g], total_y[g] - in_y, total_m[g] - in_m)

    # roll-up incoming: every rater with every ancestor-or-self q (with children) of one of
    # their targets, when the rater's home unit is outside S(q)
    target_anc = (
        pl.DataFrame({"r": r, "a": a.astype(np.int32), "unit": b.astype(np.int32)})
        .join(anc, on="unit")
        .select("r", "a", "p")
        .unique()
        .sort("r", "p")
    )
    qr = target_anc["r"].to_numpy().astype(np.int64)
    qa = target_anc["a"].to_numpy().astype(np.int64)
    q = target_anc["p"].to_numpy().astype(np.int64)
    outside = ~tree.contains(q, qa)
    qr, q = qr[outside], q[outside]
    in_y, in_m = interval(qr, tree.preorder[q], tree.subtree_end[q])
    yield _Block(q, True, INCOMING, qr, in_y, in_m)


def rater_groups(ties: Wide, tree: UnitTree) -> pl.DataFrame:
    """Moment groups of the rows pooling several referents per person: unit, rollup, persp,
    mid, den = m, n, s1 = Σ y, s2 = Σ y², Y = Σ y, M = Σ m — one group per row and number m
    of responses a person has in it (exact integer sums)."""
    columns = len(ties.mids)
    cells, counts, sums = [], [], []
    for block in _blocks(ties, tree):
        g, j = np.nonzero(block.m > 0)
        cells.append(((block.unit[g] * 2 + block.rollup) * 4 + block.persp) * columns + j)
        counts.append(block.m[g, j])
        sums.append(block.y[g, j])
    if not cells or sum(len(c) for c in cells) == 0:
        return pl.DataFrame(schema=GROUP_SCHEMA)
    cell = np.concatenate(cells)
    m_all, y = np.concatenate(counts), np.concatenate(sums)
    key, n, s1, s2 = _sum_by_key(cell * (int(m_all.max()) + 1) + m_all, y)
    cell, m = np.divmod(key, int(m_all.max()) + 1)
    cell, j = np.divmod(cell, columns)
    cell, persp = np.divmod(cell, 4)
    unit, rollup = np.divmod(cell, 2)
    out = pl.DataFrame(
        {
            "unit": unit,
            "rollup": rollup.astype(bool),
            "persp": persp,
            "mid": ties.mids[j],
            "den": m,
            "n": n,
            "s1": int128(s1),
            "s2": int128(s2),
            "Y": s1.astype(np.int64) if s1.dtype != object else np.array(s1, dtype=np.int64),
            "M": m * n,
        }
    )
    return out.select(pl.col(c).cast(t) for c, t in GROUP_SCHEMA.items())


def _sum_by_key(key: Ints, y: Ints) -> tuple[Ints, Ints, np.ndarray, np.ndarray]:
    """(distinct keys in order, count, Σy, Σy²), exactly: ``np.bincount`` sums in float64,
    exact while every sum stays below 2**53; beyond that, polars in 128-bit integers."""
    top = float(np.abs(y).max(initial=0))
    span = int(key.max()) + 1 if len(key) else 1
    if top * top * len(y) < 2**53 and span <= 4 * len(key) + 2**22:
        count = np.bincount(key, minlength=span)
        used = np.flatnonzero(count)
        s1 = np.bincount(key, weights=y.astype(np.float64), minlength=span)[used]
        s2 = np.bincount(key, weights=(y * y).astype(np.float64), minlength=span)[used]
        return used, count[used].astype(np.int64), s1.astype(np.int64), s2.astype(np.int64)
    value = pl.col("y").cast(pl.Int128)
    grouped = (
        pl.DataFrame({"key": key, "y": y})
        .group_by("key")
        .agg(n=pl.len(), s1=value.sum(), s2=(value * value).sum())
        .sort("key")
    )
    return (
        grouped["key"].to_numpy(),
        grouped["n"].to_numpy().astype(np.int64),
        np.array(grouped["s1"].to_list(), dtype=object),
        np.array(grouped["s2"].to_list(), dtype=object),
    )
