"""The anonymity rules (SCORING.md §5) — the one place they are implemented.

Rule 1: a row computed from fewer than ``k`` respondents is suppressed (``min_group_size``).
Rule 2 (no differencing): in every family — a published aggregate and the disjoint parts it is
made of — the suppressed parts must hold 0 or at least ``k`` respondents. While they hold 1..k−1,
the published part with the smallest ``n`` (ties broken by its unit's external id, then the
``to`` unit's) is suppressed too (``complementary``); when no published part is left, the
aggregate is. The families (scoring-decisions.md), per scale and measure:

1. incoming column: the ``incoming`` row of unit b (no roll-up) → the ties R[a,b], a ≠ b;
2. hierarchy: the ``members`` roll-up row of p → p's direct row and, per child c, c's roll-up
   row when c has children, else c's direct row;
3. organisation: all respondents (published as the summary's scale mean) → each root's row
   (roll-up when the root has children).

Participation rows form families 2 and 3 too, with ``respondents`` as n. Every family is checked
whether or not its aggregate is itself suppressed, and the families are re-checked until nothing
changes (suppression only grows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from coherence_scoring.engine.layout import INCOMING, MEMBERS, UnitTree

MIN_GROUP_SIZE = "min_group_size"
COMPLEMENTARY = "complementary"
#: ``mid`` of participation rows in the families below (they have no measure).
PARTICIPATION = -1
_ORG = -1


@dataclass(frozen=True)
class Published:
    """The inputs with ``suppressed`` and ``suppression_reason`` columns added."""

    unit_rows: pl.DataFrame
    tie_rows: pl.DataFrame
    participation: pl.DataFrame
    #: mid (or PARTICIPATION) → whether the organisation-wide aggregate is suppressed
    organisation_suppressed: dict[int, bool]


def apply_rules(
    unit_rows: pl.DataFrame,
    tie_rows: pl.DataFrame,
    participation: pl.DataFrame,
    tree: UnitTree,
    k: int,
) -> Published:
    """unit_rows: unit, rollup, persp, mid, n, …; tie_rows: from, to, mid, n, …;
    participation: unit, rollup, respondents, …."""
    rank = pl.Series(tree.external_rank)
    n_u, n_t, n_p = unit_rows.height, tie_rows.height, participation.height
    units = unit_rows.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("rid"),
        "unit",
        "rollup",
        "persp",
        "mid",
        pl.col("n").cast(pl.Int64),
    )
    ties = tie_rows.select(
        (pl.int_range(pl.len(), dtype=pl.Int64) + n_u).alias("rid"),
        "from",
        "to",
        "mid",
        pl.col("n").cast(pl.Int64),
    )
    parts_p = participation.select(
        (pl.int_range(pl.len(), dtype=pl.Int64) + n_u + n_t).alias("rid"),
        "unit",
        "rollup",
        pl.lit(PARTICIPATION, dtype=pl.Int32).alias("mid"),
        pl.col("respondents").cast(pl.Int64).alias("n"),
    )

    # family 1: incoming column of b
    incoming = units.filter(~pl.col("rollup") & (pl.col("persp") == INCOMING)).select(
        pl.col("unit").alias("to"), "mid", pl.col("rid").alias("agg")
    )
    column_parts = ties.filter(pl.col("from") != pl.col("to")).select(
        "rid", "to", "mid", rank1=pl.col("from"), rank2=pl.col("to")
    )
    fam1 = column_parts.join(incoming, on=["to", "mid"], how="left").select(
        fam=pl.struct(pl.lit(1), "to", "mid"), rid="rid", agg="agg", rank1="rank1", rank2="rank2"
    )

    # families 2 and 3: members rows and participation rows
    members = pl.concat(
        [
            units.filter(pl.col("persp") == MEMBERS).select("rid", "unit", "rollup", "mid", "n"),
            parts_p,
        ],
        how="vertical_relaxed",
    )
    has_children = pl.Series(tree.has_children)
    parent = pl.Series(tree.parent)
    members = members.with_columns(
        fam_unit=pl.when(pl.col("unit").gather(pl.col("unit")).is_null())
        .then(None)
        .otherwise(None)
    ) if False else _family_units(members, has_children, parent)
    aggregates = members.filter(pl.col("rollup")).select(
        pl.col("unit").alias("fam_unit"), "mid", pl.col("rid").alias("agg")
    )
    organisation = (
        members.filter(pl.col("fam_unit") == _ORG)
        .group_by("mid")
        .agg(pl.col("n").sum())
        .sort("mid")
        .with_columns(
            agg=pl.int_range(pl.len(), dtype=pl.Int64) + n_u + n_t + n_p,
            fam_unit=pl.lit(_ORG, dtype=pl.Int64),
        )
    )
    aggregates = pl.concat(
        [aggregates, organisation.select("fam_unit", "mid", "agg")], how="vertical_relaxed"
    )
    fam23 = (
        members.filter(pl.col("fam_unit").is_not_null())
        .join(aggregates, on=["fam_unit", "mid"], how="left")
        .select(
            fam=pl.struct(pl.lit(2), "fam_unit", "mid"),
            rid="rid",
            agg="agg",
            rank1="unit",
            rank2=pl.lit(0, dtype=pl.Int64),
        )
    )
    families = pl.concat([fam1, fam23], how="vertical_relaxed").with_columns(
        rank1=pl.col("rank1").cast(pl.Int64).replace_strict(
            pl.Series(np.arange(tree.count)), rank, default=0
        ),
        fam=pl.col("fam").rank("dense").cast(pl.Int64),
    )

    n_all = pl.concat(
        [
            units.select("n"),
            ties.select("n"),
            parts_p.select("n"),
            organisation.select("n"),
        ],
        how="vertical_relaxed",
    )["n"].to_numpy()
    suppressed, reason = _repair(families, n_all, k)

    def status(frame: pl.DataFrame, offset: int) -> pl.DataFrame:
        s = suppressed[offset : offset + frame.height]
        rc = reason[offset : offset + frame.height]
        return frame.with_columns(
            suppressed=pl.Series(s, dtype=pl.Boolean),
            suppression_reason=pl.Series(
                np.where(rc == 1, MIN_GROUP_SIZE, np.where(rc == 2, COMPLEMENTARY, None)),
                dtype=pl.String,
            ),
        )

    org_flags = suppressed[n_u + n_t + n_p :]
    return Published(
        unit_rows=status(unit_rows, 0),
        tie_rows=status(tie_rows, n_u),
        participation=status(participation, n_u + n_t),
        organisation_suppressed={
            int(m): bool(f) for m, f in zip(organisation["mid"].to_list(), org_flags, strict=True)
        },
    )
