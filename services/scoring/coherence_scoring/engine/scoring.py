"""``score``: a round's answers in, its publication out (pure, no I/O).

The steps: counted responses (respondent.py) → rows as exact moment groups (cells.py,
raters.py) → statistics (describe.py) → the protection decides what is published
(protection/, SCORING.md §5) → preview noise for an open round (preview.py) → coherence index
(coherence.py) → summary (summary.py) → output frames with strings, sorted by their keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from coherence_core.instruments.model import COHERENCE, RELATIONAL_CAPACITY
from coherence_scoring.engine import cells, describe, raters
from coherence_scoring.engine.coherence import coherence_rows
from coherence_scoring.engine.layout import (
    INDEX,
    PERSPECTIVES,
    Measures,
    UnitTree,
    build_measures,
    build_tree,
)
from coherence_scoring.engine.linking import earlier_publications
from coherence_scoring.engine.participation import participation_rows
from coherence_scoring.engine.preview import cell_noise
from coherence_scoring.engine.protection import (
    BETWEEN,
    ORG,
    REASONS,
    WITHIN,
    BaseCells,
    Incidence,
    Protection,
    RowIndex,
    UnsafePublication,
    audit,
    base_cells,
    build_rows,
    own_rows,
    protect,
    summary_people,
)
from coherence_scoring.engine.respondent import SELF, RespondentData, prepare
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
#: Second moments: published only where they cannot describe a hidden group.
SECOND_MOMENTS = ["sd", "ci_low", "ci_high", "rwg"]


@dataclass(frozen=True)
class _Round:
    measures: Measures
    tree: UnitTree
    data: RespondentData
    denominators: pl.DataFrame


def _load(inputs: ScoringInput) -> _Round:
    measures = build_measures(inputs.instrument)
    inputs = _numbered_by_external_id(inputs)
    tree = build_tree(inputs.units)
    data = prepare(inputs, measures, tree)
    return _Round(
        measures=measures,
        tree=tree,
        data=data,
        denominators=measures.frame.select("mid", L="denominator"),
    )


def _numbered_by_external_id(inputs: ScoringInput) -> ScoringInput:
    """The same round with units numbered in the order of their external ids, so that nothing
    the engine decides (every tie-break of the protection included) depends on how the caller
    numbered them."""
    units = inputs.units.sort("external_id")
    old = units["unit"].to_list()
    if old == list(range(len(old))):
        return inputs
    new = list(range(len(old)))

    def renumber(column: str) -> pl.Expr:
        return pl.col(column).replace(old, new).cast(pl.Int32)

    return dataclasses.replace(
        inputs,
        units=units.with_columns(renumber("unit"), renumber("parent")),
        respondents=inputs.respondents.with_columns(renumber("unit")),
        answers=inputs.answers.with_columns(renumber("target")),
    )


@dataclass(frozen=True)
class _Structure:
    """The publication's linear structure: rows, base cells, and which rows pool which."""

    rows: RowIndex
    cells: BaseCells
    incidence: Incidence
    own_row: npt.NDArray[np.int64]
    summary: pl.DataFrame  # kind, mid, n, Y, M


@dataclass(frozen=True)
class Analysis:
    """A round's statistics and the linear structure of what it can publish (no protection)."""

    rnd: _Round
    unit_stats: pl.DataFrame
    tie_stats: pl.DataFrame
    structure: _Structure
    network_mid: int | None


def analyse(inputs: ScoringInput) -> Analysis:
    rnd = _load(inputs)
    measures, tree = rnd.measures, rnd.tree
    tie_moments = cells.tie_groups(rnd.data.ties, rnd.denominators, tree.count)
    rater_moments = raters.rater_groups(rnd.data.ties, tree)
    unit_moments = cells.unit_groups(rnd.data, tie_moments, rater_moments, rnd.denominators, tree)
    unit_stats = (
        describe.finalize(unit_moments, cells.UNIT_KEYS)
        .join(describe.rwg(rnd.data, measures, tree), on=cells.UNIT_KEYS, how="left")
        .sort(cells.UNIT_KEYS)
    )
    tie_stats = describe.finalize(tie_moments, cells.TIE_KEYS).sort(cells.TIE_KEYS)
    network_mid = _network_mid(measures)
    structure = _structure(rnd, unit_stats, tie_stats, network_mid)
    return Analysis(rnd, unit_stats, tie_stats, structure, network_mid)


