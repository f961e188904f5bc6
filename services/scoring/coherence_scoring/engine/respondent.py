"""Respondent-level scores (SCORING.md §2): recoding, reversal and the minimum-answers rule.

Scores are kept *wide*: one row per respondent and target (a tie) or per respondent (scales
asked once), one column per measure (``index``, subscales, items). A score is stored as the
exact integer ``x = score · L``, where ``L`` (the measure's ``denominator``) is divisible by
every possible number of answered items, so sums of scores are exact integers and never depend
on the order they are added in: that is what makes every result bit-identical whatever the row
order of the input and whatever the respondent ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from coherence_scoring.engine.layout import Measures, UnitTree
from coherence_scoring.engine.types import ScoringInput

#: ``b`` (target) of a row of scales asked once (``targeting: "self"``).
SELF = -1


@dataclass(frozen=True)
class Wide:
    """Scores of one kind of row: ``rows`` (r, a = home unit, b = target or SELF) and, per
    column ``j`` (measure ``mids[j]``), ``x[:, j]`` (0 where absent) and ``has[:, j]``."""

    rows: pl.DataFrame
    mids: npt.NDArray[np.int64]
    x: npt.NDArray[np.int64]
    has: npt.NDArray[np.bool_]

    @property
    def height(self) -> int:
        return self.rows.height

    def column(self, name: str) -> npt.NDArray[np.int64]:
        return self.rows[name].to_numpy().astype(np.int64)

    def col(self, mid: int) -> int:
        """The column of a measure (it must be one of this frame's)."""
        return int(np.flatnonzero(self.mids == mid)[0])

    def long(self) -> pl.DataFrame:
        """r, a, b, mid, x: one row per present score."""
        row, col = np.nonzero(self.has)
        return pl.DataFrame(
            {
                "r": self.column("r")[row].astype(np.int32),
                "a": self.column("a")[row].astype(np.int32),
                "b": self.column("b")[row].astype(np.int32),
                "mid": self.mids[col].astype(np.int32),
                "x": self.x[row, col],
            }
        )


@dataclass(frozen=True)
class RespondentData:
    """Respondent-level data of one round; ``r`` is a dense respondent index."""

    #: r (Int32), respondent (Int64), unit (Int32): every respondent of the round, by r
    respondents: pl.DataFrame
    #: rows per (respondent, target unit): the unit-targeted scales' tie scores
    ties: Wide
    #: rows per respondent: the self-targeted scales' scores
    selves: Wide

    @property
    def home(self) -> npt.NDArray[np.int64]:
        return self.respondents["unit"].to_numpy().astype(np.int64)


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
    ties, selves = _wide_scores(answers, measures, n_units)
    return RespondentData(respondents=respondents, ties=ties, selves=selves)


def _scored_answers(
    raw: pl.DataFrame, respondents: pl.DataFrame, measures: Measures, n_units: int
) -> dict[str, npt.NDArray[np.int64]]:
    """r, a, b, item, v of every valid answered item (recoded, then reversed)."""
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
    item = joined["item"].to_numpy().astype(np.int64)
    offset = joined["value"].to_numpy() - measures.raw_low
    in_range = (offset >= 0) & (offset < width)
    scored = np.where(in_range, measures.lut[item, np.clip(offset, 0, width - 1)], -1)
    unit_targeted = measures.item_unit_targeted[item]
    target = np.where(unit_targeted, joined["target"].fill_null(-2).to_numpy(), SELF)
    keep = (scored >= 0) & (~unit_targeted | ((target >= 0) & (target < n_units)))
    return {
        "r": joined["r"].to_numpy()[keep].astype(np.int64),
        "a": joined["unit"].to_numpy()[keep].astype(np.int64),
        "b": target[keep].astype(np.int64),
        "item": item[keep],
        "v": scored[keep].astype(np.int64),
    }


def _wide_scores(
    answers: dict[str, npt.NDArray[np.int64]], measures: Measures, n_units: int
) -> tuple[Wide, Wide]:
    """Item scores, and index and subscale means that pass the minimum-answers rule.

    Answers are sorted by (respondent, target, scale, subscale, item) once: a row is then a
    contiguous run, and so is every index and subscale group within it (``np.add.reduceat``)."""
    item, v = answers["item"], answers["v"]
    n_items = len(measures.item_mid)
    position = np.empty(n_items, dtype=np.int64)
    position[np.lexsort((np.arange(n_items), measures.subscale_mid, measures.index_mid))] = (
        np.arange(n_items)
    )
    row_key = answers["r"] * (n_units + 1) + answers["b"] + 1
    order = pl.Series(row_key * n_items + position[item]).arg_sort().to_numpy()
    row_key, item, v = row_key[order], item[order], v[order]
    row_start = _run_starts(row_key)
    row_of = np.cumsum(np.r_[False, row_key[1:] != row_key[:-1]]) if len(v) else row_key
    first = order[row_start]
    row_r, row_a, row_b = answers["r"][first], answers["a"][first], answers["b"][first]

    cells = [(row_of, measures.item_mid[item], v)]
    for gmid in (measures.index_mid[item], measures.subscale_mid[item]):
        starts = _run_starts(row_key * (measures.count + 1) + gmid + 1)
        count = np.diff(np.r_[starts, len(v)])
        total = np.add.reduceat(v, starts) if len(v) else v
        mid = gmid[starts]
        ok = (mid >= 0) & (count >= measures.column("min_answered")[np.maximum(mid, 0)])
        starts, count, total, mid = starts[ok], count[ok], total[ok], mid[ok]
        denominator = measures.column("denominator")[mid].astype(np.int64)
        exact = measures.column("exact")[mid].astype(bool)
        x = np.where(
            exact,
            total * (denominator // count),
            (2 * total * denominator + count) // (2 * count),
        )
        cells.append((row_of[starts], mid, x))

    row = np.concatenate([c[0] for c in cells])
    mid = np.concatenate([c[1] for c in cells])
    x = np.concatenate([c[2] for c in cells])
    is_self = row_b == SELF
    unit_targeted = measures.column("unit_targeted").astype(bool)
    scores = (row, mid, x)
    rows = (row_r, row_a, row_b)
    return (
        _wide(scores, rows, ~is_self, np.flatnonzero(unit_targeted)),
        _wide(scores, rows, is_self, np.flatnonzero(~unit_targeted)),
    )


_Arrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]


def _wide(
    scores: _Arrays,
    rows_rab: _Arrays,
    row_selected: npt.NDArray[np.bool_],
    mids: npt.NDArray[np.int64],
) -> Wide:
    """The scores of the selected rows, with one column per measure of ``mids``."""
    row, mid, x = scores
    row_r, row_a, row_b = rows_rab
    local = np.cumsum(row_selected) - 1
    col_of = np.full(int(max(mid.max(initial=0), mids.max(initial=0))) + 1, -1, dtype=np.int64)
    col_of[mids] = np.arange(len(mids))
    keep = row_selected[row] & (col_of[mid] >= 0)
    n_rows = int(row_selected.sum())
    wide_x = np.zeros((n_rows, len(mids)), dtype=np.int64)
    has = np.zeros((n_rows, len(mids)), dtype=bool)
    wide_x[local[row[keep]], col_of[mid[keep]]] = x[keep]
    has[local[row[keep]], col_of[mid[keep]]] = True
    rows = pl.DataFrame(
        {
            "r": row_r[row_selected].astype(np.int32),
            "a": row_a[row_selected].astype(np.int32),
            "b": row_b[row_selected].astype(np.int32),
        }
    )
    return Wide(rows=rows, mids=mids.astype(np.int64), x=wide_x, has=has)


def _run_starts(key: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    if len(key) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
