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
    """Item measures, and the index and subscale means that pass the minimum-answers rule.

    Answers are sorted by (respondent, target, scale, subscale, item) once; every index and
    subscale group is then a contiguous run, summed with ``np.add.reduceat``."""
    item = answers["item"].to_numpy()
    n_items = len(measures.item_mid)
    position = np.empty(n_items, dtype=np.int64)
    position[np.lexsort((np.arange(n_items), measures.subscale_mid, measures.index_mid))] = (
        np.arange(n_items)
    )
    tie = answers["r"].cast(pl.Int64) * (n_units + 1) + answers["target"].cast(pl.Int64) + 1
    order = (tie * n_items + pl.Series(position[item])).arg_sort().to_numpy()
    tie_s = tie.to_numpy()[order]
    item_s = item[order]
    v = answers["v"].to_numpy().astype(np.int64)
    v_s = v[order]
    groups = []
    for gmid in (measures.index_mid[item_s], measures.subscale_mid[item_s]):
        if len(v) == 0:
            break
        starts = np.flatnonzero(
            np.r_[True, (tie_s[1:] != tie_s[:-1]) | (gmid[1:] != gmid[:-1])]
        )
        count = np.diff(np.r_[starts, len(v)])
        total = np.add.reduceat(v_s, starts)
        mid = gmid[starts]
        ok = (mid >= 0) & (count >= measures.column("min_answered")[np.maximum(mid, 0)])
        starts, count, total, mid = starts[ok], count[ok], total[ok], mid[ok]
        denominator = measures.column("denominator")[mid].astype(np.int64)
        exact = measures.column("exact")[mid].astype(bool)
        x = np.where(
            exact,
            total * (denominator // np.maximum(count, 1)),
            (2 * total * denominator + count) // (2 * count),
        )
        groups.append((order[starts], mid, x))

    pick = np.concatenate([g[0] for g in groups]) if groups else np.zeros(0, dtype=np.int64)
    group_rows = answers[pick].select(
        "r", "a", "target",
        mid=pl.Series(np.concatenate([g[1] for g in groups]) if groups else [], dtype=pl.Int32),
        x=pl.Series(np.concatenate([g[2] for g in groups]) if groups else [], dtype=pl.Int64),
    )
    item_rows = answers.select(
        "r", "a", "target",
        mid=pl.Series(measures.item_mid[item], dtype=pl.Int32),
        x=pl.col("v").cast(pl.Int64),
    )
    return pl.concat([item_rows, group_rows])
