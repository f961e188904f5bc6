"""Participation rows: respondents, headcount and response rate per unit (and roll-up).

A roll-up row's headcount is the sum of the headcounts in the subtree, and is unknown when any
unit of the subtree has no headcount. Anonymity (rule 1, families 2 and 3) is applied by
the anonymity package like every other row.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from coherence_scoring.engine.layout import UnitTree
from coherence_scoring.engine.respondent import RespondentData


def participation_rows(data: RespondentData, tree: UnitTree) -> pl.DataFrame:
    """unit, rollup, respondents, headcount, response_rate for units with ≥ 1 respondent."""
    counts = np.bincount(data.home, minlength=tree.count).astype(np.int64)
    headcount = pl.Series("headcount", tree.headcount, dtype=pl.Int64)
    direct = pl.DataFrame(
        {
            "unit": np.arange(tree.count, dtype=np.int32),
            "respondents": counts,
            "headcount": headcount,
        }
    )
    rollup = (
        direct.join(tree.rollup_ancestors.select("unit", "p"), on="unit")
        .group_by("p")
        .agg(
            pl.col("respondents").sum(),
            pl.when(pl.col("headcount").null_count() == 0).then(pl.col("headcount").sum()),
        )
        .rename({"p": "unit"})
    )
    rows = pl.concat(
        [
            direct.with_columns(rollup=pl.lit(False)),
            rollup.with_columns(rollup=pl.lit(True)).select(
                pl.col("unit").cast(pl.Int32), "respondents", "headcount", "rollup"
            ),
        ],
        how="vertical_relaxed",
    )
    return rows.filter(pl.col("respondents") > 0).select(
        "unit",
        "rollup",
        "respondents",
        "headcount",
        response_rate=pl.when(pl.col("headcount") > 0).then(
            pl.col("respondents") / pl.col("headcount")
        ),
    )
