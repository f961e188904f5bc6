"""Counted responses per respondent and referent (SCORING.md §2–3, scoring method 2).

Kept *wide*: one row per respondent and target (a tie) or per respondent (scales asked once),
one column per measure (``index``, subscales, items). Per cell: ``y`` the exact integer sum of
the respondent's counted responses in the measure, ``m`` their number (0: none), and ``x`` the
respondent's value in the measure (``y / m``) as the exact integer ``x = (y / m) · L``, where
``L`` (the measure's ``denominator``) is divisible by every possible ``m``. Rows pool ``y`` and
``m`` (pooled means); ``x`` only feeds the spread (sd, interval). Integer sums never depend on the
order they are added in: every result is bit-identical whatever the row order and ids.

Eligibility: a respondent's responses to a scale about a referent count only when they answered
at least the scale's minimum number of its items about it; that one rule decides index, subscale
and item cells alike (subscales have no minimum of their own).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from coherence_scoring.engine.layout import INDEX, ITEM, Measures, UnitTree
from coherence_scoring.engine.types import ScoringInput

#: ``b`` (target) of a row of scales asked once (``targeting: "self"``).
SELF = -1
#: Rows are numbered through a lookup table over every (respondent, target) pair when it is
#: not much larger than the answers (else by sorting the pairs that occur).
ROW_TABLE_MIN = 2**20


@dataclass(frozen=True)
class Wide:
    """Counted responses of one kind of row: ``rows`` (r, a = home unit, b = target or SELF)
    and, per column ``j`` (measure ``mids[j]``), ``y[:, j]`` (sum), ``m[:, j]`` (count),
    ``x[:, j]`` (value · L) and ``has[:, j]`` (m > 0); all 0 where absent."""

    rows: pl.DataFrame
    mids: npt.NDArray[np.int64]
    x: npt.NDArray[np.int64]
    has: npt.NDArray[np.bool_]
    y: npt.NDArray[np.int64]
    m: npt.NDArray[np.int64]

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
    """The counted responses of the selected rows: one column per measure of ``mids``."""
    local = np.cumsum(selected) - 1
    n_rows = int(selected.sum())
    col_of = np.full(measures.count, -1, dtype=np.int64)
    col_of[mids] = np.arange(len(mids))
    y = np.zeros((n_rows, len(mids)), dtype=np.int64)
    m = np.zeros((n_rows, len(mids)), dtype=np.int64)
    mine = selected[row]
    at_row = local[row[mine]]
    at_col = col_of[measures.item_mid[answers["item"][mine]]]
    y[at_row, at_col] = answers["v"][mine]
    m[at_row, at_col] = 1
    if int(m.sum()) != len(at_row):
        raise ValueError("an item is answered twice by one respondent about one target")

    kind = measures.column("kind")
    for j, mid in enumerate(mids):
        if kind[mid] == ITEM:
            continue
        members = np.flatnonzero((measures.index_mid == mid) | (measures.subscale_mid == mid))
        cols = col_of[measures.item_mid[members]]
        y[:, j] = y[:, cols].sum(axis=1)
        m[:, j] = m[:, cols].sum(axis=1)
    # eligibility: the scale's index count decides every measure of the scale
    min_answered = measures.column("min_answered")
    scale_of = measures.column("scale_idx")
    index_col = {int(scale_of[mid]): j for j, mid in enumerate(mids) if kind[mid] == INDEX}
    own_index = np.array([index_col[int(scale_of[mid])] for mid in mids], dtype=np.int64)
    eligible = m[:, own_index] >= min_answered.astype(np.int64)[mids[own_index]][None, :]
    y *= eligible
    m *= eligible
    has = m > 0
    x = _scaled_values(y, m, measures.column("denominator")[mids], measures.column("exact")[mids])
    r, a, b = rows_rab
    frame = pl.DataFrame(
        {
            "r": r[selected].astype(np.int32),
            "a": a[selected].astype(np.int32),
            "b": b[selected].astype(np.int32),
        }
    )
    return Wide(rows=frame, mids=mids.astype(np.int64), x=x, has=has, y=y, m=m)


def _scaled_values(
    y: npt.NDArray[np.int64],
    m: npt.NDArray[np.int64],
    denominator: npt.NDArray[np.generic],
    exact: npt.NDArray[np.generic],
) -> npt.NDArray[np.int64]:
    """x = (y / m) · L per cell: exact where L is divisible by every m (a lookup of L // m per
    column), else rounded half up; 0 where m = 0."""
    big_l = denominator.astype(np.int64)
    is_exact = exact.astype(bool)
    x = np.zeros_like(y)
    top = int(m.max(initial=0))
    for j in range(y.shape[1]):
        if is_exact[j]:
            quotient = np.zeros(top + 1, dtype=np.int64)
            quotient[1:] = big_l[j] // np.arange(1, top + 1)
            x[:, j] = y[:, j] * quotient[m[:, j]]
        else:
            safe = np.maximum(m[:, j], 1)
            x[:, j] = np.where(m[:, j] > 0, (2 * y[:, j] * big_l[j] + safe) // (2 * safe), 0)
    return x
