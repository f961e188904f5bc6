"""Which respondents' values make up each published cell (SCORING.md §3, scoring-decisions.md).

A unit cell is (unit, rollup, perspective, measure); a tie cell is (from, to, measure). For every
cell this module produces *moment groups*: integer sums ``n``, ``s1 = Σ num``, ``s2 = Σ num²`` of
respondent values ``num / den``. All values of a group share ``den``; a cell has one group when
its values are respondent scores (den = the measure's denominator L) and one group per number of
pooled ties ``m`` when its values are per-rater means of several tie scores (den = L·m). Integer
sums make every aggregate independent of row order (describe.py turns them into statistics).

Perspectives, per scoring-decisions.md:
- members: respondents of the unit (roll-up: of its subtree) with the measure;
- internal: raters in the unit (subtree) about the unit (units of the subtree), one value each;
- incoming: raters outside the unit (subtree) about it (units of the subtree);
- outgoing: raters in the unit (subtree) about units outside it;
where one rater has several tie scores in one roll-up or outgoing cell, their mean counts once.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from coherence_scoring.engine.layout import INCOMING, INTERNAL, MEMBERS, OUTGOING, UnitTree
from coherence_scoring.engine.respondent import SELF, RespondentData

UNIT_KEYS = ["unit", "rollup", "persp", "mid"]
TIE_KEYS = ["from", "to", "mid"]
MOMENT_SCHEMA = {"den": pl.Int64, "n": pl.Int64, "s1": pl.Int128, "s2": pl.Int128}


def packed_group_by(frame: pl.DataFrame, keys: list[str], aggs: list[pl.Expr]) -> pl.DataFrame:
    """``group_by(keys).agg(aggs)`` for non-negative integer keys, packed into one Int64."""
    if frame.height == 0:
        return frame.group_by(keys).agg(aggs)
    spans = [int(frame[k].max()) + 1 for k in keys]  # type: ignore[arg-type]
    if np.prod([float(s) for s in spans]) >= 2**62:
        return frame.group_by(keys).agg(aggs)
    packed = pl.lit(0, dtype=pl.Int64)
    for k, span in zip(keys, spans, strict=True):
        packed = packed * span + pl.col(k).cast(pl.Int64)
    grouped = frame.with_columns(_key=packed).group_by("_key").agg(aggs)
    decoded = []
    rest = pl.col("_key")
    for k, span in reversed(list(zip(keys, spans, strict=True))):
        decoded.append((rest % span).cast(frame.schema[k]).alias(k))
        rest = rest // span
    return grouped.select(*reversed(decoded), pl.exclude("_key"))


def _moments(value: str, wide: bool) -> list[pl.Expr]:
    dtype = pl.Int128 if wide else pl.Int64
    v = pl.col(value).cast(dtype)
    return [pl.len().cast(pl.Int64).alias("n"), v.sum().alias("s1"), (v * v).sum().alias("s2")]


def _is_wide(frame: pl.DataFrame, value: str) -> bool:
    """Whether Σ value² could leave Int64 (only for very long custom scales)."""
    if frame.height == 0:
        return False
    top = float(frame[value].abs().max())  # type: ignore[arg-type]
    return top * top * frame.height >= 2**62


def _finish(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return frame.select(*keys, *(pl.col(c).cast(t) for c, t in MOMENT_SCHEMA.items()))


def ties(data: RespondentData) -> pl.DataFrame:
    """r, a, b, mid, x: every tie score (unit-targeted scales)."""
    return data.scores.filter(pl.col("target") != SELF).rename({"target": "b"})


def lca_column(frame: pl.DataFrame, tree: UnitTree) -> pl.Series:
    a = frame["a"].to_numpy().astype(np.int64)
    b = frame["b"].to_numpy().astype(np.int64)
    return pl.Series("lca", tree.lca_depth.ravel()[a * tree.count + b].astype(np.int32))


def tie_groups(tie_frame: pl.DataFrame, denominators: pl.DataFrame) -> pl.DataFrame:
    """from, to, mid + moments: the ties R[a,b] (raters = direct members of a)."""
    grouped = packed_group_by(
        tie_frame.rename({"a": "from", "b": "to"}),
        TIE_KEYS,
        _moments("x", _is_wide(tie_frame, "x")),
    )
    return _finish(grouped.join(denominators, on="mid").rename({"L": "den"}), TIE_KEYS)


def unit_groups(
    data: RespondentData,
    tie_frame: pl.DataFrame,
    tie_moments: pl.DataFrame,
    raters: pl.DataFrame,
    denominators: pl.DataFrame,
    tree: UnitTree,
) -> pl.DataFrame:
    """unit, rollup, persp, mid + moments, for every unit cell with at least one respondent."""
    self_scores = data.scores.filter(pl.col("target") == SELF)
    members = packed_group_by(self_scores, ["a", "mid"], _moments("x", _is_wide(self_scores, "x")))
    members = members.rename({"a": "unit"}).with_columns(s1=pl.col("s1").cast(pl.Int128))
    members = members.with_columns(s2=pl.col("s2").cast(pl.Int128))
    members_rollup = (
        members.join(tree.rollup_ancestors.select("unit", "p"), on="unit")
        .group_by("p", "mid")
        .agg(pl.col("n").sum(), pl.col("s1").sum(), pl.col("s2").sum())
        .rename({"p": "unit"})
    )
    sums = [pl.col("n").sum(), pl.col("s1").sum(), pl.col("s2").sum()]
    internal = tie_moments.filter(pl.col("from") == pl.col("to")).select(
        pl.col("from").alias("unit"), "mid", "n", "s1", "s2"
    )
    incoming = (
        tie_moments.filter(pl.col("from") != pl.col("to"))
        .group_by("to", "mid")
        .agg(sums)
        .rename({"to": "unit"})
    )
    direct = pl.concat(
        [
            _tag(members, False, MEMBERS),
            _tag(members_rollup, True, MEMBERS),
            _tag(internal, False, INTERNAL),
            _tag(incoming, False, INCOMING),
        ],
        how="vertical_relaxed",
    )
    direct = direct.join(denominators, on="mid").rename({"L": "den"})
    return pl.concat(
        [_finish(direct, UNIT_KEYS), rater_groups(raters, denominators)], how="vertical_relaxed"
    )


def _tag(frame: pl.DataFrame, rollup: bool, persp: int) -> pl.DataFrame:
    return frame.select(
        pl.col("unit").cast(pl.Int32),
        pl.lit(rollup).alias("rollup"),
        pl.lit(persp, dtype=pl.Int8).alias("persp"),
        pl.col("mid").cast(pl.Int32),
        pl.col("n").cast(pl.Int64),
        pl.col("s1").cast(pl.Int128),
        pl.col("s2").cast(pl.Int128),
    )


def rater_means(tie_frame: pl.DataFrame, tree: UnitTree) -> pl.DataFrame:
    """unit, rollup, persp, mid, r, y (Int64 sum of the rater's tie scores x), m (their count):
    the per-rater means y / (L·m) behind outgoing cells and roll-up internal/incoming/outgoing.

    Ties are sorted by (rater, measure, pre-order of the target) once. A rater's ties for one
    measure are then a contiguous block, and within it the targets in any subtree are a
    contiguous run, so every per-rater sum is a ``np.add.reduceat`` over runs."""
    if tie_frame.height == 0:
        return pl.DataFrame(schema=RATER_SCHEMA)
    n_units = tree.count
    mids = int(tie_frame["mid"].max()) + 1  # type: ignore[arg-type]
    block_key = tie_frame["r"].cast(pl.Int64) * mids + tie_frame["mid"].cast(pl.Int64)
    b_all = tie_frame["b"].to_numpy()
    order = (block_key * n_units + pl.Series(tree.preorder[b_all])).arg_sort().to_numpy()
    block = block_key.to_numpy()[order]
    r = tie_frame["r"].to_numpy()[order]
    a = tie_frame["a"].to_numpy()[order].astype(np.int64)
    b = b_all[order].astype(np.int64)
    mid = tie_frame["mid"].to_numpy()[order]
    x = tie_frame["x"].to_numpy()[order]
    starts = _run_starts(block)
    out = _Emitter(r[starts], mid[starts])

    external = a != b
    out.add(a[starts], False, OUTGOING, *_sums(x, external, starts))
    if tree.rollup_ancestors.height == 0:
        return out.frame()

    lca = tree.lca_depth[a, b]
    total_y, total_m = _sums(x, np.ones(len(x), dtype=bool), starts)
    rater_unit = a[starts]
    for depth in range(tree.ancestor_at.shape[1]):
        # the rater's ancestor p at this depth: targets with lca(a, b) ≥ depth are inside S(p)
        p = tree.ancestor_at[rater_unit, depth]
        rolled = (p >= 0) & tree.has_children[np.maximum(p, 0)]
        if rolled.any():
            in_y, in_m = _sums(x, lca >= depth, starts)
            out.add(p, True, INTERNAL, in_y, in_m, rolled)
            out.add(p, True, OUTGOING, total_y - in_y, total_m - in_m, rolled)
        # the target's ancestor q at this depth, when the rater is outside S(q)
        q = tree.ancestor_at[b, depth]
        into = (q >= 0) & tree.has_children[np.maximum(q, 0)] & (lca < depth)
        if into.any():
            rows = np.flatnonzero(into)
            run = _run_starts(block[rows] * n_units + q[rows])
            first = rows[run]
            y = np.add.reduceat(x[rows], run)
            m = np.diff(np.r_[run, len(rows)])
            out.add_rows(q[first], True, INCOMING, r[first], mid[first], y, m)
    return out.frame()


RATER_SCHEMA = {
    "unit": pl.Int32,
    "rollup": pl.Boolean,
    "persp": pl.Int8,
    "mid": pl.Int32,
    "r": pl.Int32,
    "y": pl.Int64,
    "m": pl.Int64,
}


def _run_starts(key: np.ndarray) -> np.ndarray:
    if len(key) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, key[1:] != key[:-1]])


def _sums(x: np.ndarray, mask: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.add.reduceat(np.where(mask, x, 0), starts),
        np.add.reduceat(mask.astype(np.int64), starts),
    )


class _Emitter:
    """Collects per-rater rows; a row is kept when the rater has at least one tie in it."""

    def __init__(self, r: np.ndarray, mid: np.ndarray) -> None:
        self.r, self.mid = r, mid
        self.parts: list[dict[str, np.ndarray]] = []

    def add(
        self,
        unit: np.ndarray,
        rollup: bool,
        persp: int,
        y: np.ndarray,
        m: np.ndarray,
        mask: np.ndarray | None = None,
    ) -> None:
        keep = m > 0 if mask is None else mask & (m > 0)
        self.add_rows(unit[keep], rollup, persp, self.r[keep], self.mid[keep], y[keep], m[keep])

    def add_rows(
        self,
        unit: np.ndarray,
        rollup: bool,
        persp: int,
        r: np.ndarray,
        mid: np.ndarray,
        y: np.ndarray,
        m: np.ndarray,
    ) -> None:
        size = len(unit)
        self.parts.append(
            {
                "unit": unit,
                "rollup": np.full(size, rollup),
                "persp": np.full(size, persp),
                "mid": mid,
                "r": r,
                "y": y,
                "m": m,
            }
        )

    def frame(self) -> pl.DataFrame:
        columns = {
            name: np.concatenate([p[name] for p in self.parts]) for name in RATER_SCHEMA
        }
        return pl.DataFrame(columns).cast(RATER_SCHEMA)  # type: ignore[arg-type]


def rater_groups(raters: pl.DataFrame, denominators: pl.DataFrame) -> pl.DataFrame:
    """Moment groups of per-rater means: one group per (cell, m), den = L·m."""
    keys = [*UNIT_KEYS, "m"]
    grouped = packed_group_by(raters.select(*keys, "y"), keys, _moments("y", _is_wide(raters, "y")))
    grouped = grouped.join(denominators, on="mid").with_columns(den=pl.col("L") * pl.col("m"))
    return _finish(grouped, UNIT_KEYS)


def direct_values(data: RespondentData, tie_frame: pl.DataFrame, tree: UnitTree) -> pl.DataFrame:
    """unit, rollup, persp, mid, r, x: respondent-level values of cells that hold one score per
    respondent (members, internal and incoming without roll-up). Used by ``cell_values``."""
    self_scores = data.scores.filter(pl.col("target") == SELF).select(
        pl.col("a").alias("unit"), "mid", "r", "x"
    )
    rollup = self_scores.join(tree.rollup_ancestors.select("unit", "p"), on="unit").select(
        pl.col("p").alias("unit"), "mid", "r", "x"
    )
    internal = tie_frame.filter(pl.col("a") == pl.col("b")).select(
        pl.col("a").alias("unit"), "mid", "r", "x"
    )
    incoming = tie_frame.filter(pl.col("a") != pl.col("b")).select(
        pl.col("b").alias("unit"), "mid", "r", "x"
    )
    parts = [
        (self_scores, False, MEMBERS),
        (rollup, True, MEMBERS),
        (internal, False, INTERNAL),
        (incoming, False, INCOMING),
    ]
    return pl.concat(
        [
            f.select(
                pl.col("unit").cast(pl.Int32),
                pl.lit(rollup_flag).alias("rollup"),
                pl.lit(persp, dtype=pl.Int8).alias("persp"),
                pl.col("mid").cast(pl.Int32),
                pl.col("r").cast(pl.Int32),
                pl.col("x").cast(pl.Int64),
            )
            for f, rollup_flag, persp in parts
        ]
    )
