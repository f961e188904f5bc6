"""Which rows pool which base cells — without listing the pairs.

A base cell (a, b, item) of a tie lies in its own tie rows, in the ``incoming`` row of b and the
``outgoing`` row of a, and in roll-up rows all the way up the tree: ``internal`` of every
ancestor-or-self of lca(a, b), ``outgoing`` of the ancestors of a below it, ``incoming`` of the
ancestors of b below it (and a cell of a unit's members in the roll-ups of its ancestors). Listed
pair by pair, that is cells × depth entries: fine for ordinary trees, gigabytes for a 1,000-deep
chain. So both directions go through the tree instead, in time linear in cells, units and depth:

* ``cell_sums(values)``: for every cell, the sum of a per-row value over the rows that pool it
  (the signatures of atoms.py) — roll-up parts from prefix sums down the tree, P(u) = Σ over
  ancestors-or-self of u, evaluated at a, b and lca(a, b);
* ``row_sums(values)``: for every row, the sum of a per-cell value over the cells it pools (the
  preview noise of a row, which rows pool a hidden cell) — roll-up parts from subtree sums up
  the tree of the cells grouped by a, b and lca(a, b).

``rows_of(cells)`` lists the rows of a few cells explicitly (the repair looks at one cell per
unsafe atom). The three agree by construction; tests hold them against each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from coherence_scoring.engine.layout import (
    INCOMING,
    INTERNAL,
    MEMBERS,
    OUTGOING,
    Measures,
    UnitTree,
)
from coherence_scoring.engine.protection.cells import BaseCells, rows_of_cells
from coherence_scoring.engine.protection.rows import BETWEEN, ORG, WITHIN, RowIndex
from coherence_scoring.engine.respondent import SELF

Ints = npt.NDArray[np.int64]
Values = npt.NDArray[Any]  # (n, k): int64 or uint64 (wrapping sums)

_ROLLUP_TYPES = (INTERNAL, OUTGOING, INCOMING, MEMBERS)


def lowest_common_ancestors(tree: UnitTree, a: Ints, b: Ints) -> Ints:
    """lca(a, b) per pair, -1 when they lie in different trees (binary lifting)."""
    n = tree.count
    depth = tree.depth
    levels = max(1, int(depth.max(initial=0)).bit_length())
    up = np.empty((levels, n + 1), dtype=np.int64)
    up[0, :n] = np.where(tree.parent >= 0, tree.parent, n)
    up[0, n] = n  # a sentinel above every root
    for j in range(1, levels):
        up[j] = up[j - 1][up[j - 1]]
    a, b = a.copy(), b.copy()
    deeper = depth[a] < depth[b]
    a[deeper], b[deeper] = b[deeper], a[deeper].copy()
    diff = depth[a] - depth[b]
    for j in range(levels):
        move = (diff >> j) & 1 == 1
        a[move] = up[j][a[move]]
    for j in range(levels - 1, -1, -1):
        split = up[j][a] != up[j][b]
        a[split] = up[j][a[split]]
        b[split] = up[j][b[split]]
    lca = np.where(a == b, a, up[0][a])
    return np.where(lca >= n, -1, lca)


@dataclass(frozen=True)
class Incidence:
    cells: BaseCells
    rows: RowIndex
    measures: Measures
    tree: UnitTree
    network_mid: int | None
    #: per cell: the lowest common ancestor of its rater unit and target (-1: another tree;
    #: the unit itself for a cell of members)
    lca: Ints
    #: per cell and measure position (item, subscale, index): the direct rows (tie or members
    #: row; incoming; outgoing) and the summary rows, -1 where none
    direct: Ints  # (cells, 3 measures, 4 kinds)
    #: roll-up row ids per (type, unit, measure): -1 where the unit has no such row
    rollup: Ints  # (4 types, units, mids)
    #: units level by level from the roots (a list of index arrays), for prefix / subtree sums
    levels: list[Ints]

    @classmethod
    def build(
        cls,
        cells: BaseCells,
        rows: RowIndex,
        measures: Measures,
        tree: UnitTree,
        network_mid: int | None,
    ) -> Incidence:
        n_units, n_mids = tree.count, measures.count
        tie = cells.b != SELF
        b = np.where(tie, cells.b, cells.a)
        lca = lowest_common_ancestors(tree, cells.a, b) if cells.count else cells.a.copy()
        chain = np.stack(
            [
                measures.item_mid[cells.item],
                measures.subscale_mid[cells.item],
                measures.index_mid[cells.item],
            ],
            axis=1,
        )
        direct = np.full((cells.count, 3, 4), -1, dtype=np.int64)
        zero = np.zeros(cells.count, dtype=np.int64)
        off = tie & (cells.a != cells.b)
        for position in range(3):
            mid = chain[:, position]
            has = mid >= 0
            own = np.where(
                tie,
                rows.tie_row(cells.a, np.maximum(cells.b, 0), np.maximum(mid, 0)),
                rows.unit_row(cells.a, zero, zero + MEMBERS, np.maximum(mid, 0)),
            )
            direct[:, position, 0] = np.where(has, own, -1)
            incoming = rows.unit_row(
                np.maximum(cells.b, 0), zero, zero + INCOMING, np.maximum(mid, 0)
            )
            outgoing = rows.unit_row(cells.a, zero, zero + OUTGOING, np.maximum(mid, 0))
            direct[:, position, 1] = np.where(has & off, incoming, -1)
            direct[:, position, 2] = np.where(has & off, outgoing, -1)
        index_mid = chain[:, 2]
        summary = np.full(cells.count, -1, dtype=np.int64)
        direct[:, 0, 3] = rows.summary_row(ORG, index_mid)
        if network_mid is not None:
            net = tie & (index_mid == network_mid)
            within = rows.summary_row(WITHIN, index_mid)
            between = rows.summary_row(BETWEEN, index_mid)
            summary = np.where(net, np.where(cells.a == cells.b, within, between), -1)
        direct[:, 1, 3] = summary
        rollup = np.full((4, n_units, n_mids), -1, dtype=np.int64)
        parents = np.flatnonzero(tree.has_children)
        for t, persp in enumerate(_ROLLUP_TYPES):
            for m in range(n_mids):
                rollup[t, parents, m] = rows.unit_row(
                    parents,
                    np.ones_like(parents),
                    np.full_like(parents, persp),
                    np.full_like(parents, m),
                )
        order = np.argsort(tree.depth, kind="stable")
        bounds = np.searchsorted(tree.depth[order], np.arange(int(tree.depth.max(initial=0)) + 2))
        levels = [order[bounds[d] : bounds[d + 1]] for d in range(len(bounds) - 1)]
        return cls(cells, rows, measures, tree, network_mid, lca, direct, rollup, levels)

    # ---- cells ← rows ------------------------------------------------------------------------

    def cell_sums(self, values: Values) -> Values:
        """Per cell, Σ values[row] over the rows that pool it (``values``: (rows, k))."""
        cells = self.cells
        k = values.shape[1]
        padded = np.vstack([values, np.zeros((1, k), dtype=values.dtype)])  # -1 → zeros
        out = np.zeros((cells.count, k), dtype=values.dtype)
        with np.errstate(over="ignore"):
            for position in range(3):
                for kind in range(4):
                    out += padded[self.direct[:, position, kind]]
            prefix = self._prefix(values)  # (4, units + 1, mids, k); unit -1 → zeros
            tie = np.flatnonzero(cells.b != SELF)
            own = np.flatnonzero(cells.b == SELF)
            a, b, lca = cells.a[tie], cells.b[tie], self.lca[tie]
            for chain in (
                self.measures.item_mid,
                self.measures.subscale_mid,
                self.measures.index_mid,
            ):
                mid = chain[cells.item]
                t = tie[mid[tie] >= 0]
                keep = mid[tie] >= 0
                m = mid[t]
                at, bt, lt = a[keep], b[keep], lca[keep]
                out[t] += (
                    prefix[0, lt, m]
                    + prefix[1, at, m]
                    - prefix[1, lt, m]
                    + prefix[2, bt, m]
                    - prefix[2, lt, m]
                )
                s = own[mid[own] >= 0]
                out[s] += prefix[3, cells.a[s], mid[s]]
        return out

    def _prefix(self, values: Values) -> Values:
        """P[t, u, m] = Σ values[rollup row (t, p, m)] over ancestors-or-self p of u; the last
        unit slot (index -1) stays zero, for cells in no common tree."""
        n_units = self.tree.count
        k = values.shape[1]
        own = np.zeros((4, n_units + 1, self.measures.count, k), dtype=values.dtype)
        ids = self.rollup
        present = ids >= 0
        own[:, :n_units][present] = values[ids[present]]
        with np.errstate(over="ignore"):
            for level in self.levels[1:]:
                parent = self.tree.parent[level]
                own[:, level] += own[:, parent]
        return own

    # ---- rows ← cells ------------------------------------------------------------------------

    def row_sums(self, values: Values) -> Values:
        """Per row, Σ values[cell] over the cells it pools (``values``: (cells, k))."""
        cells, tree = self.cells, self.tree
        k = values.shape[1]
        out = np.zeros((self.rows.count, k), dtype=values.dtype)
        with np.errstate(over="ignore"):
            for position in range(3):
                for kind in range(4):
                    ids = self.direct[:, position, kind]
                    ok = ids >= 0
                    np.add.at(out, ids[ok], values[ok])
            tie = cells.b != SELF
            chain = [
                self.measures.item_mid[cells.item],
                self.measures.subscale_mid[cells.item],
                self.measures.index_mid[cells.item],
            ]
            n_units, n_mids = tree.count, self.measures.count
            by_a = np.zeros((n_units + 1, n_mids, k), dtype=values.dtype)
            by_b = np.zeros_like(by_a)
            by_lca = np.zeros_like(by_a)
            members = np.zeros_like(by_a)
            for mid in chain:
                has = mid >= 0
                t = has & tie
                s = has & ~tie
                np.add.at(by_a, (cells.a[t], mid[t]), values[t])
                np.add.at(by_b, (cells.b[t], mid[t]), values[t])
                np.add.at(by_lca, (self.lca[t], mid[t]), values[t])
                np.add.at(members, (cells.a[s], mid[s]), values[s])
            by_lca[n_units] = 0  # pairs in different trees are in no common roll-up
            for frame in (by_a, by_b, by_lca, members):
                for level in reversed(self.levels[1:]):
                    np.add.at(frame, tree.parent[level], frame[level])
            totals = {
                INTERNAL: by_lca,
                OUTGOING: by_a - by_lca,
                INCOMING: by_b - by_lca,
                MEMBERS: members,
            }
            for t, persp in enumerate(_ROLLUP_TYPES):
                ids = self.rollup[t]
                present = ids >= 0
                out[ids[present]] += totals[persp][:n_units][present]
        return out

    # ---- a few cells, explicitly --------------------------------------------------------------

    def rows_of(self, cells: Ints) -> tuple[Ints, Ints]:
        """(position in ``cells``, row) for every row pooling each of the given cells."""
        return rows_of_cells(
            self.cells, cells, self.rows, self.measures, self.tree, self.network_mid
        )