def score(inputs: ScoringInput) -> ScoringResult:
    """Score one round: every unit, tie and participation row, and the summary, as published
    under SCORING.md §5 (exact for a closed round, a perturbed preview for an open one), and
    together with the earlier final publications in ``inputs.linked``."""
    analysis = analyse(inputs)
    rnd, unit_stats, tie_stats = analysis.rnd, analysis.unit_stats, analysis.tie_stats
    structure, network_mid = analysis.structure, analysis.network_mid
    measures, tree, k = rnd.measures, rnd.tree, inputs.settings.min_group_size
    earlier = earlier_publications(analysis, inputs)
    protection = protect(
        cells=structure.cells,
        incidence=structure.incidence,
        rows=structure.rows,
        own_row=structure.own_row,
        measures=measures,
        k=k,
        earlier=earlier,
    )
    noise = _row_noise(structure, rnd.data, inputs) if inputs.preview else None
    unit_rows, tie_rows, summary_values = _published(
        structure, protection, unit_stats, tie_stats, noise, measures, inputs.preview
    )

    coherence_mid = measures.count
    coherence = coherence_rows(
        unit_rows, inputs.instrument, measures, coherence_mid, inputs.settings
    )
    names = _measure_names(measures, coherence_mid)
    is_index = pl.col("kind") == INDEX
    with_band = [
        pl.when(pl.col("band").is_null() & pl.col("num").is_not_null())
        .then(describe.band(pl.col("num"), pl.col("den"), is_index, inputs.settings))
        .otherwise(pl.col("band"))
        .alias("band")
    ]
    unit_rows = (
        pl.concat(
            [unit_rows.with_columns(band=pl.lit(None, dtype=pl.String)), coherence],
            how="diagonal_relaxed",
        )
        .join(names, on="mid")
        .with_columns(with_band)
    )
    tie_rows = (
        tie_rows.with_columns(band=pl.lit(None, dtype=pl.String))
        .join(names, on="mid")
        .with_columns(with_band)
    )
    participation = participation_rows(rnd.data, tree).with_columns(
        suppressed=pl.col("respondents") < k,
        suppression_reason=pl.when(pl.col("respondents") < k).then(pl.lit(REASONS[1])),
    )
    summary = build_summary(
        data=rnd.data,
        measures=measures,
        tree=tree,
        unit_rows=unit_rows,
        tie_rows=tie_rows,
        values=summary_values,
        k=k,
        preview=inputs.preview,
    )
    unit_scores = _unit_scores(unit_rows, tree)
    tie_scores = _tie_scores(tie_rows, tree)
    result = ScoringResult(
        unit_scores=unit_scores.drop("_row"),
        tie_scores=tie_scores.drop("_row"),
        participation=_participation(participation, tree),
        summary=summary,
        preview=inputs.preview,
        diagnostics=_diagnostics(structure, protection),
    )
    # the audit: what is about to leave the engine, read back as a reader sees it, must leave
    # every atom safe (SCORING.md §5) — else UnsafePublication, and nothing is written
    shown = pl.concat(
        [unit_scores.filter(pl.col("_row") >= 0), tie_scores], how="diagonal_relaxed"
    ).select("_row", "suppressed")
    audit(
        cells=structure.cells,
        incidence=structure.incidence,
        own_row=structure.own_row,
        published=_shown(
            structure.rows,
            shown["_row"].to_numpy(),
            ~shown["suppressed"].to_numpy(),
            result.summary,
            measures,
            network_mid,
        ),
        k=k,
        earlier=earlier,
    )
    return result


