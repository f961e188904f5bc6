"""``score``: a round's answers in, its published results out (pure, no I/O).

The steps: respondent scores (respondent.py) → cells as exact moment groups (cells.py) →
statistics (describe.py) → both anonymity rules (anonymity/) → coherence index
(coherence.py) → summary (summary.py) → output frames with strings, sorted by their keys.
``cell_values`` exposes the respondent-level values behind unit rows for tests of change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from coherence_core.instruments.model import COHERENCE
from coherence_scoring.engine import cells, describe, raters
from coherence_scoring.engine.anonymity import apply_rules, pooled_rows
from coherence_scoring.engine.coherence import coherence_rows
from coherence_scoring.engine.layout import (
    INDEX,
    PERSPECTIVES,
    Measures,
    UnitTree,
    build_measures,
    build_tree,
)
from coherence_scoring.engine.participation import participation_rows
from coherence_scoring.engine.respondent import RespondentData, prepare
from coherence_scoring.engine.summary import build_summary
from coherence_scoring.engine.types import (
    TIE_SCORES_SCHEMA,
    UNIT_PARTICIPATION_SCHEMA,
    UNIT_SCORES_SCHEMA,
    ScoringInput,
    ScoringResult,
)

UNIT_KEYS = ["unit", "scale", "measure", "perspective", "rollup"]
TIE_KEYS = ["from_unit", "to_unit", "scale", "measure"]
CELL_VALUES_SCHEMA = {
    "unit": pl.String,
    "scale": pl.String,
    "measure": pl.String,
    "perspective": pl.String,
    "rollup": pl.Boolean,
    "respondent": pl.Int64,
    "value": pl.Float64,
}


@dataclass(frozen=True)
class _Round:
    measures: Measures
    tree: UnitTree
    data: RespondentData
    denominators: pl.DataFrame


def _load(inputs: ScoringInput) -> _Round:
    measures = build_measures(inputs.instrument)
    tree = build_tree(inputs.units)
    data = prepare(inputs, measures, tree)
    return _Round(
        measures=measures,
        tree=tree,
        data=data,
        denominators=measures.frame.select("mid", L="denominator"),
    )


def score(inputs: ScoringInput) -> ScoringResult:
    """Score one round: every unit, tie and participation row, and the summary, published
    under the anonymity rules of SCORING.md §5."""
    rnd = _load(inputs)
    measures, tree, settings = rnd.measures, rnd.tree, inputs.settings

    tie_moments = cells.tie_groups(rnd.data.ties, rnd.denominators, tree.count)
    rater_moments = raters.rater_groups(
        rnd.data.ties, tree, rnd.denominators, rnd.data.respondents.height
    )
    unit_moments = cells.unit_groups(rnd.data, tie_moments, rater_moments, rnd.denominators, tree)
    unit_stats = describe.finalize(unit_moments, cells.UNIT_KEYS).join(
        describe.rwg(rnd.data, measures, tree), on=cells.UNIT_KEYS, how="left"
    )
    tie_stats = describe.finalize(tie_moments, cells.TIE_KEYS)
    published = apply_rules(
        unit_stats,
        tie_stats,
        participation_rows(rnd.data, tree),
        tree,
        settings.min_group_size,
    )
    ties = rnd.data.ties
    published = pooled_rows(
        published,
        ties.column("r"),
        ties.column("a"),
        ties.column("b"),
        ties.mids,
        ties.has,
        tree,
        settings.min_group_size,
    )
    coherence_mid = measures.count
    coherence = coherence_rows(published.unit_rows, inputs.instrument, measures, coherence_mid)

    names = _measure_names(measures, coherence_mid)
    is_index = pl.col("kind") == INDEX
    with_band = [
        describe.band(pl.col("mean"), is_index, settings).alias("band"),
    ]
    unit_rows = pl.concat([published.unit_rows, coherence], how="diagonal_relaxed").join(
        names, on="mid"
    )
    unit_rows = unit_rows.with_columns(with_band)
    tie_rows = published.tie_rows.join(names, on="mid").with_columns(with_band)
    summary = build_summary(
        data=rnd.data,
        measures=measures,
        tree=tree,
        unit_rows=unit_rows,
        tie_rows=tie_rows,
        participation=published.participation,
        organisation_suppressed=published.organisation_suppressed,
        k=settings.min_group_size,
    )
    return ScoringResult(
        unit_scores=_unit_scores(unit_rows, tree),
        tie_scores=_tie_scores(tie_rows, tree),
        participation=_participation(published.participation, tree),
        summary=summary,
    )


def _measure_names(measures: Measures, coherence_mid: int) -> pl.DataFrame:
    names = measures.frame.select("mid", "scale", "measure", "kind")
    extra = pl.DataFrame(
        {"mid": [coherence_mid], "scale": [COHERENCE], "measure": ["index"], "kind": [INDEX]},
        schema=names.schema,
    )
    return pl.concat([names, extra])


def _unit_names(tree: UnitTree) -> pl.Series:
    return pl.Series(tree.external_id, dtype=pl.String)


def _hide(columns: list[str]) -> list[pl.Expr]:
    return [pl.when(~pl.col("suppressed")).then(pl.col(c)).alias(c) for c in columns]


def _unit_scores(rows: pl.DataFrame, tree: UnitTree) -> pl.DataFrame:
    names = _unit_names(tree)
    out = rows.with_columns(
        unit=pl.col("unit").replace_strict(np.arange(tree.count), names),
        perspective=pl.col("persp").replace_strict(
            list(range(len(PERSPECTIVES))), list(PERSPECTIVES)
        ),
        low_agreement=pl.when(pl.col("rwg").is_not_null()).then(
            pl.col("rwg") < describe.LOW_AGREEMENT
        ),
    ).with_columns(_hide(["n", "mean", "sd", "ci_low", "ci_high", "rwg", "band", "low_agreement"]))
    return out.select(pl.col(c).cast(t) for c, t in UNIT_SCORES_SCHEMA.items()).sort(UNIT_KEYS)


def _tie_scores(rows: pl.DataFrame, tree: UnitTree) -> pl.DataFrame:
    names = _unit_names(tree)
    out = rows.with_columns(
        from_unit=pl.col("from").replace_strict(np.arange(tree.count), names),
        to_unit=pl.col("to").replace_strict(np.arange(tree.count), names),
    ).with_columns(_hide(["n", "mean", "sd", "ci_low", "ci_high", "band"]))
    return out.select(pl.col(c).cast(t) for c, t in TIE_SCORES_SCHEMA.items()).sort(TIE_KEYS)


def _participation(rows: pl.DataFrame, tree: UnitTree) -> pl.DataFrame:
    names = _unit_names(tree)
    out = rows.with_columns(
        unit=pl.col("unit").replace_strict(np.arange(tree.count), names)
    ).with_columns(_hide(["respondents", "response_rate"]))
    return out.select(pl.col(c).cast(t) for c, t in UNIT_PARTICIPATION_SCHEMA.items()).sort(
        "unit", "rollup"
    )


def cell_values(inputs: ScoringInput) -> pl.DataFrame:
    """The respondent-level values behind every unit row (before anonymity): unit, scale,
    measure, perspective, rollup, respondent, value — one row per respondent and cell, the value
    the row's statistics are computed from (a score, or a rater's mean of several tie scores).
    Sorted by those columns. For comparisons between rounds (Welch t-tests); never publish."""
    rnd = _load(inputs)
    direct = cells.direct_values(rnd.data, rnd.tree).join(rnd.denominators, on="mid")
    direct = direct.select(*cells.UNIT_KEYS, "r", value=pl.col("x") / pl.col("L"))
    per_rater = raters.rater_means(rnd.data.ties, rnd.tree).join(rnd.denominators, on="mid")
    per_rater = per_rater.select(
        *cells.UNIT_KEYS, "r", value=pl.col("y") / (pl.col("L") * pl.col("m"))
    )
    values = pl.concat([direct, per_rater], how="vertical_relaxed")

    # sort on integer ranks that order like the published strings (r orders like the ids)
    names = rnd.measures.frame.select("mid", "scale", "measure")
    scale_rank = names["scale"].rank("dense").to_numpy().astype(np.int64) - 1
    measure_rank = names["measure"].rank("dense").to_numpy().astype(np.int64) - 1
    persp_rank = np.argsort(np.argsort(PERSPECTIVES))
    mid = values["mid"].to_numpy()
    r = values["r"].to_numpy().astype(np.int64)
    parts = [
        (rnd.tree.external_rank[values["unit"].to_numpy()], rnd.tree.count),
        (scale_rank[mid], len(scale_rank)),
        (measure_rank[mid], len(measure_rank)),
        (persp_rank[values["persp"].to_numpy()], len(PERSPECTIVES)),
        (values["rollup"].to_numpy().astype(np.int64), 2),
        (r, rnd.data.respondents.height),
    ]
    if np.prod([float(span) for _, span in parts]) < 2**62:
        key = np.zeros(len(r), dtype=np.int64)
        for rank, span in parts:
            key = key * span + rank
        order = pl.Series(key).arg_sort().to_numpy()
    else:
        order = np.lexsort([rank for rank, _ in reversed(parts)])
    values = values[order]
    mid = mid[order]
    respondent = rnd.data.respondents["respondent"].to_numpy()
    out = pl.DataFrame(
        {
            "unit": pl.Series(rnd.tree.external_id, dtype=pl.String).gather(values["unit"]),
            "scale": names["scale"].gather(mid),
            "measure": names["measure"].gather(mid),
            "perspective": pl.Series(PERSPECTIVES, dtype=pl.String).gather(values["persp"]),
            "rollup": values["rollup"],
            "respondent": respondent[r[order]],
            "value": values["value"],
        }
    )
    return out.cast(CELL_VALUES_SCHEMA)  # type: ignore[arg-type]
