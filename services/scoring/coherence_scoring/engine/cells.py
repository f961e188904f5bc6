"""Which respondents' values make up each published cell (SCORING.md §3, scoring-decisions.md).

A unit cell is (unit, rollup, perspective, measure); a tie cell is (from, to, measure). For every
cell this module produces *moment groups*: exact integer sums ``n``, ``s1 = Σ num`` and
``s2 = Σ num²`` of respondent values ``num / den``. All values of a group share ``den``; a cell
has one group when its values are respondent scores (den = the measure's denominator L) and one
group per number ``m`` of pooled tie scores when its values are per-rater means (den = L·m).
describe.py turns the groups into statistics.

Perspectives, per scoring-decisions.md:
- members: respondents of the unit (roll-up: of its subtree) with the measure;
- internal: raters in the unit (subtree) about the unit (units of the subtree);
- incoming: raters outside the unit (subtree) about it (units of the subtree);
- outgoing: raters in the unit (subtree) about units outside it;
where one rater has several tie scores in one cell (roll-ups, outgoing), their mean counts once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from coherence_scoring.engine.layout import INCOMING, INTERNAL, MEMBERS, OUTGOING, UnitTree
from coherence_scoring.engine.respondent import RespondentData, Wide

UNIT_KEYS = ["unit", "rollup", "persp", "mid"]
TIE_KEYS = ["from", "to", "mid"]
MOMENTS = {"n": pl.Int64, "s1": pl.Int128, "s2": pl.Int128}
RATER_SCHEMA = {
    "unit": pl.Int32,
    "rollup": pl.Boolean,
    "persp": pl.Int8,
    "mid": pl.Int32,
    "r": pl.Int32,
    "y": pl.Int64,
    "m": pl.Int64,
}

Ints = npt.NDArray[np.int64]


def run_starts(key: Ints) -> Ints:
    """Where a new run of equal keys starts in a sorted key array."""
    if len(key) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, key[1:] != key[:-1]])


def _exact_sum(values: npt.NDArray[np.int64], starts: Ints) -> npt.NDArray[np.generic]:
    """Run sums along axis 0, in int64 when they cannot overflow, else in Python integers."""
    if len(starts) == 0:
        return np.zeros((0, *values.shape[1:]), dtype=np.int64)
    top = float(np.abs(values).max(initial=0))
    longest = float(np.diff(np.r_[starts, len(values)]).max())
    if top * longest < 2**62:
        return np.add.reduceat(values, starts, axis=0)
    return np.add.reduceat(values.astype(object), starts, axis=0)


def _square_sum(values: npt.NDArray[np.int64], starts: Ints) -> npt.NDArray[np.generic]:
    top = float(np.abs(values).max(initial=0))
    if top * top < 2**62:
        return _exact_sum(values * values, starts)
    as_objects = values.astype(object)
    return np.add.reduceat(as_objects * as_objects, starts, axis=0)


def _int128(values: npt.NDArray[np.generic]) -> pl.Series:
    if values.dtype == object:
        return pl.Series([int(v) for v in values], dtype=pl.Int128)
    return pl.Series(values.astype(np.int64)).cast(pl.Int128)


def _grouped(wide: Wide, key: Ints) -> tuple[Ints, Ints, pl.DataFrame]:
    """Moments per (group of rows with equal key, column): (first row of each group, the
    group of each moment, moments frame with columns mid, n, s1, s2)."""
    order = np.argsort(key, kind="stable")
    starts = run_starts(key[order])
    x = wide.x[order]
    has = wide.has[order]
    n = np.add.reduceat(has.astype(np.int64), starts, axis=0) if len(starts) else has
    s1 = _exact_sum(x, starts)
    s2 = _square_sum(x, starts)
    group, col = np.nonzero(n)
    moments = pl.DataFrame(
        {
            "mid": wide.mids[col].astype(np.int32),
            "n": n[group, col].astype(np.int64),
            "s1": _int128(s1[group, col]),
            "s2": _int128(s2[group, col]),
        }
    )
    return order[starts], group, moments


def tie_groups(ties: Wide, denominators: pl.DataFrame, n_units: int) -> pl.DataFrame:
    """from, to, mid, den, n, s1, s2: the ties R[a,b] (raters = direct members of a)."""
    a, b = ties.column("a"), ties.column("b")
    first, group, moments = _grouped(ties, a * n_units + b)
    frame = moments.with_columns(
        pl.Series("from", a[first][group].astype(np.int32)),
        pl.Series("to", b[first][group].astype(np.int32)),
    )
    return _with_den(frame, denominators, TIE_KEYS)


def _with_den(frame: pl.DataFrame, denominators: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return frame.join(denominators, on="mid").select(
        *keys, pl.col("L").alias("den"), *(pl.col(c).cast(t) for c, t in MOMENTS.items())
    )


def unit_groups(
    data: RespondentData,
    tie_moments: pl.DataFrame,
    raters: pl.DataFrame,
    denominators: pl.DataFrame,
    tree: UnitTree,
) -> pl.DataFrame:
    """unit, rollup, persp, mid, den, n, s1, s2 for every unit cell with a respondent."""
    home = data.selves.column("a")
    first, group, members = _grouped(data.selves, home)
    members = members.with_columns(pl.Series("unit", home[first][group].astype(np.int32)))
    members_rollup = (
        members.join(tree.rollup_ancestors.select("unit", "p"), on="unit")
        .group_by("p", "mid")
        .agg(pl.col("n").sum(), pl.col("s1").sum(), pl.col("s2").sum())
        .rename({"p": "unit"})
    )
    internal = tie_moments.filter(pl.col("from") == pl.col("to")).rename({"from": "unit"})
    incoming = (
        tie_moments.filter(pl.col("from") != pl.col("to"))
        .group_by("to", "mid")
        .agg(pl.col("n").sum(), pl.col("s1").sum(), pl.col("s2").sum())
        .rename({"to": "unit"})
    )
    direct = pl.concat(
        [
            _tagged(members, False, MEMBERS),
            _tagged(members_rollup, True, MEMBERS),
            _tagged(internal, False, INTERNAL),
            _tagged(incoming, False, INCOMING),
        ]
    )
    return pl.concat(
        [_with_den(direct, denominators, UNIT_KEYS), rater_groups(raters, denominators)]
    )


def _tagged(frame: pl.DataFrame, rollup: bool, persp: int) -> pl.DataFrame:
    return frame.select(
        pl.col("unit").cast(pl.Int32),
        pl.lit(rollup).alias("rollup"),
        pl.lit(persp, dtype=pl.Int8).alias("persp"),
        pl.col("mid").cast(pl.Int32),
        *(pl.col(c).cast(t) for c, t in MOMENTS.items()),
    )


def rater_means(ties: Wide, tree: UnitTree) -> pl.DataFrame:
    """unit, rollup, persp, mid, r, y, m: per rater, the sum y of their m tie scores x in a cell
    — the per-rater mean y / (L·m) behind outgoing cells and roll-up internal / incoming /
    outgoing cells.

    Ties are sorted by (rater, pre-order of the target) once: a rater's ties are a contiguous
    block, and within it the targets in any subtree are a contiguous run, so every per-rater sum
    is a ``np.add.reduceat`` over runs, for all measures at once."""
    n_units = tree.count
    r, a, b = ties.column("r"), ties.column("a"), ties.column("b")
    order = np.argsort(r * n_units + tree.preorder[b], kind="stable")
    r, a, b = r[order], a[order], b[order]
    x = ties.x[order]
    has = ties.has[order].astype(np.int64)
    starts = run_starts(r)
    out = _Emitter(ties.mids)
    if len(starts) == 0:
        return out.frame()
    block_r, block_a = r[starts], a[starts]

    def sums(mask: npt.NDArray[np.bool_]) -> tuple[Ints, Ints]:
        w = mask[:, None]
        return (
            np.add.reduceat(np.where(w, x, 0), starts, axis=0),
            np.add.reduceat(np.where(w, has, 0), starts, axis=0),
        )

    out.add(block_a, False, OUTGOING, block_r, *sums(a != b))
    if tree.rollup_ancestors.height == 0:
        return out.frame()
    total_y = np.add.reduceat(x, starts, axis=0)
    total_m = np.add.reduceat(has, starts, axis=0)
    lca = tree.lca_depth[a, b]
    for depth in range(tree.ancestor_at.shape[1]):
        # the rater's ancestor p at this depth: ties with lca(a, b) ≥ depth are inside S(p)
        p = tree.ancestor_at[block_a, depth]
        rolled = (p >= 0) & tree.has_children[np.maximum(p, 0)]
        if rolled.any():
            in_y, in_m = sums(lca >= depth)
            out.add(p, True, INTERNAL, block_r, in_y, in_m, rolled)
            out.add(p, True, OUTGOING, block_r, total_y - in_y, total_m - in_m, rolled)
        # the target's ancestor q at this depth, when the rater is outside S(q)
        q = tree.ancestor_at[b, depth]
        into = np.flatnonzero((q >= 0) & tree.has_children[np.maximum(q, 0)] & (lca < depth))
        if len(into):
            run = run_starts(r[into] * n_units + q[into])
            out.add(
                q[into][run],
                True,
                INCOMING,
                r[into][run],
                np.add.reduceat(x[into], run, axis=0),
                np.add.reduceat(has[into], run, axis=0),
            )
    return out.frame()


class _Emitter:
    """Collects per-rater rows; a row exists when the rater has at least one tie in the cell."""

    def __init__(self, mids: Ints) -> None:
        self.mids = mids
        self.parts: list[dict[str, npt.NDArray[np.generic]]] = []

    def add(
        self,
        unit: Ints,
        rollup: bool,
        persp: int,
        r: Ints,
        y: Ints,
        m: Ints,
        mask: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        present = m > 0 if mask is None else (m > 0) & mask[:, None]
        group, col = np.nonzero(present)
        size = len(group)
        self.parts.append(
            {
                "unit": unit[group],
                "rollup": np.full(size, rollup),
                "persp": np.full(size, persp, dtype=np.int8),
                "mid": self.mids[col],
                "r": r[group],
                "y": y[group, col],
                "m": m[group, col],
            }
        )

    def frame(self) -> pl.DataFrame:
        if not self.parts:
            return pl.DataFrame(schema=RATER_SCHEMA)
        columns = {name: np.concatenate([p[name] for p in self.parts]) for name in RATER_SCHEMA}
        return pl.DataFrame(columns).cast(RATER_SCHEMA)  # type: ignore[arg-type]


def rater_groups(raters: pl.DataFrame, denominators: pl.DataFrame) -> pl.DataFrame:
    """Moment groups of per-rater means: one group per (cell, m), den = L·m."""
    top = float(raters["y"].abs().max() or 0)  # type: ignore[arg-type]
    wide = top * top * max(raters.height, 1) >= 2**62
    y = pl.col("y").cast(pl.Int128 if wide else pl.Int64)
    grouped = raters.group_by(*UNIT_KEYS, "m").agg(
        n=pl.len().cast(pl.Int64), s1=y.sum(), s2=(y * y).sum()
    )
    return grouped.join(denominators, on="mid").select(
        *UNIT_KEYS,
        den=pl.col("L") * pl.col("m"),
        n=pl.col("n"),
        s1=pl.col("s1").cast(pl.Int128),
        s2=pl.col("s2").cast(pl.Int128),
    )


def direct_values(data: RespondentData, tree: UnitTree) -> pl.DataFrame:
    """unit, rollup, persp, mid, r, x: respondent-level values of the cells that hold one score
    per respondent (members, and internal and incoming without roll-up)."""
    selves = data.selves.long().select(pl.col("a").alias("unit"), "mid", "r", "x")
    rollup = selves.join(tree.rollup_ancestors.select("unit", "p"), on="unit").select(
        pl.col("p").alias("unit"), "mid", "r", "x"
    )
    ties = data.ties.long()
    internal = ties.filter(pl.col("a") == pl.col("b")).select(
        pl.col("a").alias("unit"), "mid", "r", "x"
    )
    incoming = ties.filter(pl.col("a") != pl.col("b")).select(
        pl.col("b").alias("unit"), "mid", "r", "x"
    )
    parts = [
        (selves, False, MEMBERS),
        (rollup, True, MEMBERS),
        (internal, False, INTERNAL),
        (incoming, False, INCOMING),
    ]
    return pl.concat(
        [
            frame.select(
                pl.col("unit").cast(pl.Int32),
                pl.lit(flag).alias("rollup"),
                pl.lit(persp, dtype=pl.Int8).alias("persp"),
                pl.col("mid").cast(pl.Int32),
                pl.col("r").cast(pl.Int32),
                pl.col("x").cast(pl.Int64),
            )
            for frame, flag, persp in parts
        ]
    )
