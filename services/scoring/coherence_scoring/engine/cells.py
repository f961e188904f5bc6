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
    the per-rater means y / (L·m) behind outgoing cells and roll-up internal/incoming/outgoing."""
    per_rater = [pl.col("x").sum().alias("y"), pl.len().cast(pl.Int64).alias("m")]
    external = tie_frame.filter(pl.col("a") != pl.col("b"))
    outgoing = packed_group_by(external, ["a", "r", "mid"], per_rater).select(
        pl.col("a").alias("unit"),
        pl.lit(False).alias("rollup"),
        pl.lit(OUTGOING, dtype=pl.Int8).alias("persp"),
        "mid",
        "r",
        "y",
        "m",
    )
    if tree.rollup_ancestors.height == 0:
        return outgoing
    with_lca = tie_frame.with_columns(lca_column(tie_frame, tree))

    # internal / outgoing roll-ups of each ancestor p of the rater's unit: a tie about b is inside
    # S(p) exactly when lca(a, b) is at p's depth or deeper
    buckets = packed_group_by(
        with_lca, ["a", "lca", "r", "mid"], [pl.col("x").sum().alias("y"), pl.len().alias("m")]
    )
    own = tree.rollup_ancestors.rename({"unit": "a"})
    inside_outside = (
        buckets.join(own, on="a")
        .with_columns(
            persp=pl.when(pl.col("lca") >= pl.col("p_depth"))
            .then(pl.lit(INTERNAL, dtype=pl.Int8))
            .otherwise(pl.lit(OUTGOING, dtype=pl.Int8))
        )
        .select("p", "persp", "mid", "r", "y", pl.col("m").cast(pl.Int64))
    )
    inside_outside = packed_group_by(
        inside_outside, ["p", "persp", "mid", "r"], [pl.col("y").sum(), pl.col("m").sum()]
    )

    # incoming roll-ups of each ancestor p of the target deeper than lca(a, b): S(p) holds b
    # but not the rater
    theirs = tree.rollup_ancestors.rename({"unit": "b"})
    incoming = (
        with_lca.join(theirs, on="b")
        .filter(pl.col("p_depth") > pl.col("lca"))
        .select("p", "mid", "r", "x")
    )
    incoming = packed_group_by(incoming, ["p", "mid", "r"], per_rater).with_columns(
        persp=pl.lit(INCOMING, dtype=pl.Int8)
    )
    rollups = pl.concat(
        [inside_outside, incoming.select(inside_outside.columns)], how="vertical_relaxed"
    ).select(
        pl.col("p").alias("unit"),
        pl.lit(True).alias("rollup"),
        "persp",
        "mid",
        "r",
        "y",
        "m",
    )
    return pl.concat([outgoing, rollups], how="vertical_relaxed")


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
