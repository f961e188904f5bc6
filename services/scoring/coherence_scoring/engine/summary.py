"""The round summary (SCORING.md §4, scoring-decisions.md "Summary").

Respondent-level statistics (scale means, Cronbach's α, ICC(1)/ICC(2), within/between means) are
computed from exact integer sums; statistics over published cells (strong/weak shares, the
reciprocity gap, the leadership–collaboration correlation) use rows after both anonymity rules
and without roll-up. Units are taken in index order, items in instrument order, so every sum is
done in one fixed order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from coherence_core.instruments.model import RELATIONAL_CAPACITY, RELATIONAL_LEADERSHIP
from coherence_scoring.engine.layout import INCOMING, INDEX, MEMBERS, Measures, UnitTree
from coherence_scoring.engine.respondent import SELF, RespondentData

MIN_CORRELATION_UNITS = 4


def build_summary(
    *,
    data: RespondentData,
    measures: Measures,
    tree: UnitTree,
    unit_rows: pl.DataFrame,
    tie_rows: pl.DataFrame,
    organisation_suppressed: dict[int, bool],
) -> dict[str, Any]:
    """unit_rows / tie_rows: published rows with internal codes, band and suppressed."""
    index = measures.frame.filter(pl.col("kind") == INDEX)
    scales: dict[str, Any] = {}
    for row in index.iter_rows(named=True):
        scales[row["scale"]] = _scale_summary(data, measures, row, organisation_suppressed)
    network_scale = _network_scale(index)
    network = None
    if network_scale is not None:
        network = _network(data, tree, network_scale, tie_rows)
    return {
        "respondents": int(data.respondents.height),
        "response_rate": _response_rate(data, tree),
        "scales": scales,
        "network": network,
        "leadership_collaboration": _leadership_collaboration(index, unit_rows, tree),
    }


def _response_rate(data: RespondentData, tree: UnitTree) -> float | None:
    known = [u for u, h in enumerate(tree.headcount) if h is not None]
    total = sum(tree.headcount[u] or 0 for u in known)
    if not known or total <= 0:
        return None
    counts = np.bincount(data.home, minlength=tree.count)
    return float(counts[known].sum()) / float(total)


def _scale_summary(
    data: RespondentData,
    measures: Measures,
    row: dict[str, Any],
    organisation_suppressed: dict[int, bool],
) -> dict[str, float | None]:
    mid, denominator = row["mid"], row["denominator"]
    scores = data.scores.filter(pl.col("mid") == mid)
    if row["unit_targeted"]:
        by_unit = scores.filter(pl.col("target") == pl.col("a"))  # the internal tie
    else:
        scores = scores.filter(pl.col("target") == SELF)
        by_unit = scores
    x = scores["x"].to_numpy()
    mean = _exact_mean(x, denominator)
    if organisation_suppressed.get(mid, False):
        mean = None
    icc1, icc2 = _icc(by_unit, denominator)
    return {"mean": mean, "alpha": _alpha(data, measures, row), "icc1": icc1, "icc2": icc2}


def _exact_mean(x: np.ndarray, denominator: int) -> float | None:
    if len(x) == 0:
        return None
    total = pl.Series(x).cast(pl.Int128).sum()
    return float(int(total) / (len(x) * denominator))


def _alpha(data: RespondentData, measures: Measures, row: dict[str, Any]) -> float | None:
    """Cronbach's α over complete cases (respondent, or respondent × target)."""
    items = np.flatnonzero(measures.index_mid == row["mid"])
    j = len(items)
    if j < 2:
        return None
    answers = data.answers.filter(pl.col("item").is_in(items.tolist()))
    complete = answers.group_by("r", "target").agg(pl.len().alias("c")).filter(pl.col("c") == j)
    cases = answers.join(complete.select("r", "target"), on=["r", "target"], how="semi")
    n_cases = complete.height
    if n_cases < 2:
        return None
    v = pl.col("v").cast(pl.Int64)
    per_item = cases.group_by("item").agg(s1=v.sum(), s2=(v * v).sum()).sort("item")
    item_var = sum(
        _variance(n_cases, int(s1), int(s2))
        for s1, s2 in zip(per_item["s1"], per_item["s2"], strict=True)
    )
    totals = cases.group_by("r", "target").agg(t=v.sum())["t"].cast(pl.Int64)
    total_var = _variance(n_cases, int(totals.sum()), int((totals * totals).sum()))
    if total_var == 0:
        return None
    return j / (j - 1) * (1.0 - item_var / total_var)


def _variance(n: int, s1: int, s2: int) -> float:
    """Sample variance from exact integer sums (Python ints, no overflow)."""
    return (n * s2 - s1 * s1) / (n * (n - 1))


def _icc(by_unit: pl.DataFrame, denominator: int) -> tuple[float | None, float | None]:
    """ICC(1), ICC(2) of a one-way ANOVA by home unit over units with ≥ 2 scores."""
    x = pl.col("x").cast(pl.Int128)
    units = (
        by_unit.group_by("a")
        .agg(n=pl.len().cast(pl.Int64), s1=x.sum(), s2=(x * x).sum())
        .filter(pl.col("n") >= 2)
        .sort("a")
    )
    g = units.height
    if g < 2:
        return None, None
    n_j = [int(v) for v in units["n"]]
    s1 = [int(v) for v in units["s1"]]
    s2 = [int(v) for v in units["s2"]]
    total_n = sum(n_j)
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
    data: RespondentData, tree: UnitTree, scale: dict[str, Any], tie_rows: pl.DataFrame
) -> dict[str, Any]:
    mid, denominator = scale["mid"], scale["denominator"]
    ties = data.scores.filter((pl.col("mid") == mid) & (pl.col("target") != SELF))
    internal = ties.filter(pl.col("target") == pl.col("a"))["x"].to_numpy()
    external = ties.filter(pl.col("target") != pl.col("a"))["x"].to_numpy()

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

    rated = (
        ties.filter(pl.col("target") != pl.col("a"))
        .select(
            lo=pl.min_horizontal("a", "target"),
            hi=pl.max_horizontal("a", "target"),
        )
        .unique()
        .height
    )
    n_units = tree.count
    return {
        "within_mean": _exact_mean(internal, denominator),
        "between_mean": _exact_mean(external, denominator),
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
