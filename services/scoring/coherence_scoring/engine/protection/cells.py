"""Base cells and which rows pool them (docs/scoring-decisions.md, "Base cells and rows").

A base cell is a referent × item: (unit, item) for a scale asked once (``b = SELF``), (from, to,
item) for a scale asked per target unit. Every counted response lies in exactly one base cell,
and every row the round can publish pools a set of base cells; ``memberships`` lists, for every
base cell, every row that pools it. That list is the whole linear structure an attacker can use:
each published row is the sum of its base cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from coherence_scoring.engine.layout import (
    INCOMING,
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
    """The base cells of a round, from the item columns of its counted responses."""
    parts = []
    item_of_mid = measures.mid_item
    for wide in (data.ties, data.selves):
        item_cols = [j for j, mid in enumerate(wide.mids) if int(mid) in item_of_mid]
        if not item_cols or wide.height == 0:
            continue
        cols = np.array(item_cols, dtype=np.int64)
        row, k = np.nonzero(wide.has[:, cols])
        col = cols[k]
        item = np.array([item_of_mid[int(wide.mids[j])] for j in item_cols], dtype=np.int64)
        parts.append(
            (
                wide.column("r")[row],
                wide.column("a")[row],
                wide.column("b")[row],
                item[k],
                wide.y[row, col],
            )
        )
    if parts:
        r, a, b, item, v = (np.concatenate(p) for p in zip(*parts, strict=True))
    else:
        r = a = b = item = v = np.zeros(0, dtype=np.int64)
    n_items = len(measures.item_mid)
    key = ((a * (n_units + 1)) + (b + 1)) * n_items + item
    cell_keys, cell = np.unique(key, return_inverse=True)
    cell = cell.reshape(-1)
    item_of = cell_keys % n_items
    ab = cell_keys // n_items
    return BaseCells(
        a=ab // (n_units + 1),
        b=ab % (n_units + 1) - 1,
        item=item_of,
        responses=np.bincount(cell, minlength=len(cell_keys)).astype(np.int64),
        total=np.bincount(cell, weights=v, minlength=len(cell_keys)).astype(np.int64),
        low=measures.item_low[item_of],
        high=measures.item_high[item_of],
        response_cell=cell.astype(np.int64),
        response_person=r.astype(np.int64),
        response_value=v.astype(np.int64),
    )


@dataclass(frozen=True)
class Memberships:
    """Every (base cell, row) with the row pooling the cell, sorted by cell (CSR)."""

    cell: Ints
    row: Ints
    starts: Ints  # starts[c]..starts[c + 1]: the memberships of cell c
    #: the same memberships by row: the cells of row r are
    #: ``cell_by_row[row_starts[r]:row_starts[r + 1]]``
    cell_by_row: Ints
    row_starts: Ints

    def of(self, cells: Ints) -> tuple[Ints, Ints]:
        """(position of the cell in ``cells``, row) for every membership of the given cells."""
        return _gather(self.starts, self.row, cells)

    def cells_of(self, rows: Ints) -> tuple[Ints, Ints]:
        """(position of the row in ``rows``, cell) for every cell the given rows pool."""
        return _gather(self.row_starts, self.cell_by_row, rows)


def _gather(starts: Ints, values: Ints, keys: Ints) -> tuple[Ints, Ints]:
    lo, hi = starts[keys], starts[keys + 1]
    counts = hi - lo
    which = np.repeat(np.arange(len(keys)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return which, values[np.repeat(lo, counts) + offset]


def memberships(
    cells: BaseCells,
    rows: RowIndex,
    measures: Measures,
    tree: UnitTree,
    network_mid: int | None,
) -> Memberships:
    """For every base cell, every existing row that pools it (canonical row ids)."""
    item_mid = measures.item_mid[cells.item]
    sub_mid = measures.subscale_mid[cells.item]
    index_mid = measures.index_mid[cells.item]
    is_tie = cells.b != SELF
    a, b = cells.a, cells.b
    found_cell: list[Ints] = []
    found_row: list[Ints] = []

    def add(cell: Ints, row: Ints) -> None:
        ok = row >= 0
        found_cell.append(cell[ok])
        found_row.append(row[ok])

    every = np.arange(cells.count, dtype=np.int64)
    # rollup ancestors (with children) of a and of b, as (cell, p) lists
    anc_a_cell, anc_a = _ancestors(every, a, tree)
    tie_cells = every[is_tie]
    anc_b_cell, anc_b = _ancestors(tie_cells, b[is_tie], tree)
    inside_a = tree.contains(anc_a, np.maximum(b[anc_a_cell], 0))
    outside_b = ~tree.contains(anc_b, a[anc_b_cell])
    ones = np.ones(cells.count, dtype=np.int64)
    zeros = np.zeros(cells.count, dtype=np.int64)
    for mid in (item_mid, sub_mid, index_mid):
        present = mid >= 0
        t = tie_cells[present[tie_cells]]
        add(t, rows.tie_row(a[t], b[t], mid[t]))
        off = t[a[t] != b[t]]
        add(off, rows.unit_row(b[off], zeros[off], zeros[off] + INCOMING, mid[off]))
        add(off, rows.unit_row(a[off], zeros[off], zeros[off] + OUTGOING, mid[off]))
        s = every[~is_tie & present]
        add(s, rows.unit_row(a[s], zeros[s], zeros[s] + MEMBERS, mid[s]))
        # roll-ups through a's ancestors: members (self), internal / outgoing (ties)
        c, p = anc_a_cell, anc_a
        keep = present[c]
        c, p, inside = c[keep], p[keep], inside_a[keep]
        tie = is_tie[c]
        persp = np.where(~tie, MEMBERS, np.where(inside, INTERNAL, OUTGOING))
        add(c, rows.unit_row(p, ones[c], persp, mid[c]))
        # roll-up incoming through b's ancestors that do not contain a
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
    cell = np.concatenate(found_cell) if found_cell else np.zeros(0, dtype=np.int64)
    row = np.concatenate(found_row) if found_row else np.zeros(0, dtype=np.int64)
    order = pl.Series(cell).arg_sort().to_numpy()
    cell, row = cell[order], row[order]
    starts = np.searchsorted(cell, np.arange(cells.count + 1))
    by_row = pl.Series(row).arg_sort().to_numpy()
    row_starts = np.searchsorted(row[by_row], np.arange(rows.count + 1))
    return Memberships(
        cell=cell,
        row=row,
        starts=starts.astype(np.int64),
        cell_by_row=cell[by_row],
        row_starts=row_starts.astype(np.int64),
    )


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


def summary_people(cells: BaseCells, measures: Measures, network_mid: int | None) -> pl.DataFrame:
    """kind, mid, n: the people each summary value pools (organisation mean per scale; the
    network's within and between means)."""
    person, cell = cells.response_person, cells.response_cell
    index_mid = measures.index_mid[cells.item][cell]
    kind = np.full(len(cell), ORG, dtype=np.int64)
    parts = [(kind, index_mid, person)]
    if network_mid is not None:
        tie = (cells.b[cell] != SELF) & (index_mid == network_mid)
        diag = (cells.a[cell] == cells.b[cell])[tie]
        parts.append((np.where(diag, WITHIN, BETWEEN), index_mid[tie], person[tie]))
    kind, mid, r = (np.concatenate(p) for p in zip(*parts, strict=True))
    span = int(r.max()) + 1 if len(r) else 1
    group = kind * (measures.count + 1) + mid
    distinct = np.unique(group * span + r) // span
    keys, n = np.unique(distinct, return_counts=True)
    return pl.DataFrame(
        {
            "kind": keys // (measures.count + 1),
            "mid": keys % (measures.count + 1),
            "n": n.astype(np.int64),
        }
    )
