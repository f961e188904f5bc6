"""Respondent-level scores (SCORING.md §2): recoding, reversal and the minimum-answers rule.

A respondent's score for a measure (``index``, a subscale, an item) about a target (or about
their own unit, for scales asked once) is kept as an exact integer ``x = score · L``, where ``L``
(the measure's ``denominator``) is divisible by every possible number of answered items. Sums of
such integers do not depend on the order they are added in, which is what makes every aggregate
bit-identical whatever the row order of the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from coherence_scoring.engine.layout import Measures, UnitTree
from coherence_scoring.engine.types import ScoringInput

#: ``target`` of a score from a scale asked once (``targeting: "self"``).
SELF = -1


@dataclass(frozen=True)
class RespondentData:
    """Respondent-level data of one round; ``r`` is a dense respondent index."""

    #: r (Int32), respondent (Int64), unit (Int32): every respondent of the round, by r
    respondents: pl.DataFrame
    #: r, a (home unit), target (SELF for scales asked once), item, v (scored value):
    #: answered items only ("don't know" is not an answer)
    answers: pl.DataFrame
    #: r, a, target, mid, x (Int64, the score times the measure's denominator)
    scores: pl.DataFrame

    @property
    def home(self) -> np.ndarray:
        return self.respondents["unit"].to_numpy()


def prepare(inputs: ScoringInput, measures: Measures, tree: UnitTree) -> RespondentData:
    n_units = tree.count
    respondents = (
        inputs.respondents.select(
            pl.col("respondent").cast(pl.Int64), pl.col("unit").cast(pl.Int32)
        )
        .filter(pl.col("unit").is_between(0, n_units - 1))
        .sort("respondent")
    )
    if respondents["respondent"].is_duplicated().any():
        raise ValueError("a respondent appears twice in the round")
    respondents = respondents.with_columns(r=pl.int_range(pl.len(), dtype=pl.Int32)).select(
        "r", "respondent", "unit"
    )
    answers = _scored_answers(inputs.answers, respondents, measures, n_units)
    scores = _scores(answers, measures, n_units)
    return RespondentData(respondents=respondents, answers=answers, scores=scores)


def _scored_answers(
    raw: pl.DataFrame, respondents: pl.DataFrame, measures: Measures, n_units: int
) -> pl.DataFrame:
    n_items, width = measures.lut.shape
    joined = (
        raw.select(
            pl.col("respondent").cast(pl.Int64),
            pl.col("target").cast(pl.Int32),
            pl.col("item").cast(pl.Int32),
            pl.col("value").cast(pl.Int32),
        )
        .filter(pl.col("value").is_not_null() & pl.col("item").is_between(0, n_items - 1))
        .join(respondents, on="respondent", how="inner")
    )
    item = joined["item"].to_numpy()
    offset = joined["value"].to_numpy() - measures.raw_low
    in_range = (offset >= 0) & (offset < width)
    scored = np.where(in_range, measures.lut[item, np.clip(offset, 0, width - 1)], -1)
    unit_targeted = measures.item_unit_targeted[item]
    target = joined["target"].fill_null(-2).to_numpy()
    target = np.where(unit_targeted, target, SELF)
    keep = (scored >= 0) & (~unit_targeted | ((target >= 0) & (target < n_units)))
    return pl.DataFrame(
        {
            "r": joined["r"].to_numpy()[keep],
            "a": joined["unit"].to_numpy()[keep],
            "target": target[keep].astype(np.int32),
            "item": item[keep].astype(np.int32),
            "v": scored[keep].astype(np.int32),
        }
    )


def _scores(answers: pl.DataFrame, measures: Measures, n_units: int) -> pl.DataFrame:
    """Item measures, and the index and subscale means that pass the minimum-answers rule."""
    m_count = measures.count
    item = answers["item"].to_numpy()
    v = answers["v"].to_numpy().astype(np.int64)
    r = answers["r"].to_numpy().astype(np.int64)
    a = answers["a"].to_numpy()
    target = answers["target"].to_numpy().astype(np.int64)
    cell = (r * (n_units + 1) + target + 1) * m_count

    sub = measures.subscale_mid[item]
    has_sub = sub >= 0
    grouped = (
        pl.DataFrame(
            {
                "key": np.concatenate([cell + measures.index_mid[item], (cell + sub)[has_sub]]),
                "v": np.concatenate([v, v[has_sub]]),
            }
        )
        .group_by("key")
        .agg(c=pl.len().cast(pl.Int64), s=pl.col("v").sum())
    )
    key = grouped["key"].to_numpy()
    count = grouped["c"].to_numpy()
    total = grouped["s"].to_numpy()
    mid = key % m_count
    rest = key // m_count
    g_target = rest % (n_units + 1) - 1
    g_r = rest // (n_units + 1)
    ok = count >= measures.column("min_answered")[mid]
    mid, g_target, g_r, count, total = mid[ok], g_target[ok], g_r[ok], count[ok], total[ok]
    denominator = measures.column("denominator")[mid].astype(np.int64)
    exact = measures.column("exact")[mid].astype(bool)
    x = np.where(
        exact,
        total * (denominator // count),
        (2 * total * denominator + count) // (2 * count),
    )
    home = np.zeros(0, dtype=np.int32)
    if len(r):
        home = np.zeros(int(r.max()) + 1, dtype=np.int32)
        home[r] = a
    return pl.DataFrame(
        {
            "r": np.concatenate([r, g_r]).astype(np.int32),
            "a": np.concatenate([a, home[g_r]]).astype(np.int32),
            "target": np.concatenate([target, g_target]).astype(np.int32),
            "mid": np.concatenate([measures.item_mid[item], mid]).astype(np.int32),
            "x": np.concatenate([v, x]).astype(np.int64),
        }
    )
