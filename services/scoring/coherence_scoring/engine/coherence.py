"""The coherence index (SCORING.md §3, scoring-decisions.md "Coherence").

Per unit and roll-up flag: the mean of three published means — relational capacity (the mean of
the published ``internal`` and ``incoming`` index means, or the one that is published),
relational leadership ``members`` index and psychological safety ``members`` index. ``n`` is the
smallest ``n`` of the inputs used; sd, interval and rwg are null. It is computed after the
protection, from published rows only, so it adds nothing an attacker could not compute.
"""

from __future__ import annotations

import polars as pl

from coherence_core.instruments.model import (
    PSYCHOLOGICAL_SAFETY,
    RELATIONAL_CAPACITY,
    RELATIONAL_LEADERSHIP,
    InstrumentDefinition,
)
from coherence_scoring.engine.layout import INCOMING, INDEX, INTERNAL, MEMBERS, Measures

MIN_GROUP_SIZE, COMPLEMENTARY = "min_group_size", "complementary"
# input states
_PUBLISHED, _MISSING, _MIN_GROUP, _COMPLEMENTARY = 0, 1, 2, 3


def coherence_rows(
    unit_rows: pl.DataFrame, instrument: InstrumentDefinition, measures: Measures, mid: int
) -> pl.DataFrame:
    """unit, rollup, persp, mid, n, mean, suppressed, suppression_reason for every unit and
    roll-up flag with at least one input row; empty when the instrument has no coherence index.
    ``unit_rows`` are the rows after both anonymity rules."""
    schema = {
        "unit": pl.Int32,
        "rollup": pl.Boolean,
        "persp": pl.Int8,
        "mid": pl.Int32,
        "n": pl.Int64,
        "mean": pl.Float64,
        "suppressed": pl.Boolean,
        "suppression_reason": pl.String,
    }
    if not instrument.has_coherence_index:
        return pl.DataFrame(schema=schema)
    index_mid = {
        row["scale"]: row["mid"]
        for row in measures.frame.filter(pl.col("kind") == INDEX).iter_rows(named=True)
    }
    inputs = {
        "int": (index_mid[RELATIONAL_CAPACITY], INTERNAL),
        "inc": (index_mid[RELATIONAL_CAPACITY], INCOMING),
        "rl": (index_mid[RELATIONAL_LEADERSHIP], MEMBERS),
        "ps": (index_mid[PSYCHOLOGICAL_SAFETY], MEMBERS),
    }
    keys = ["unit", "rollup"]
    table: pl.DataFrame | None = None
    for name, (m, persp) in inputs.items():
        part = unit_rows.filter((pl.col("mid") == m) & (pl.col("persp") == persp)).select(
            *keys,
            pl.col("mean").alias(f"{name}_mean"),
            pl.col("n").alias(f"{name}_n"),
            _state().alias(f"{name}_state"),
        )
        table = part if table is None else table.join(part, on=keys, how="full", coalesce=True)
    assert table is not None
    table = table.with_columns(pl.col(f"{name}_state").fill_null(_MISSING) for name in inputs)

    def published(name: str) -> pl.Expr:
        return pl.col(f"{name}_state") == _PUBLISHED

    rc_mean = (
        pl.when(published("int") & published("inc"))
        .then((pl.col("int_mean") + pl.col("inc_mean")) / 2.0)
        .when(published("int"))
        .then(pl.col("int_mean"))
        .when(published("inc"))
        .then(pl.col("inc_mean"))
    )
    rc_state = (
        pl.when(published("int") | published("inc"))
        .then(_PUBLISHED)
        .when((pl.col("int_state") == _MISSING) & (pl.col("inc_state") == _MISSING))
        .then(_MISSING)
        .when((pl.col("int_state") == _MIN_GROUP) | (pl.col("inc_state") == _MIN_GROUP))
        .then(_MIN_GROUP)
        .otherwise(_COMPLEMENTARY)
    )
    used_n = pl.min_horizontal(
        pl.when(published("int")).then(pl.col("int_n")),
        pl.when(published("inc")).then(pl.col("inc_n")),
        pl.col("rl_n"),
        pl.col("ps_n"),
    )
    states = [rc_state, pl.col("rl_state"), pl.col("ps_state")]
    all_published = pl.all_horizontal([s == _PUBLISHED for s in states])
    any_min_group = pl.any_horizontal([s.is_in([_MISSING, _MIN_GROUP]) for s in states])
    return table.select(
        pl.col("unit").cast(pl.Int32),
        pl.col("rollup"),
        pl.lit(MEMBERS, dtype=pl.Int8).alias("persp"),
        pl.lit(mid, dtype=pl.Int32).alias("mid"),
        pl.when(all_published).then(used_n).cast(pl.Int64).alias("n"),
        pl.when(all_published)
        .then((rc_mean + pl.col("rl_mean") + pl.col("ps_mean")) / 3.0)
        .alias("mean"),
        (~all_published).alias("suppressed"),
        pl.when(all_published)
        .then(pl.lit(None, dtype=pl.String))
        .when(any_min_group)
        .then(pl.lit(MIN_GROUP_SIZE))
        .otherwise(pl.lit(COMPLEMENTARY))
        .alias("suppression_reason"),
    )


def _state() -> pl.Expr:
    return (
        pl.when(~pl.col("suppressed"))
        .then(_PUBLISHED)
        .when(pl.col("suppression_reason") == MIN_GROUP_SIZE)
        .then(_MIN_GROUP)
        .otherwise(_COMPLEMENTARY)
    )