def _network_mid(measures: Measures) -> int | None:
    """The index of relational capacity when asked per target unit, else of the first scale
    asked per target unit (docs/scoring-decisions.md, "Summary")."""
    index = measures.frame.filter((pl.col("kind") == INDEX) & pl.col("unit_targeted"))
    if index.height == 0:
        return None
    named = index.filter(pl.col("scale") == RELATIONAL_CAPACITY)
    return int((named if named.height else index)["mid"][0])


def _structure(
    rnd: _Round, unit_stats: pl.DataFrame, tie_stats: pl.DataFrame, network_mid: int | None
) -> _Structure:
    base = base_cells(rnd.data, rnd.measures, rnd.tree.count)
    people = summary_people(rnd.data, rnd.measures, network_mid)
    summary_n = {
        (int(kind), int(mid)): int(n) for kind, mid, n in people.select("kind", "mid", "n").rows()
    }
    rows = build_rows(unit_stats, tie_stats, summary_n, rnd.measures, rnd.tree.count)
    incidence = Incidence.build(base, rows, rnd.measures, rnd.tree, network_mid)
    own = own_rows(base, rows, rnd.measures)
    return _Structure(
        rows=rows,
        cells=base,
        incidence=incidence,
        own_row=own,
        summary=_summary_sums(base, rnd.measures, network_mid, people),
    )


def _summary_sums(
    base: BaseCells, measures: Measures, network_mid: int | None, people: pl.DataFrame
) -> pl.DataFrame:
    """kind, mid, n, Y, M of every summary value (sums over its base cells)."""
    index_mid = measures.index_mid[base.item]
    frames = [pl.DataFrame({"kind": ORG, "mid": index_mid, "Y": base.total, "M": base.responses})]
    if network_mid is not None:
        tie = (base.b != SELF) & (index_mid == network_mid)
        kind = np.where(base.a == base.b, WITHIN, BETWEEN)
        frames.append(
            pl.DataFrame(
                {
                    "kind": kind[tie],
                    "mid": index_mid[tie],
                    "Y": base.total[tie],
                    "M": base.responses[tie],
                }
            )
        )
    sums = (
        pl.concat(frames, how="vertical_relaxed")
        .group_by("kind", "mid")
        .agg(pl.col("Y").sum(), pl.col("M").sum())
    )
    return people.join(sums, on=["kind", "mid"]).sort("kind", "mid")


def published_in(
    result: ScoringResult,
    rows: RowIndex,
    measures: Measures,
    tree: UnitTree,
    network_mid: int | None,
) -> npt.NDArray[np.bool_]:
    """Which rows the result publishes, by canonical row id, read back from its frames."""
    mid_of = measures.frame.select("scale", "measure", "mid")
    unit_index = pl.DataFrame({"unit": tree.external_id, "u": np.arange(tree.count)})
    units = (
        result.unit_scores.join(mid_of, on=["scale", "measure"])
        .join(unit_index, on="unit")
        .with_columns(
            p=pl.col("perspective").replace_strict(
                list(PERSPECTIVES), list(range(len(PERSPECTIVES)))
            )
        )
    )
    unit_ids = rows.unit_row(
        units["u"].to_numpy().astype(np.int64),
        units["rollup"].to_numpy().astype(np.int64),
        units["p"].to_numpy().astype(np.int64),
        units["mid"].to_numpy().astype(np.int64),
    )
    ties = (
        result.tie_scores.join(mid_of, on=["scale", "measure"])
        .join(unit_index.rename({"unit": "from_unit", "u": "a"}), on="from_unit")
        .join(unit_index.rename({"unit": "to_unit", "u": "b"}), on="to_unit")
    )
    tie_ids = rows.tie_row(
        ties["a"].to_numpy().astype(np.int64),
        ties["b"].to_numpy().astype(np.int64),
        ties["mid"].to_numpy().astype(np.int64),
    )
    shown = np.r_[~units["suppressed"].to_numpy(), ~ties["suppressed"].to_numpy()].astype(bool)
    ids = np.r_[unit_ids, tie_ids]
    if (ids < 0).any():
        raise UnsafePublication("the result holds a row the engine does not know")
    return _shown(rows, ids, shown, result.summary, measures, network_mid, canonical=True)


