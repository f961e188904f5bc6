"""Which respondents' responses make up each row, as exact integer sums (SCORING.md §3).

A unit row is (unit, rollup, persp, mid); a tie row is (from, to, mid). For every row this module
produces *moment groups*: ``Y`` and ``M``, the sum and number of the counted responses it pools
(the pooled mean is ``Y / M``), and ``n``, ``s1 = Σ num`` and ``s2 = Σ num²`` of the people's own
values ``num / den`` in the row (for the spread). All values of a group share ``den``: a row of
one referent per person has one group (den = the measure's ``L``, num = the person's ``x``); a row
pooling several referents per person (raters.py) has one group per number of responses a person
has in it (den = that number, num = the sum of their responses). describe.py turns the groups
into statistics.

Perspectives (docs/scoring-decisions.md, "Base cells and rows"):
- members: respondents of the unit (roll-up: of its subtree);
- internal: raters in the unit about the unit (roll-up: about units of the subtree);
- incoming: raters outside the unit (subtree) about it (units of the subtree);
- outgoing: raters in the unit (subtree) about units outside it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from coherence_scoring.engine.layout import INCOMING, INTERNAL, MEMBERS, UnitTree
from coherence_scoring.engine.respondent import RespondentData, Wide

UNIT_KEYS = ["unit", "rollup", "persp", "mid"]
TIE_KEYS = ["from", "to", "mid"]
MOMENTS = {"n": pl.Int64, "s1": pl.Int128, "s2": pl.Int128, "Y": pl.Int64, "M": pl.Int64}
_SUMMED = [pl.col(c).sum() for c in MOMENTS]

Ints = npt.NDArray[np.int64]


def run_starts(key: Ints) -> Ints:
    """Where a new run of equal keys starts in a sorted key array."""
    if len(key) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, key[1:] != key[:-1]])


def exact_sum(values: npt.NDArray[np.int64], starts: Ints) -> npt.NDArray[np.generic]:
    """Run sums along axis 0, in int64 when they cannot overflow, else in Python integers."""
    if len(starts) == 0:
        return np.zeros((0, *values.shape[1:]), dtype=np.int64)
    top = float(np.abs(values).max(initial=0))
    longest = float(np.diff(np.r_[starts, len(values)]).max())
    if top * longest < 2**62:
        return np.add.reduceat(values, starts, axis=0)
    return np.add.reduceat(values.astype(object), starts, axis=0)


def square_sum(values: npt.NDArray[np.int64], starts: Ints) -> npt.NDArray[np.generic]:
    top = float(np.abs(values).max(initial=0))
    if top * top < 2**62:
        return exact_sum(values * values, starts)
    as_objects = values.astype(object)
    return np.add.reduceat(as_objects * as_objects, starts, axis=0)


def int128(values: npt.NDArray[np.generic]) -> pl.Series:
    if values.dtype == object:
        return pl.Series([int(v) for v in values], dtype=pl.Int128)
    return pl.Series(values.astype(np.int64)).cast(pl.Int128)


def _grouped(wide: Wide, key: Ints) -> tuple[Ints, Ints, pl.DataFrame]:
    """Moments per (group of rows with equal key, column): (first row of each group, the
    group of each moment, moments frame with columns mid, n, s1, s2, Y, M)."""
    order = np.argsort(key, kind="stable")
    starts = run_starts(key[order])
    has = wide.has[order]
    n = np.add.reduceat(has.astype(np.int64), starts, axis=0) if len(starts) else has
    s1 = exact_sum(wide.x[order], starts)
    s2 = square_sum(wide.x[order], starts)
    big_y = np.add.reduceat(wide.y[order], starts, axis=0) if len(starts) else has
    big_m = np.add.reduceat(wide.m[order], starts, axis=0) if len(starts) else has
    group, col = np.nonzero(n)
    moments = pl.DataFrame(
        {
            "mid": wide.mids[col].astype(np.int32),
            "n": n[group, col].astype(np.int64),
            "s1": int128(s1[group, col]),
            "s2": int128(s2[group, col]),
            "Y": big_y[group, col].astype(np.int64),
            "M": big_m[group, col].astype(np.int64),
        }
    )
    return order[starts], group, moments


def tie_groups(ties: Wide, denominators: pl.DataFrame, n_units: int) -> pl.DataFrame:
    """from, to, mid, den, n, s1, s2, Y, M: the ties R[a,b] (raters = direct members of a)."""
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
    """unit, rollup, persp, mid, den, n, s1, s2, Y, M for every unit row with a response;
    ``rater_moments`` are the groups of the rows pooling several referents (raters.py)."""
    home = data.selves.column("a")
    first, group, members = _grouped(data.selves, home)
    members = members.with_columns(pl.Series("unit", home[first][group].astype(np.int32)))
    members_rollup = (
        members.join(tree.rollup_ancestors.select("unit", "p"), on="unit")
        .group_by("p", "mid")
        .agg(_SUMMED)
        .rename({"p": "unit"})
    )
    internal = (
        tie_moments.filter(pl.col("from") == pl.col("to")).rename({"from": "unit"}).drop("den")
    )
    incoming = (
        tie_moments.filter(pl.col("from") != pl.col("to"))
        .group_by("to", "mid")
        .agg(_SUMMED)
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
