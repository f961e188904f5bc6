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

from coherence_scoring.engine.layout import INCOMING, INTERNAL, MEMBERS, UnitTree
from coherence_scoring.engine.respondent import RespondentData, Wide

UNIT_KEYS = ["unit", "rollup", "persp", "mid"]
TIE_KEYS = ["from", "to", "mid"]
MOMENTS = {"n": pl.Int64, "s1": pl.Int128, "s2": pl.Int128}

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


def int128(values: npt.NDArray[np.generic]) -> pl.Series:
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
            "s1": int128(s1[group, col]),
            "s2": int128(s2[group, col]),
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
    rater_moments: pl.DataFrame,
    denominators: pl.DataFrame,
    tree: UnitTree,
) -> pl.DataFrame:
    """unit, rollup, persp, mid, den, n, s1, s2 for every unit cell with a respondent;
    ``rater_moments`` are the groups of the per-rater cells (raters.py)."""
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
    return pl.concat([_with_den(direct, denominators, UNIT_KEYS), rater_moments])


def _tagged(frame: pl.DataFrame, rollup: bool, persp: int) -> pl.DataFrame:
    return frame.select(
        pl.col("unit").cast(pl.Int32),
        pl.lit(rollup).alias("rollup"),
        pl.lit(persp, dtype=pl.Int8).alias("persp"),
        pl.col("mid").cast(pl.Int32),
        *(pl.col(c).cast(t) for c, t in MOMENTS.items()),
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