def _shown(
    rows: RowIndex,
    ids: npt.NDArray[np.int64],
    shown: npt.NDArray[np.bool_],
    summary: dict[str, Any],
    measures: Measures,
    network_mid: int | None,
    *,
    canonical: bool = False,
) -> npt.NDArray[np.bool_]:
    """Published flags by canonical row id, from (row id, shown) pairs and the summary."""
    if not canonical:
        ids = rows.canonical[ids]
    published = np.zeros(rows.count, dtype=bool)
    hidden = np.zeros(rows.count, dtype=bool)
    published[ids[shown]] = True
    hidden[ids[~shown]] = True
    if (published & hidden).any():
        raise UnsafePublication("one row is both published and suppressed under two names")
    scales = summary["scales"]
    index = measures.frame.filter(pl.col("kind") == INDEX).select("scale", "mid").rows()
    summary_shown = [(ORG, mid, scales[scale]["mean"]) for scale, mid in index]
    network = summary.get("network")
    if network_mid is not None and network is not None:
        summary_shown += [
            (WITHIN, network_mid, network["within_mean"]),
            (BETWEEN, network_mid, network["between_mean"]),
        ]
    for kind, mid, value in summary_shown:
        row_id = rows.summary_row(kind, np.array([mid]))[0]
        if row_id >= 0 and value is not None:
            published[row_id] = True
    return published


def _row_noise(
    structure: _Structure, data: RespondentData, inputs: ScoringInput
) -> npt.NDArray[np.int64]:
    """Per row id, the sum of its base cells' preview noise."""
    ids = data.respondents["respondent"].to_numpy().astype(np.int64)
    noise = cell_noise(structure.cells, inputs.noise_key, ids)
    total = structure.incidence.row_sums(noise[:, None])[:, 0]
    return total[structure.rows.canonical]


def _published(
    structure: _Structure,
    protection: Protection,
    unit_stats: pl.DataFrame,
    tie_stats: pl.DataFrame,
    noise: npt.NDArray[np.int64] | None,
    measures: Measures,
    preview: bool,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[tuple[int, int], float | None]]:
    """Unit and tie rows with the protection's status and the published values; the summary
    values by (kind, mid) (None when not published)."""
    rows = structure.rows
    n_u, n_t = rows.unit_count, rows.tie_count
    published = protection.published
    reason = np.array(REASONS, dtype=object)[protection.reason]
    plain = ~protection.pools_hidden & (not preview)
    bounds = _measure_bounds(measures)

    def status(frame: pl.DataFrame, offset: int) -> pl.DataFrame:
        ids = np.arange(offset, offset + frame.height)
        out = frame.with_columns(
            _row=pl.Series(ids, dtype=pl.Int64),
            suppressed=pl.Series(~published[ids]),
            suppression_reason=pl.Series(reason[ids].tolist(), dtype=pl.String),
            _plain=pl.Series(plain[ids]),
            # the published mean as an exact fraction num / den: bands are decided on it
            num=pl.col("Y"),
            den=pl.col("M"),
        )
        if noise is not None:
            out = (
                out.with_columns(_noise=pl.Series(noise[ids]))
                .join(bounds, on="mid", maintain_order="left")
                .with_columns(
                    num=(pl.col("Y") + pl.col("_noise")).clip(
                        pl.col("low") * pl.col("M"), pl.col("high") * pl.col("M")
                    )
                )
                .with_columns(mean=pl.col("num").cast(pl.Float64) / pl.col("M").cast(pl.Float64))
            )
        return out.with_columns(
            pl.when(pl.col("_plain")).then(pl.col(c)).alias(c)
            for c in SECOND_MOMENTS
            if c in out.columns
        ).drop("_plain", "_noise", "low", "high", strict=False)

    unit_rows = status(unit_stats, 0)
    tie_rows = status(tie_stats, n_u)
    values: dict[tuple[int, int], float | None] = {}
    low_of = dict(zip(bounds["mid"].to_list(), bounds["low"].to_list(), strict=True))
    high_of = dict(zip(bounds["mid"].to_list(), bounds["high"].to_list(), strict=True))
    for kind, mid, _n, total, count in structure.summary.rows():
        row_id = n_u + n_t + rows.summary_keys.index((kind, mid))
        if not published[row_id]:
            values[(kind, mid)] = None
            continue
        extra = 0 if noise is None else int(noise[row_id])
        values[(kind, mid)] = min(max((total + extra) / count, low_of[mid]), high_of[mid])
    return unit_rows, tie_rows, values


