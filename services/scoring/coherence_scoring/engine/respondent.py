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

from coherence_scoring.engine.layout import ITEM, Measures, UnitTree
from coherence_scoring.engine.types import ScoringInput

#: ``b`` (target) of a row of scales asked once (``targeting: "self"``).
SELF = -1
#: Rows are numbered through a lookup table over every (respondent, target) pair when it is
#: not much larger than the answers (else by sorting the pairs that occur).
ROW_TABLE_MIN = 2**20


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
    ties, selves = _wide_scores(answers, measures, n_units, respondents.height)
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
    answers: dict[str, npt.NDArray[np.int64]],
    measures: Measures,
    n_units: int,
    n_respondents: int,
) -> tuple[Wide, Wide]:
    """Item scores, and the index and subscale means that pass the minimum-answers rule.

    Answers are scattered into a (row × item) matrix, rows being (respondent, target) pairs
    numbered in key order; index and subscale means are then column sums of that matrix."""
    key = answers["r"] * (n_units + 1) + answers["b"] + 1
    size = n_respondents * (n_units + 1)
    if size <= 8 * len(key) + ROW_TABLE_MIN:
        used = np.zeros(size, dtype=bool)
        used[key] = True
        row_keys = np.flatnonzero(used)
        number = np.cumsum(used) - 1
        row = number[key]
    else:
        row_keys, row = np.unique(key, return_inverse=True)
        row = row.reshape(-1)
    row_r = row_keys // (n_units + 1)
    row_b = row_keys % (n_units + 1) - 1
    row_a = np.zeros(len(row_keys), dtype=np.int64)
    row_a[row] = answers["a"]
    is_self = row_b == SELF
    unit_targeted = measures.column("unit_targeted").astype(bool)
    rows = (row_r, row_a, row_b)
    return (
        _side(answers, row, rows, ~is_self, measures, np.flatnonzero(unit_targeted)),
        _side(answers, row, rows, is_self, measures, np.flatnonzero(~unit_targeted)),
    )


_Arrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]


def _side(
    answers: dict[str, npt.NDArray[np.int64]],
    row: npt.NDArray[np.int64],
    rows_rab: _Arrays,
    selected: npt.NDArray[np.bool_],
    measures: Measures,
    mids: npt.NDArray[np.int64],
) -> Wide:
    """The scores of the selected rows: one column per measure of ``mids`` (in mid order)."""
    local = np.cumsum(selected) - 1
    n_rows = int(selected.sum())
    col_of = np.full(measures.count, -1, dtype=np.int64)
    col_of[mids] = np.arange(len(mids))
    x = np.zeros((n_rows, len(mids)), dtype=np.int64)
    has = np.zeros((n_rows, len(mids)), dtype=bool)
    mine = selected[row]
    at_row = local[row[mine]]
    at_col = col_of[measures.item_mid[answers["item"][mine]]]
    x[at_row, at_col] = answers["v"][mine]
    has[at_row, at_col] = True
    if int(has.sum()) != len(at_row):
        raise ValueError("an item is answered twice by one respondent about one target")

    kind = measures.column("kind")
    min_answered = measures.column("min_answered")
    denominator = measures.column("denominator")
    exact = measures.column("exact").astype(bool)
    for j, mid in enumerate(mids):
        if kind[mid] == ITEM:
            continue
        members = np.flatnonzero((measures.index_mid == mid) | (measures.subscale_mid == mid))
        cols = col_of[measures.item_mid[members]]
        total = x[:, cols].sum(axis=1)
        count = has[:, cols].sum(axis=1)
        ok = count >= min_answered[mid]
        safe = np.maximum(count, 1)
        big_l = int(denominator[mid])
        if exact[mid]:
            x[:, j] = np.where(ok, total * (big_l // safe), 0)
        else:
            x[:, j] = np.where(ok, (2 * total * big_l + safe) // (2 * safe), 0)
        has[:, j] = ok
    r, a, b = rows_rab
    frame = pl.DataFrame(
        {
            "r": r[selected].astype(np.int32),
            "a": a[selected].astype(np.int32),
            "b": b[selected].astype(np.int32),
        }
    )
    return Wide(rows=frame, mids=mids.astype(np.int64), x=x, has=has)
