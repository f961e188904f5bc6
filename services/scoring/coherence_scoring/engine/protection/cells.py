"""Base cells and which rows pool them (docs/scoring-decisions.md, "Base cells and rows").

A base cell is a referent × item: (unit, item) for a scale asked once (``b = SELF``), (from, to,
item) for a scale asked per target unit. Every counted response lies in exactly one base cell,
and every row the round can publish pools a set of base cells — the whole linear structure an
attacker can use: each published row is the sum of its base cells. ``rows_of_cells`` lists the
rows of given cells; incidence.py does the same for a whole round without listing the pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from coherence_scoring.engine.layout import (
    INCOMING,
    INDEX,
    INTERNAL,
    MEMBERS,
    OUTGOING,
    Measures,
    UnitTree,
)
from coherence_scoring.engine.protection.rows import BETWEEN, ORG, WITHIN, RowIndex
from coherence_scoring.engine.respondent import SELF, RespondentData

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BaseCells:
    """Base cells with at least one counted response, and those responses."""

    a: Ints  # the raters' home unit (for a self scale: the unit)
    b: Ints  # the target unit, or SELF
    item: Ints  # index into the instrument's items
    responses: Ints  # number of counted responses (= people: one each)
    total: Ints  # their exact sum
    low: Ints  # the item's smallest and largest scored value
    high: Ints
    #: one entry per counted response: its cell, its respondent (dense r) and its value
    response_cell: Ints
    response_person: Ints
    response_value: Ints

    @property
    def count(self) -> int:
        return len(self.a)


def base_cells(data: RespondentData, measures: Measures, n_units: int) -> BaseCells:
    """The base cells of a round, from the item columns of its counted responses.

    Cells are numbered by (referent, item) in key order: the rows of each kind of data are
    grouped by referent (unit, or from × to) once, then every counted item response of a row
    falls in the cell of its group and column."""
    n_items = len(measures.item_mid)
    item_of_mid = measures.mid_item
    cell_keys: list[Ints] = []
    responses: list[tuple[Ints, Ints, Ints]] = []  # (cell key, person, value)
    for wide in (data.ties, data.selves):
        item_cols = [j for j, mid in enumerate(wide.mids) if int(mid) in item_of_mid]
        if not item_cols or wide.height == 0:
            continue
        cols = np.array(item_cols, dtype=np.int64)
        item = np.array([item_of_mid[int(wide.mids[j])] for j in item_cols], dtype=np.int64)
        referent = wide.column("a") * (n_units + 1) + wide.column("b") + 1
        row, k = np.nonzero(wide.has[:, cols])
        key = referent[row] * n_items + item[k]
        responses.append((key, wide.column("r")[row], wide.y[row, cols[k]]))
    if responses:
        key, person, value = (np.concatenate(p) for p in zip(*responses, strict=True))
    else:
        key = person = value = np.zeros(0, dtype=np.int64)
    # number the cells: sort the keys once (polars' radix sort), runs of equal keys are a cell
    order = pl.Series(key).arg_sort().to_numpy()
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]]) if len(key) else order
    cell_sorted = np.cumsum(np.r_[False, sorted_key[1:] != sorted_key[:-1]]) if len(key) else order
    cell = np.empty(len(key), dtype=np.int64)
    cell[order] = cell_sorted
    del cell_keys
    keys = sorted_key[starts]
    n_cells = len(keys)
    item_of = keys % n_items
    ab = keys // n_items
    return BaseCells(
        a=ab // (n_units + 1),
        b=ab % (n_units + 1) - 1,
        item=item_of,
        responses=np.bincount(cell, minlength=n_cells).astype(np.int64),
        total=np.bincount(cell, weights=value, minlength=n_cells).astype(np.int64),
        low=measures.item_low[item_of],
        high=measures.item_high[item_of],
        response_cell=cell,
        response_person=person.astype(np.int64),
        response_value=value.astype(np.int64),
    )


def rows_of_cells(
    cells: BaseCells,
    subset: Ints,
    rows: RowIndex,
    measures: Measures,
    tree: UnitTree,
    network_mid: int | None,
) -> tuple[Ints, Ints]:
    """(position in ``subset``, row) for every existing row that pools each cell of ``subset``
    (canonical row ids), listed explicitly: cost grows with the depth of the tree, so this is
    for a few cells at a time (incidence.py does the whole round)."""
    item = cells.item[subset]
    item_mid = measures.item_mid[item]
    sub_mid = measures.subscale_mid[item]
    index_mid = measures.index_mid[item]
    a, b = cells.a[subset], cells.b[subset]
    is_tie = b != SELF
    found_cell: list[Ints] = []
    found_row: list[Ints] = []

    def add(position: Ints, row: Ints) -> None:
        ok = row >= 0
        found_cell.append(position[ok])
        found_row.append(row[ok])

    every = np.arange(len(subset), dtype=np.int64)
    anc_a_cell, anc_a = _ancestors(every, a, tree)
    tie_cells = every[is_tie]
    anc_b_cell, anc_b = _ancestors(tie_cells, b[is_tie], tree)
    inside_a = tree.contains(anc_a, np.maximum(b[anc_a_cell], 0))
    outside_b = ~tree.contains(anc_b, a[anc_b_cell])
    ones = np.ones(len(subset), dtype=np.int64)
    zeros = np.zeros(len(subset), dtype=np.int64)
    for mid in (item_mid, sub_mid, index_mid):
        present = mid >= 0
        t = tie_cells[present[tie_cells]]
        add(t, rows.tie_row(a[t], b[t], mid[t]))
        off = t[a[t] != b[t]]
        add(off, rows.unit_row(b[off], zeros[off], zeros[off] + INCOMING, mid[off]))
        add(off, rows.unit_row(a[off], zeros[off], zeros[off] + OUTGOING, mid[off]))
        s = every[~is_tie & present]
        add(s, rows.unit_row(a[s], zeros[s], zeros[s] + MEMBERS, mid[s]))
        c, p = anc_a_cell, anc_a
        keep = present[c]
        c, p, inside = c[keep], p[keep], inside_a[keep]
        tie = is_tie[c]
        persp = np.where(~tie, MEMBERS, np.where(inside, INTERNAL, OUTGOING))
        add(c, rows.unit_row(p, ones[c], persp, mid[c]))
        c, q = anc_b_cell[outside_b], anc_b[outside_b]
        keep = present[c]
        c, q = c[keep], q[keep]
        add(c, rows.unit_row(q, ones[c], zeros[c] + INCOMING, mid[c]))
    add(every, rows.summary_row(ORG, index_mid))
    if network_mid is not None:
        net = every[is_tie & (index_mid == network_mid)]
        diag = a[net] == b[net]
        add(net[diag], rows.summary_row(WITHIN, index_mid[net[diag]]))
        add(net[~diag], rows.summary_row(BETWEEN, index_mid[net[~diag]]))
    position = np.concatenate(found_cell) if found_cell else np.zeros(0, dtype=np.int64)
    row = np.concatenate(found_row) if found_row else np.zeros(0, dtype=np.int64)
    order = np.lexsort((row, position))
    return position[order], row[order]


def _ancestors(cell: Ints, unit: Ints, tree: UnitTree) -> tuple[Ints, Ints]:
    """(cell, p) for every ancestor-or-self p with children of each cell's unit."""
    anc = tree.rollup_ancestors
    if anc.height == 0 or len(cell) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    anc_unit = anc["unit"].to_numpy().astype(np.int64)  # sorted by unit
    anc_p = anc["p"].to_numpy().astype(np.int64)
    first = np.searchsorted(anc_unit, np.arange(tree.count + 1))
    lo, hi = first[unit], first[unit + 1]
    counts = hi - lo
    which = np.repeat(cell, counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return which, anc_p[np.repeat(lo, counts) + offset]


def summary_people(
    data: RespondentData, measures: Measures, network_mid: int | None
) -> pl.DataFrame:
    """kind, mid, n: the people each summary value pools (organisation mean per scale; the
    network's within and between means): respondents with a counted response in the scale
    (about their own unit / another unit)."""
    n_people = data.respondents.height
    rows: list[tuple[int, int, int]] = []
    kind = measures.column("kind")
    for wide in (data.ties, data.selves):
        r = wide.column("r")
        for j, mid in enumerate(wide.mids):
            if kind[mid] != INDEX:
                continue
            has = wide.has[:, j]
            rows.append((ORG, int(mid), _distinct(r[has], n_people)))
            if wide is data.ties and int(mid) == network_mid:
                internal = wide.column("a") == wide.column("b")
                rows.append((WITHIN, int(mid), _distinct(r[has & internal], n_people)))
                rows.append((BETWEEN, int(mid), _distinct(r[has & ~internal], n_people)))
    return pl.DataFrame(
        rows, schema={"kind": pl.Int64, "mid": pl.Int64, "n": pl.Int64}, orient="row"
    ).filter(pl.col("n") > 0)


def _distinct(r: Ints, n_people: int) -> int:
    return int(np.count_nonzero(np.bincount(r, minlength=n_people))) if len(r) else 0
