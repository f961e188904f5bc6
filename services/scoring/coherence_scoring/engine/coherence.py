"""The coherence index (SCORING.md §3, scoring-decisions.md "Coherence").

Per unit and roll-up flag: the mean of three published means — relational capacity (the mean of
the published ``internal`` and ``incoming`` index means, or the one that is published),
relational leadership ``members`` index and psychological safety ``members`` index. ``n`` is the
smallest ``n`` of the inputs used; sd, interval and rwg are null. It is computed after the
protection, from published rows only, so it adds nothing an attacker could not compute.
"""

from __future__ import annotations

from fractions import Fraction

import polars as pl

from coherence_core.instruments.model import (
    PSYCHOLOGICAL_SAFETY,
    RELATIONAL_CAPACITY,
    RELATIONAL_LEADERSHIP,
    InstrumentDefinition,
)
from coherence_scoring.engine.describe import band_of
from coherence_scoring.engine.layout import INCOMING, INDEX, INTERNAL, MEMBERS, Measures
from coherence_scoring.engine.types import ScoringSettings

MIN_GROUP_SIZE, COMPLEMENTARY = "min_group_size", "complementary"
# input states
_PUBLISHED, _MISSING, _MIN_GROUP, _COMPLEMENTARY = 0, 1, 2, 3


def coherence_rows(
    unit_rows: pl.DataFrame,
    instrument: InstrumentDefinition,
    measures: Measures,
    mid: int,
    settings: ScoringSettings,
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
        "band": pl.String,
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
            pl.col("num").alias(f"{name}_num"),
            pl.col("den").alias(f"{name}_den"),
            pl.col("n").alias(f"{name}_n"),
            _state().alias(f"{name}_state"),
        )
        table = part if table is None else table.join(part, on=keys, how="full", coalesce=True)
    assert table is not None
    table = table.with_columns(pl.col(f"{name}_state").fill_null(_MISSING) for name in inputs).sort(
        keys
    )

    def published(name: str) -> pl.Expr:
        return pl.col(f"{name}_state") == _PUBLISHED

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
    out = table.with_columns(_published=all_published)
    exact = [_exact_mean(row) for row in out.iter_rows(named=True)]
    return out.select(
        pl.col("unit").cast(pl.Int32),
        pl.col("rollup"),
        pl.lit(MEMBERS, dtype=pl.Int8).alias("persp"),
        pl.lit(mid, dtype=pl.Int32).alias("mid"),
        pl.when(all_published).then(used_n).cast(pl.Int64).alias("n"),
        pl.Series("mean", [None if m is None else float(m) for m in exact], dtype=pl.Float64),
        pl.Series("band", [band_of(m, settings) for m in exact], dtype=pl.String),
        (~all_published).alias("suppressed"),
        pl.when(all_published)
        .then(pl.lit(None, dtype=pl.String))
        .when(any_min_group)
        .then(pl.lit(MIN_GROUP_SIZE))
        .otherwise(pl.lit(COMPLEMENTARY))
        .alias("suppression_reason"),
    )


def _exact_mean(row: dict[str, object]) -> Fraction | None:
    """(capacity + leadership + safety) / 3 as an exact fraction, from the inputs' exact
    published means; capacity is the mean of its published internal and incoming means."""
    if not row["_published"]:
        return None

    def mean(name: str) -> Fraction | None:
        if row[f"{name}_state"] != _PUBLISHED:
            return None
        return Fraction(int(row[f"{name}_num"]), int(row[f"{name}_den"]))  # type: ignore[call-overload]

    capacity = [m for m in (mean("int"), mean("inc")) if m is not None]
    rl, ps = mean("rl"), mean("ps")
    assert capacity and rl is not None and ps is not None
    return (sum(capacity, Fraction(0)) / len(capacity) + rl + ps) / 3


def _state() -> pl.Expr:
    return (
        pl.when(~pl.col("suppressed"))
        .then(_PUBLISHED)
        .when(pl.col("suppression_reason") == MIN_GROUP_SIZE)
        .then(_MIN_GROUP)
        .otherwise(_COMPLEMENTARY)
    )