def _measure_bounds(measures: Measures) -> pl.DataFrame:
    """mid, low, high: the range a row's mean can take (its items' scored values)."""
    mids = measures.frame["mid"].to_numpy().astype(np.int64)
    low = np.full(len(mids), np.inf)
    high = np.full(len(mids), -np.inf)
    for item, item_mid in enumerate(measures.item_mid):
        for owner in (item_mid, measures.index_mid[item], measures.subscale_mid[item]):
            if owner >= 0:
                low[owner] = min(low[owner], measures.item_low[item])
                high[owner] = max(high[owner], measures.item_high[item])
    return pl.DataFrame(
        {"mid": mids.astype(np.int32), "low": low.astype(np.int64), "high": high.astype(np.int64)}
    )


def _diagnostics(structure: _Structure, protection: Protection) -> dict[str, Any]:
    rows = structure.rows
    canonical_ids = np.flatnonzero(rows.canonical == np.arange(rows.count))
    reason = protection.reason[canonical_ids]
    hidden_cells = ~protection.published[structure.own_row]
    return {
        "rows": len(canonical_ids),
        "rows_min_group_size": int((reason == 1).sum()),
        "rows_complementary": int((reason == 2).sum()),
        "base_cells": structure.cells.count,
        "base_cells_hidden": int(hidden_cells.sum()),
        "atoms": protection.atoms,
        "repair_rounds": protection.rounds,
    }


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
    keep = [pl.col(c).cast(t) for c, t in UNIT_SCORES_SCHEMA.items()]
    if "_row" in out.columns:
        keep.append(pl.col("_row").fill_null(-1))
    return out.select(keep).sort(UNIT_KEYS)


def _tie_scores(rows: pl.DataFrame, tree: UnitTree) -> pl.DataFrame:
    names = _unit_names(tree)
    out = rows.with_columns(
        from_unit=pl.col("from").replace_strict(np.arange(tree.count), names),
        to_unit=pl.col("to").replace_strict(np.arange(tree.count), names),
    ).with_columns(_hide(["n", "mean", "sd", "ci_low", "ci_high", "band"]))
    keep = [pl.col(c).cast(t) for c, t in TIE_SCORES_SCHEMA.items()]
    if "_row" in out.columns:
        keep.append(pl.col("_row"))
    return out.select(keep).sort(TIE_KEYS)


def _participation(rows: pl.DataFrame, tree: UnitTree) -> pl.DataFrame:
    names = _unit_names(tree)
    out = rows.with_columns(
        unit=pl.col("unit").replace_strict(np.arange(tree.count), names)
    ).with_columns(_hide(["respondents", "response_rate"]))
    return out.select(pl.col(c).cast(t) for c, t in UNIT_PARTICIPATION_SCHEMA.items()).sort(
        "unit", "rollup"
    )
