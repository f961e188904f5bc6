"""Every row a round can publish, numbered, with what the protection needs to know about it.

Row ids: the unit rows (in the order of the unit statistics frame), then the tie rows, then the
summary rows (a scale's organisation mean; the network's within and between means). The
``internal`` unit row of a is the tie ``R[a,a]`` under another name: it shares the tie's id
(``alias``), so the two are always published or hidden together.

A row's **family** is its referent and perspective across the measures of one scale (a tie; a
unit × perspective; a unit's roll-up rows of every perspective): the protection hides a family
at a time. The measures of one referent only ever separate cells together, and so do the roll-up
rows of one subtree (its internal and incoming rows split a target's raters at the same place).
Its **cost** is the number of people it describes (SCORING.md §5: "fewest people hidden"),
weighted by what the method reports first (``COST_WEIGHT``): a unit's own ``members``,
``internal`` and ``incoming`` rows weigh most, then their roll-ups; ties and ``outgoing`` rows
least (the same responses are
reported by the incoming rows of their targets, and the leadership–collaboration relation uses
incoming); a summary value counts as many times as its scale has measures, because it stands
for the whole scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from coherence_scoring.engine.layout import INTERNAL, OUTGOING, Measures

Ints = npt.NDArray[np.int64]

#: Summary row kinds.
ORG, WITHIN, BETWEEN = 0, 1, 2

#: What hiding a row costs per person it describes: [rollup][perspective] for unit rows
#: (members, internal, incoming, outgoing), then ties and summary values.
COST_WEIGHT = {False: (4, 4, 4, 1), True: (3, 3, 3, 1)}
TIE_WEIGHT, SUMMARY_WEIGHT = 1, 4


def lookup(keys: Ints, values: Ints, query: Ints) -> Ints:
    """values[keys == q] for each q of query (keys unique), -1 where absent."""
    order = np.argsort(keys, kind="stable")
    return sorted_lookup(keys[order], values[order], query)


def sorted_lookup(sorted_keys: Ints, values: Ints, query: Ints) -> Ints:
    """Like ``lookup`` for keys already sorted (``values`` in the same order)."""
    if len(sorted_keys) == 0 or len(query) == 0:
        return np.full(len(query), -1, dtype=np.int64)
    pos = np.clip(np.searchsorted(sorted_keys, query), 0, len(sorted_keys) - 1)
    found = sorted_keys[pos] == query
    return np.where(found, values[pos], -1).astype(np.int64)


@dataclass(frozen=True)
class RowIndex:
    n_units: int
    n_mids: int
    unit_count: int  # unit rows
    tie_count: int  # tie rows
    #: per row id: people (n), what hiding it costs, its family, its measure (mid), and whether
    #: it is an ``outgoing`` row (roll-up or not)
    n: Ints
    mid: Ints
    cost: Ints
    family: Ints
    is_outgoing: npt.NDArray[np.bool_]
    #: the row id that stands for each row (itself, or the tie R[a,a] for an internal row)
    canonical: Ints
    #: summary rows: (kind, mid) per summary row, in id order from ``unit_count + tie_count``
    summary_keys: list[tuple[int, int]]
    #: row keys sorted, with the row ids in the same order
    _unit_keys: Ints
    _unit_ids: Ints
    _tie_keys: Ints
    _tie_ids: Ints

    @property
    def count(self) -> int:
        return len(self.n)

    def unit_row(self, unit: Ints, rollup: Ints, persp: Ints, mid: Ints) -> Ints:
        """Canonical ids of unit rows (-1 where the row does not exist)."""
        code = ((unit * 2 + rollup) * 4 + persp) * self.n_mids + mid
        found = sorted_lookup(self._unit_keys, self._unit_ids, code)
        if not self.unit_count:
            return found
        return np.where(found >= 0, self.canonical[np.maximum(found, 0)], -1)

    def tie_row(self, a: Ints, b: Ints, mid: Ints) -> Ints:
        code = (a * self.n_units + b) * self.n_mids + mid
        found = sorted_lookup(self._tie_keys, self._tie_ids, code)
        return np.where(found >= 0, found + self.unit_count, -1)

    def summary_row(self, kind: int, mid: Ints) -> Ints:
        ids = np.full(len(mid), -1, dtype=np.int64)
        base = self.unit_count + self.tie_count
        for position, (k, m) in enumerate(self.summary_keys):
            if k == kind:
                ids[mid == m] = base + position
        return ids


def build_rows(
    unit_stats: pl.DataFrame,
    tie_stats: pl.DataFrame,
    summary_n: dict[tuple[int, int], int],
    measures: Measures,
    n_units: int,
) -> RowIndex:
    """unit_stats: unit, rollup, persp, mid, n (row order = unit row ids); tie_stats: from,
    to, mid, n; summary_n: (kind, mid) → the number of people the summary value pools."""
    n_mids = measures.count
    u_unit = unit_stats["unit"].to_numpy().astype(np.int64)
    u_rollup = unit_stats["rollup"].to_numpy().astype(np.int64)
    u_persp = unit_stats["persp"].to_numpy().astype(np.int64)
    u_mid = unit_stats["mid"].to_numpy().astype(np.int64)
    t_from = tie_stats["from"].to_numpy().astype(np.int64)
    t_to = tie_stats["to"].to_numpy().astype(np.int64)
    t_mid = tie_stats["mid"].to_numpy().astype(np.int64)
    unit_keys = ((u_unit * 2 + u_rollup) * 4 + u_persp) * n_mids + u_mid
    tie_keys = (t_from * n_units + t_to) * n_mids + t_mid
    n_u, n_t = len(unit_keys), len(tie_keys)
    summary_keys = sorted(summary_n)
    total = n_u + n_t + len(summary_keys)

    canonical = np.arange(total, dtype=np.int64)
    internal = (u_persp == INTERNAL) & (u_rollup == 0)
    tie_of_internal = lookup(tie_keys, np.arange(n_t), (u_unit * n_units + u_unit) * n_mids + u_mid)
    alias = internal & (tie_of_internal >= 0)
    canonical[:n_u][alias] = tie_of_internal[alias] + n_u

    # families, per scale: unit rows by (unit, persp) or (unit, roll-up), ties by (from, to),
    # summary rows alone
    scale_of = measures.column("scale_idx").astype(np.int64)
    n_scales = int(scale_of.max()) + 1 if len(scale_of) else 1
    family_persp = np.where(u_rollup == 1, 0, u_persp)  # a roll-up: all perspectives at once
    unit_family = ((u_unit * 2 + u_rollup) * 4 + family_persp) * n_scales + scale_of[u_mid]
    tie_family = (n_units * 8 + t_from * n_units + t_to) * n_scales + scale_of[t_mid]
    summary_family = (n_units * 8 + n_units * n_units) * n_scales + np.arange(len(summary_keys))
    family = np.r_[unit_family, tie_family, summary_family].astype(np.int64)
    family[:n_u][alias] = tie_family[tie_of_internal[alias]]
    summary_people = np.array([summary_n[k] for k in summary_keys], dtype=np.int64)
    measures_per_scale = np.bincount(scale_of, minlength=n_scales)
    summary_weight = np.array(
        [measures_per_scale[scale_of[m]] for _, m in summary_keys], dtype=np.int64
    )
    n = np.r_[
        unit_stats["n"].to_numpy().astype(np.int64),
        tie_stats["n"].to_numpy().astype(np.int64),
        summary_people,
    ]
    weight = np.array([COST_WEIGHT[False], COST_WEIGHT[True]], dtype=np.int64)
    cost = np.r_[
        n[:n_u] * weight[u_rollup, u_persp],
        n[n_u : n_u + n_t] * TIE_WEIGHT,
        summary_people * summary_weight * SUMMARY_WEIGHT,
    ]
    unit_order = np.argsort(unit_keys, kind="stable").astype(np.int64)
    tie_order = np.argsort(tie_keys, kind="stable").astype(np.int64)
    return RowIndex(
        n_units=n_units,
        n_mids=n_mids,
        unit_count=n_u,
        tie_count=n_t,
        n=n,
        mid=np.r_[u_mid, t_mid, np.array([m for _, m in summary_keys], dtype=np.int64)],
        cost=cost,
        family=family,
        is_outgoing=np.r_[u_persp == OUTGOING, np.zeros(n_t + len(summary_keys), dtype=bool)],
        canonical=canonical,
        summary_keys=summary_keys,
        _unit_keys=unit_keys[unit_order],
        _unit_ids=unit_order,
        _tie_keys=tie_keys[tie_order],
        _tie_ids=tie_order,
    )
