"""The round summary (SCORING.md §4, docs/scoring-decisions.md "Summary").

The pooled means — a scale's organisation mean, the network's within and between means — are
rows of the publication like any other: the protection decides whether they are published and
``values`` carries them (exact, or with preview noise). α and ICC(1)/ICC(2) are computed from the
respondents' values and are null when they rest on fewer than ``k`` people, and in a preview (a
non-linear statistic recomputed at every version could be differenced). Statistics over published
rows (strong/weak shares, the reciprocity gap, the leadership–collaboration correlation) use the
rows after the protection, without roll-up. Units are taken in index order, items in instrument
order, so every sum is done in one fixed order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from coherence_core.instruments.model import RELATIONAL_CAPACITY, RELATIONAL_LEADERSHIP
from coherence_scoring.engine.cells import run_starts
from coherence_scoring.engine.layout import INCOMING, INDEX, MEMBERS, Measures, UnitTree
from coherence_scoring.engine.protection import BETWEEN, ORG, WITHIN
from coherence_scoring.engine.respondent import RespondentData, Wide

MIN_CORRELATION_UNITS = 4


def build_summary(
    *,
    data: RespondentData,
    measures: Measures,
    tree: UnitTree,
    unit_rows: pl.DataFrame,
    tie_rows: pl.DataFrame,
    values: dict[tuple[int, int], float | None],
    k: int,
    preview: bool,
) -> dict[str, Any]:
    """unit_rows / tie_rows: rows after the protection, with internal codes, ``suppressed``
    and ``band``; values: (kind, mid) → the published pooled mean or None."""
    index = measures.frame.filter(pl.col("kind") == INDEX)
    network_scale = _network_scale(index)
    scales: dict[str, Any] = {}
    for row in index.iter_rows(named=True):
        summary = _scale_summary(data, measures, row, k)
        if preview:
            summary.update(alpha=None, icc1=None, icc2=None)
        scales[row["scale"]] = {"mean": values.get((ORG, row["mid"])), **summary}
    network = None
    if network_scale is not None:
        network = _network(data, tree, network_scale, tie_rows, values)
    return {
        "respondents": int(data.respondents.height),
        "response_rate": _response_rate(data, tree),
        "scales": scales,
        "network": network,
        "leadership_collaboration": _leadership_collaboration(index, unit_rows, tree),
    }


def _response_rate(data: RespondentData, tree: UnitTree) -> float | None:
    """Respondents in units with a known headcount / those headcounts (presence, not answers:
    always published, SCORING.md §5.5)."""
    known = [u for u, h in enumerate(tree.headcount) if h is not None]
    total = sum(tree.headcount[u] or 0 for u in known)
    if not known or total <= 0:
        return None
    counts = np.bincount(data.home, minlength=tree.count)
    return float(counts[known].sum()) / float(total)


def distinct(r: np.ndarray) -> int:
    """The number of distinct respondents (dense indices) in ``r``."""
    return int(np.count_nonzero(np.bincount(r))) if len(r) else 0


def _present(wide: Wide, mid: int) -> np.ndarray:
    """The rows of ``wide`` that have a score for measure ``mid``."""
    return wide.has[:, wide.col(mid)] if mid in wide.mids else np.zeros(wide.height, dtype=bool)


def _scale_summary(
    data: RespondentData, measures: Measures, row: dict[str, Any], k: int
) -> dict[str, float | None]:
    """α and ICC of a scale (its mean is a published row: ``values``)."""
    mid, denominator = row["mid"], row["denominator"]
    wide = data.ties if row["unit_targeted"] else data.selves
    if wide.height == 0 or mid not in wide.mids:
        return {"alpha": None, "icc1": None, "icc2": None}
    col = wide.col(mid)
    present = wide.has[:, col]
    respondent = wide.column("r")
    # ICC: respondent scores by home unit (relational capacity: the internal tie); one score per
    # respondent, so the scores of the units used are as many as their respondents
    by_unit = present.copy()
    if row["unit_targeted"]:
        by_unit &= wide.column("a") == wide.column("b")
    icc1, icc2 = _icc(wide.column("a")[by_unit], wide.x[by_unit, col], denominator, k)
    items = measures.item_mid[measures.index_mid == mid]
    columns = [wide.col(int(m)) for m in items]
    alpha = _alpha(wide, columns, respondent, k)
    return {"alpha": alpha, "icc1": icc1, "icc2": icc2}


def _square_total(x: np.ndarray) -> int:
    top = float(np.abs(x).max(initial=0))
    if top * top * len(x) < 2**62:
        return int((x * x).sum())
    as_objects = x.astype(object)
    return int((as_objects * as_objects).sum())


def _total(x: np.ndarray) -> int:
    """An exact integer sum (Python integers only when int64 could overflow)."""
    if float(np.abs(x).max(initial=0)) * len(x) < 2**62:
        return int(x.sum())
    return int(x.astype(object).sum())


def _alpha(wide: Wide, columns: list[int], respondent: np.ndarray, k: int) -> float | None:
    """Cronbach's α over complete cases (respondents, or respondent × target ties); null when
    the complete cases come from fewer than ``k`` distinct respondents (``respondent``: the
    respondent of each row of ``wide``)."""
    j = len(columns)
    if j < 2:
        return None
    complete = wide.has[:, columns].all(axis=1)
    values = wide.x[complete][:, columns]  # items: the scored value itself
    n_cases = len(values)
    if n_cases < 2 or distinct(respondent[complete]) < k:
        return None
    item_var = sum(
        _variance(n_cases, int(values[:, c].sum()), int((values[:, c] ** 2).sum()))
        for c in range(j)
    )
    totals = values.sum(axis=1)
    total_var = _variance(n_cases, int(totals.sum()), int((totals**2).sum()))
    if total_var == 0:
        return None
    return j / (j - 1) * (1.0 - item_var / total_var)


def _variance(n: int, s1: int, s2: int) -> float:
    """Sample variance from exact integer sums (Python ints, no overflow)."""
    return (n * s2 - s1 * s1) / (n * (n - 1))


def _icc(
    unit: np.ndarray, x: np.ndarray, denominator: int, k: int
) -> tuple[float | None, float | None]:
    """ICC(1), ICC(2) of a one-way ANOVA by home unit over units with ≥ 2 scores (one score per
    respondent); null when those units hold fewer than ``k`` scores."""
    order = np.argsort(unit, kind="stable")
    starts = run_starts(unit[order])
    sizes = np.diff(np.r_[starts, len(order)])
    groups = [
        x[order[start : start + size]]
        for start, size in zip(starts, sizes, strict=True)
        if size >= 2
    ]
    g = len(groups)
    if g < 2:
        return None, None
    n_j = [len(v) for v in groups]
    total_n = sum(n_j)
    if total_n < k:
        return None, None
    s1 = [_total(v) for v in groups]
    s2 = [_square_total(v) for v in groups]
    grand = sum(s1) / (total_n * denominator)
    ssw = sum((n * b - a * a) / (n * denominator**2) for n, a, b in zip(n_j, s1, s2, strict=True))
    ssb = sum(n * (a / (n * denominator) - grand) ** 2 for n, a in zip(n_j, s1, strict=True))
    msb = ssb / (g - 1)
    msw = ssw / (total_n - g)
    k_bar = (total_n - sum(n * n for n in n_j) / total_n) / (g - 1)
    denominator_1 = msb + (k_bar - 1) * msw
    icc1 = (msb - msw) / denominator_1 if denominator_1 != 0 else None
    icc2 = (msb - msw) / msb if msb != 0 else None
    return icc1, icc2


def _network_scale(index: pl.DataFrame) -> dict[str, Any] | None:
    """The relational capacity scale, or else the first scale asked per target unit."""
    targeted = index.filter(pl.col("unit_targeted"))
    if targeted.height == 0:
        return None
    named = targeted.filter(pl.col("scale") == RELATIONAL_CAPACITY)
    return (named if named.height else targeted).row(0, named=True)


def _network(
    data: RespondentData,
    tree: UnitTree,
    scale: dict[str, Any],
    tie_rows: pl.DataFrame,
    values: dict[tuple[int, int], float | None],
) -> dict[str, Any]:
    mid = scale["mid"]
    ties = data.ties
    present = _present(ties, mid)
    a, b = ties.column("a")[present], ties.column("b")[present]

    published = tie_rows.filter(
        (pl.col("mid") == mid) & ~pl.col("suppressed") & (pl.col("from") != pl.col("to"))
    )
    count = published.height
    strong = published.filter(pl.col("band") == "strong").height
    weak = published.filter(pl.col("band") == "weak").height
    forward = published.select("from", "to", "mean").filter(pl.col("from") < pl.col("to"))
    backward = published.select(
        pl.col("to").alias("from"), pl.col("from").alias("to"), pl.col("mean").alias("back")
    )
    pairs = forward.join(backward, on=["from", "to"]).sort("from", "to")
    gaps = (pairs["mean"] - pairs["back"]).abs().to_numpy()

    n_units = tree.count
    external = a != b
    rated = len(np.unique(np.minimum(a, b)[external] * n_units + np.maximum(a, b)[external]))
    return {
        "within_mean": values.get((WITHIN, mid)),
        "between_mean": values.get((BETWEEN, mid)),
        "strong_share": strong / count if count else None,
        "weak_share": weak / count if count else None,
        "reciprocity_gap": float(np.sum(gaps) / len(gaps)) if len(gaps) else None,
        "holes": n_units * (n_units - 1) // 2 - rated,
    }


def _leadership_collaboration(
    index: pl.DataFrame, unit_rows: pl.DataFrame, tree: UnitTree
) -> dict[str, Any] | None:
    mids = {row["scale"]: row for row in index.iter_rows(named=True)}
    leadership, capacity = mids.get(RELATIONAL_LEADERSHIP), mids.get(RELATIONAL_CAPACITY)
    if leadership is None or capacity is None:
        return None
    published = unit_rows.filter(~pl.col("rollup") & ~pl.col("suppressed"))
    rl = published.filter(
        (pl.col("mid") == leadership["mid"]) & (pl.col("persp") == MEMBERS)
    ).select("unit", rl="mean")
    rc = published.filter(
        (pl.col("mid") == capacity["mid"]) & (pl.col("persp") == INCOMING)
    ).select("unit", rc="mean")
    both = rl.join(rc, on="unit")
    n_units = both.height
    if n_units < MIN_CORRELATION_UNITS:
        return None
    order = np.argsort(tree.external_rank[both["unit"].to_numpy()])
    x, y = both["rl"].to_numpy()[order], both["rc"].to_numpy()[order]
    result: dict[str, Any] = {
        "pearson_r": None,
        "pearson_p": None,
        "spearman_rho": None,
        "spearman_p": None,
        "n_units": n_units,
    }
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return result
    pearson = stats.pearsonr(x, y)
    spearman = stats.spearmanr(x, y)
    result.update(
        pearson_r=float(pearson.statistic),
        pearson_p=float(pearson.pvalue),
        spearman_rho=float(spearman.statistic),
        spearman_p=float(spearman.pvalue),
    )
    return result
