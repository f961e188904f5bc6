"""Cells made of per-rater means: outgoing (no roll-up) and roll-up internal/incoming/outgoing.

Where a rater has several tie scores in one cell, their mean counts once (SCORING.md §3). A
rater's mean is ``y / (L·m)``: ``y`` the exact integer sum of their ``m`` tie scores ``x``. The
ties are sorted by (rater, pre-order of the target) once: a rater's ties are then a contiguous
block, and within it the targets in any subtree are a contiguous run, so every per-rater sum is
a ``np.add.reduceat`` over runs, for all measures at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from coherence_scoring.engine.cells import UNIT_KEYS, Ints, int128, run_starts
from coherence_scoring.engine.layout import INCOMING, INTERNAL, OUTGOING, UnitTree
from coherence_scoring.engine.respondent import Wide

RATER_SCHEMA = {
    "unit": pl.Int32,
    "rollup": pl.Boolean,
    "persp": pl.Int8,
    "mid": pl.Int32,
    "r": pl.Int32,
    "y": pl.Int64,
    "m": pl.Int64,
}


@dataclass(frozen=True)
class _Block:
    """Per-rater sums for one perspective: row g is rater ``r[g]`` in cell ``unit[g]``;
    ``y[g, j]`` and ``m[g, j]`` are the sum and count of their scores for column j."""

    unit: Ints
    rollup: bool
    persp: int
    r: Ints
    y: Ints
    m: Ints

    def present(self) -> tuple[Ints, Ints]:
        return np.nonzero(self.m > 0)  # type: ignore[return-value]


def _blocks(ties: Wide, tree: UnitTree) -> Iterator[_Block]:
    n_units = tree.count
    r, a, b = ties.column("r"), ties.column("a"), ties.column("b")
    order = np.argsort(r * n_units + tree.preorder[b], kind="stable")
    r, a, b = r[order], a[order], b[order]
    x = ties.x[order]
    has = ties.has[order].astype(np.int64)
    starts = run_starts(r)
    if len(starts) == 0:
        return
    block_r, block_a = r[starts], a[starts]

    def sums(mask: npt.NDArray[np.bool_]) -> tuple[Ints, Ints]:
        w = mask[:, None]
        return (
            np.add.reduceat(np.where(w, x, 0), starts, axis=0),
            np.add.reduceat(np.where(w, has, 0), starts, axis=0),
        )

    yield _Block(block_a, False, OUTGOING, block_r, *sums(a != b))
    if tree.rollup_ancestors.height == 0:
        return
    total_y = np.add.reduceat(x, starts, axis=0)
    total_m = np.add.reduceat(has, starts, axis=0)
    lca = tree.lca_depth[a, b]
    for depth in range(tree.ancestor_at.shape[1]):
        # the rater's ancestor p at this depth: ties with lca(a, b) ≥ depth are inside S(p)
        p = tree.ancestor_at[block_a, depth]
        rolled = np.flatnonzero((p >= 0) & tree.has_children[np.maximum(p, 0)])
        if len(rolled):
            in_y, in_m = sums(lca >= depth)
            out_y, out_m = total_y - in_y, total_m - in_m
            pr, rr = p[rolled], block_r[rolled]
            yield _Block(pr, True, INTERNAL, rr, in_y[rolled], in_m[rolled])
            yield _Block(pr, True, OUTGOING, rr, out_y[rolled], out_m[rolled])
        # the target's ancestor q at this depth, when the rater is outside S(q)
        q = tree.ancestor_at[b, depth]
        into = np.flatnonzero((q >= 0) & tree.has_children[np.maximum(q, 0)] & (lca < depth))
        if len(into):
            run = run_starts(r[into] * n_units + q[into])
            yield _Block(
                q[into][run],
                True,
                INCOMING,
                r[into][run],
                np.add.reduceat(x[into], run, axis=0),
                np.add.reduceat(has[into], run, axis=0),
            )


def rater_means(ties: Wide, tree: UnitTree) -> pl.DataFrame:
    """unit, rollup, persp, mid, r, y, m: one row per rater and per-rater cell."""
    parts = []
    for block in _blocks(ties, tree):
        g, j = block.present()
        parts.append(
            pl.DataFrame(
                {
                    "unit": block.unit[g],
                    "rollup": np.full(len(g), block.rollup),
                    "persp": np.full(len(g), block.persp),
                    "mid": ties.mids[j],
                    "r": block.r[g],
                    "y": block.y[g, j],
                    "m": block.m[g, j],
                }
            ).cast(RATER_SCHEMA)  # type: ignore[arg-type]
        )
    return pl.concat(parts) if parts else pl.DataFrame(schema=RATER_SCHEMA)


def rater_groups(
    ties: Wide, tree: UnitTree, denominators: pl.DataFrame, n_respondents: int
) -> pl.DataFrame:
    """Moment groups of the per-rater cells: unit, rollup, persp, mid, den = L·m, n, s1, s2,
    one group per cell and number m of pooled ties (exact integer sums)."""
    columns = len(ties.mids)
    cells, counts, sums = [], [], []
    for block in _blocks(ties, tree):
        g, j = block.present()
        cells.append(((block.unit[g] * 2 + block.rollup) * 4 + block.persp) * columns + j)
        counts.append(block.m[g, j])
        sums.append(block.y[g, j])
    schema = {**{k: RATER_SCHEMA[k] for k in UNIT_KEYS}, "den": pl.Int64}
    cell = np.concatenate(cells) if cells else np.zeros(0, dtype=np.int64)
    if len(cell) == 0:
        return pl.DataFrame(schema={**schema, "n": pl.Int64, "s1": pl.Int128, "s2": pl.Int128})
    m_all, y = np.concatenate(counts), np.concatenate(sums)
    stride = int(m_all.max()) + 1
    key = cell * stride + m_all
    key_values, n, s1, s2 = _sum_by_key(key, y, n_respondents)
    cell, m = np.divmod(key_values, stride)
    cell, j = np.divmod(cell, columns)
    cell, persp = np.divmod(cell, 4)
    unit, rollup = np.divmod(cell, 2)
    frame = pl.DataFrame(
        {
            "unit": unit,
            "rollup": rollup.astype(bool),
            "persp": persp,
            "mid": ties.mids[j],
            "m": m,
            "n": n,
            "s1": int128(s1),
            "s2": int128(s2),
        }
    )
    return frame.join(denominators, on="mid").select(
        *(pl.col(k).cast(t) for k, t in RATER_SCHEMA.items() if k in UNIT_KEYS),
        den=pl.col("L") * pl.col("m"),
        n=pl.col("n").cast(pl.Int64),
        s1=pl.col("s1"),
        s2=pl.col("s2"),
    )


def _sum_by_key(
    key: Ints, y: Ints, n_respondents: int
) -> tuple[Ints, Ints, npt.NDArray[np.generic], npt.NDArray[np.generic]]:
    """(distinct keys, count, Σy, Σy²), exactly. ``np.bincount`` sums in float64, which is exact
    while every sum stays below 2**53 (a key holds at most one value per respondent)."""
    top = float(np.abs(y).max(initial=0))
    span = int(key.max()) + 1
    if top * top * max(n_respondents, 1) < 2**53 and span <= 4 * len(key) + 2**20:
        count = np.bincount(key, minlength=span)
        used = np.flatnonzero(count)
        s1 = np.bincount(key, weights=y.astype(np.float64), minlength=span)[used]
        s2 = np.bincount(key, weights=(y * y).astype(np.float64), minlength=span)[used]
        return used, count[used], s1.astype(np.int64), s2.astype(np.int64)
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
