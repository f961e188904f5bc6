"""Statistics of a row: n, mean, sd, t-interval, band, rwg / rwg(J), low_agreement.

The mean is pooled (scoring method 2): the exact integer sum of the row's counted responses
divided once by their number. The spread describes the people's own values in the row: moment
groups (cells.py) hold exact integer sums of those values; a row with one group gets its sum of
squared deviations from exact integer arithmetic, rounded once; a row with several groups (people
with different numbers of responses in it) combines them in a fixed order (by denominator), the
numerically stable way (Chan et al.): M2 = Σ M2_g + Σ n_g (mean_g − mean)². The interval is
centred on the pooled mean.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import polars as pl
from scipy import stats

from coherence_scoring.engine.cells import run_starts
from coherence_scoring.engine.layout import INTERNAL, MEMBERS, Measures, UnitTree
from coherence_scoring.engine.respondent import RespondentData, Wide
from coherence_scoring.engine.types import ScoringSettings

LOW_AGREEMENT = 0.70


def finalize(groups: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """keys + n, Y, M, mean, sd, ci_low, ci_high from moment groups
    (keys, den, n, s1, s2, Y, M)."""
    g = groups.with_columns(
        mean_g=pl.col("s1").cast(pl.Float64)
        / (pl.col("n").cast(pl.Int128) * pl.col("den")).cast(pl.Float64),
        m2_g=(pl.col("n").cast(pl.Int128) * pl.col("s2") - pl.col("s1") * pl.col("s1")).cast(
            pl.Float64
        )
        / (pl.col("n").cast(pl.Int128) * pl.col("den") * pl.col("den")).cast(pl.Float64),
        _groups=pl.len().over(keys),
    )
    single = (
        g.filter(pl.col("_groups") == 1).select(*keys, "n", "Y", "M", "m2_g").rename({"m2_g": "m2"})
    )
    pooled = _pool(g.filter(pl.col("_groups") > 1), keys)
    cells = pl.concat([single, pooled], how="vertical_relaxed")
    cells = cells.with_columns(mean=pl.col("Y").cast(pl.Float64) / pl.col("M").cast(pl.Float64))
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
    big_y = np.add.reduceat(g["Y"].to_numpy().astype(np.int64), starts)
    big_m = np.add.reduceat(g["M"].to_numpy().astype(np.int64), starts)
    return key_frame[starts].with_columns(
        n=pl.Series(n.astype(np.int64)),
        Y=pl.Series(big_y),
        M=pl.Series(big_m),
        m2=pl.Series(m2),
    )


_POOLED = {"n": pl.Int64, "Y": pl.Int64, "M": pl.Int64, "m2": pl.Float64}


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


def thresholds(settings: ScoringSettings) -> tuple[Fraction, Fraction]:
    """The band thresholds as the exact decimals they are written as (3.8 is 19/5)."""
    return Fraction(str(settings.weak_below)), Fraction(str(settings.strong_above))


def band(num: pl.Expr, den: pl.Expr, is_index: pl.Expr, settings: ScoringSettings) -> pl.Expr:
    """`weak` < weak_below ≤ `moderate` ≤ strong_above < `strong`, index measures only, decided
    on the exact mean ``num / den`` (integers) against the exact thresholds."""
    weak, strong = thresholds(settings)
    return (
        pl.when(~is_index | num.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(num * weak.denominator < den * weak.numerator)
        .then(pl.lit("weak"))
        .when(num * strong.denominator > den * strong.numerator)
        .then(pl.lit("strong"))
        .otherwise(pl.lit("moderate"))
    )


def band_of(mean: Fraction | None, settings: ScoringSettings) -> str | None:
    """``band`` for one exact mean."""
    if mean is None:
        return None
    weak, strong = thresholds(settings)
    return "weak" if mean < weak else "strong" if mean > strong else "moderate"


def rwg(data: RespondentData, measures: Measures, tree: UnitTree) -> pl.DataFrame:
    """unit, rollup, persp, mid, rwg for members rows (roll-up or not) and internal rows
    without roll-up — where each respondent gives one answer set about one referent.

    rwg(J) = J(1 − q) / (J(1 − q) + q), q = s̄²/σ²_EU (0 when q ≥ 1), s̄² the mean variance of
    the measure's items over the row's respondents (those with the measure) who answered them,
    J the number of items with at least 2 such values (none → null). One item: 1 − q."""
    internal = data.ties.column("a") == data.ties.column("b")
    per_item = pl.concat(
        [
            _item_sums(data.selves, np.ones(data.selves.height, dtype=bool), measures, MEMBERS),
            _item_sums(data.ties, internal, measures, INTERNAL),
        ]
    )
    rollup = (
        per_item.filter(pl.col("persp") == MEMBERS)
        .join(tree.rollup_ancestors.select("unit", "p"), on="unit")
        .group_by("p", "persp", "mid", "pair")
        .agg(pl.col("n").sum(), pl.col("s1").sum(), pl.col("s2").sum())
        .select(pl.col("p").alias("unit"), "persp", "mid", "pair", "n", "s1", "s2")
    )
    cell_keys = ["unit", "rollup", "persp", "mid"]
    per_item = (
        pl.concat(
            [
                per_item.with_columns(rollup=pl.lit(False)),
                rollup.with_columns(rollup=pl.lit(True)),
            ]
        )
        .filter(pl.col("n") >= 2)
        .with_columns(
            var=(pl.col("n") * pl.col("s2") - pl.col("s1") * pl.col("s1")).cast(pl.Float64)
            / (pl.col("n") * (pl.col("n") - 1)).cast(pl.Float64)
        )
        .sort([*cell_keys, "pair"])
    )
    starts = segment_starts(per_item, cell_keys)
    j = np.diff(np.r_[starts, per_item.height]).astype(np.int64)
    s_bar = np.add.reduceat(per_item["var"].to_numpy(), starts) / j if len(starts) else j
    mean_var = per_item.select(cell_keys)[starts].with_columns(
        j=pl.Series(j, dtype=pl.Int64), s_bar=pl.Series(s_bar, dtype=pl.Float64)
    )
    q = pl.col("s_bar") / pl.col("sigma_eu2")
    j_expr = pl.col("j").cast(pl.Float64)
    return (
        mean_var.join(measures.frame.select("mid", "sigma_eu2"), on="mid")
        .with_columns(
            rwg=pl.when(q >= 1.0)
            .then(pl.lit(0.0))
            .otherwise(j_expr * (1.0 - q) / (j_expr * (1.0 - q) + q))
        )
        .select([*cell_keys, "rwg"])
    )


def _item_sums(wide: Wide, selected: np.ndarray, measures: Measures, persp: int) -> pl.DataFrame:
    """unit, persp, mid, pair, n, s1, s2: per home unit, measure and item of the measure, the
    item's values among the respondents with the measure (``pair`` orders items canonically)."""
    col_of = {int(m): j for j, m in enumerate(wide.mids)}
    group_cols, item_cols = [], []
    for item, item_mid in enumerate(measures.item_mid):
        if int(item_mid) not in col_of:
            continue
        for owner in (measures.index_mid[item], measures.subscale_mid[item], item_mid):
            if owner >= 0:
                group_cols.append(col_of[int(owner)])
                item_cols.append(col_of[int(item_mid)])
    g = np.array(group_cols, dtype=np.int64)
    i = np.array(item_cols, dtype=np.int64)
    rows = np.flatnonzero(selected)
    home = wide.column("a")[rows]
    order = rows[np.argsort(home, kind="stable")]
    starts = run_starts(wide.column("a")[order])
    schema = {"unit": pl.Int32, "persp": pl.Int8, "mid": pl.Int32, "pair": pl.Int64}
    if len(starts) == 0 or len(g) == 0:
        return pl.DataFrame(schema={**schema, "n": pl.Int64, "s1": pl.Int64, "s2": pl.Int64})
    mask = (wide.has[order][:, g] & wide.has[order][:, i]).astype(np.int64)
    v = wide.x[order][:, i] * mask
    n = np.add.reduceat(mask, starts, axis=0)
    s1 = np.add.reduceat(v, starts, axis=0)
    s2 = np.add.reduceat(v * v, starts, axis=0)
    unit, pair = np.nonzero(n)
    return pl.DataFrame(
        {
            "unit": wide.column("a")[order][starts][unit],
            "persp": np.full(len(unit), persp),
            "mid": wide.mids[g[pair]],
            "pair": pair,
            "n": n[unit, pair],
            "s1": s1[unit, pair],
            "s2": s2[unit, pair],
        }
    ).cast(schema)  # type: ignore[arg-type]
