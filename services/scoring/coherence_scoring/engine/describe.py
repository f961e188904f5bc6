"""Statistics of a cell: n, mean, sd, t-interval, band, rwg / rwg(J), low_agreement.

Moment groups (cells.py) hold exact integer sums. A cell with one group gets its mean and sum of
squared deviations from exact integer arithmetic, rounded once; a cell with several groups (per-
rater means pooled over different numbers of ties) combines them in a fixed order (by
denominator), the numerically stable way (Chan et al.): M2 = Σ M2_g + Σ n_g (mean_g − mean)².
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from coherence_scoring.engine.layout import INTERNAL, MEMBERS, Measures, UnitTree
from coherence_scoring.engine.respondent import SELF, RespondentData
from coherence_scoring.engine.types import ScoringSettings

LOW_AGREEMENT = 0.70
STAT_COLUMNS = ["n", "mean", "sd", "ci_low", "ci_high"]


def finalize(groups: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """keys + n (Int64), mean, sd, ci_low, ci_high from moment groups (keys, den, n, s1, s2)."""
    g = groups.with_columns(
        mean_g=pl.col("s1").cast(pl.Float64)
        / (pl.col("n").cast(pl.Int128) * pl.col("den")).cast(pl.Float64),
        m2_g=(pl.col("n").cast(pl.Int128) * pl.col("s2") - pl.col("s1") * pl.col("s1")).cast(
            pl.Float64
        )
        / (pl.col("n").cast(pl.Int128) * pl.col("den") * pl.col("den")).cast(pl.Float64),
        _groups=pl.len().over(keys),
    )
    single = g.filter(pl.col("_groups") == 1).select(
        *keys, "n", pl.col("mean_g").alias("mean"), pl.col("m2_g").alias("m2")
    )
    pooled = _pool(g.filter(pl.col("_groups") > 1), keys)
    cells = pl.concat([single, pooled], how="vertical_relaxed")
    return _interval(cells)


def _pool(g: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    if g.height == 0:
        return pl.DataFrame(schema={**{k: g.schema[k] for k in keys}, **_POOLED})
    g = g.sort([*keys, "den"])
    key_frame = g.select(keys)
    starts = segment_starts(g, keys)
    n_g = g["n"].to_numpy().astype(np.float64)
    mean_g = g["mean_g"].to_numpy()
    m2_g = g["m2_g"].to_numpy()
    n = np.add.reduceat(n_g, starts)
    mean = np.add.reduceat(n_g * mean_g, starts) / n
    spread = np.repeat(mean, np.diff(np.r_[starts, g.height]))
    m2 = np.add.reduceat(m2_g, starts) + np.add.reduceat(n_g * (mean_g - spread) ** 2, starts)
    return key_frame[starts].with_columns(
        n=pl.Series(n.astype(np.int64)), mean=pl.Series(mean), m2=pl.Series(m2)
    )


_POOLED = {"n": pl.Int64, "mean": pl.Float64, "m2": pl.Float64}


def _interval(cells: pl.DataFrame) -> pl.DataFrame:
    """sd (ddof 1) and the 95% t-interval mean ± t(0.975, n−1)·sd/√n; null when n < 2."""
    n = cells["n"].to_numpy()
    unique_n, inverse = np.unique(n, return_inverse=True)
    t_unique = np.full(len(unique_n), np.nan)
    enough = unique_n >= 2
    t_unique[enough] = stats.t.ppf(0.975, unique_n[enough] - 1)
    t_q = t_unique[inverse.reshape(-1)]
    out = cells.with_columns(
        t_q=pl.Series(t_q, dtype=pl.Float64),
        sd=pl.when(pl.col("n") >= 2).then(
            (pl.col("m2").clip(lower_bound=0.0) / (pl.col("n") - 1).cast(pl.Float64)).sqrt()
        ),
    )
    half = pl.col("t_q") * pl.col("sd") / pl.col("n").cast(pl.Float64).sqrt()
    return out.with_columns(ci_low=pl.col("mean") - half, ci_high=pl.col("mean") + half).drop(
        "m2", "t_q"
    )


def segment_starts(frame: pl.DataFrame, keys: list[str]) -> np.ndarray:
    """Row positions where a new group starts in a frame sorted by ``keys``."""
    if frame.height == 0:
        return np.zeros(0, dtype=np.int64)
    changed = pl.any_horizontal([pl.col(k).ne_missing(pl.col(k).shift(1)) for k in keys])
    flags = frame.select(changed.fill_null(True))
    out = flags.to_series().to_numpy().copy()
    out[0] = True
    return np.flatnonzero(out)


def band(mean: pl.Expr, is_index: pl.Expr, settings: ScoringSettings) -> pl.Expr:
    """`weak` < weak_below ≤ `moderate` ≤ strong_above < `strong`; index measures only."""
    return (
        pl.when(~is_index | mean.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(mean < settings.weak_below)
        .then(pl.lit("weak"))
        .when(mean > settings.strong_above)
        .then(pl.lit("strong"))
        .otherwise(pl.lit("moderate"))
    )


def rwg(data: RespondentData, measures: Measures, tree: UnitTree) -> pl.DataFrame:
    """unit, rollup, persp, mid, rwg for members rows (roll-up or not) and internal rows
    without roll-up. rwg(J) = J(1 − q) / (J(1 − q) + q) with q = s̄²/σ²_EU (0 when q ≥ 1), over
    the items with at least 2 values among the row's respondents; one item gives 1 − q."""
    answers = data.answers
    about_self = answers.filter(pl.col("target") == SELF).with_columns(
        persp=pl.lit(MEMBERS, dtype=pl.Int8)
    )
    internal = answers.filter(pl.col("target") == pl.col("a")).with_columns(
        persp=pl.lit(INTERNAL, dtype=pl.Int8)
    )
    rows = pl.concat([about_self, internal])
    m_count = measures.count
    n_units = tree.count

    def score_key(r: pl.Expr, target: pl.Expr, mid: pl.Expr) -> pl.Expr:
        return (r.cast(pl.Int64) * (n_units + 1) + target + 1) * m_count + mid

    have = data.scores.select(_k=score_key(pl.col("r"), pl.col("target"), pl.col("mid")))
    in_groups = (
        rows.join(measures.item_groups, on="item")
        .rename({"gmid": "mid"})
        .with_columns(_k=score_key(pl.col("r"), pl.col("target"), pl.col("mid")))
        .join(have, on="_k", how="semi")
    )
    item_mid = pl.Series(measures.item_mid.astype(np.int32))
    single = rows.with_columns(
        mid=pl.col("item").replace_strict(
            pl.Series(np.arange(len(item_mid), dtype=np.int32)), item_mid
        )
    )
    keys = ["a", "persp", "mid", "item"]
    v = pl.col("v").cast(pl.Int64)
    sums = [pl.len().cast(pl.Int64).alias("n"), v.sum().alias("s1"), (v * v).sum().alias("s2")]
    direct = pl.concat(
        [
            in_groups.group_by(keys).agg(sums),
            single.group_by(keys).agg(sums),
        ]
    ).rename({"a": "unit"})
    rollup = (
        direct.filter(pl.col("persp") == MEMBERS)
        .join(tree.rollup_ancestors.select("unit", "p"), on="unit")
        .group_by("p", "persp", "mid", "item")
        .agg(pl.col("n").sum(), pl.col("s1").sum(), pl.col("s2").sum())
        .rename({"p": "unit"})
    )
    per_item = pl.concat(
        [
            direct.with_columns(rollup=pl.lit(False)),
            rollup.with_columns(rollup=pl.lit(True)).select(direct.columns + ["rollup"]),
        ],
        how="vertical_relaxed",
    )
    per_item = per_item.filter(pl.col("n") >= 2).with_columns(
        var=(pl.col("n") * pl.col("s2") - pl.col("s1") * pl.col("s1")).cast(pl.Float64)
        / (pl.col("n") * (pl.col("n") - 1)).cast(pl.Float64)
    )
    cell_keys = ["unit", "rollup", "persp", "mid"]
    per_item = per_item.sort([*cell_keys, "item"])
    if per_item.height == 0:
        mean_var = per_item.select(cell_keys).with_columns(
            j=pl.lit(0, dtype=pl.Int64), s_bar=pl.lit(0.0)
        )
    else:
        key_frame = per_item.select(cell_keys)
        starts = segment_starts(per_item, cell_keys)
        var = per_item["var"].to_numpy()
        j = np.diff(np.r_[starts, per_item.height])
        mean_var = key_frame[starts].with_columns(
            j=pl.Series(j.astype(np.int64)),
            s_bar=pl.Series(np.add.reduceat(var, starts) / j),
        )
    sigma = measures.frame.select(pl.col("mid"), pl.col("sigma_eu2"))
    q = pl.col("s_bar") / pl.col("sigma_eu2")
    j_expr = pl.col("j").cast(pl.Float64)
    return (
        mean_var.join(sigma, on="mid")
        .with_columns(
            rwg=pl.when(q >= 1.0)
            .then(pl.lit(0.0))
            .otherwise(j_expr * (1.0 - q) / (j_expr * (1.0 - q) + q))
        )
        .select(cell_keys + ["rwg"])
    )
