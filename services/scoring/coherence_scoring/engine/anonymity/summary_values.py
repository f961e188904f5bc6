"""Rule 2 for summary values that pool published rows: they are nulled, never a row suppressed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from coherence_scoring.engine.anonymity.arrays import ints
from coherence_scoring.engine.layout import INCOMING, INTERNAL, UnitTree


def differenced(held: int, k: int) -> bool:
    """Hidden parts holding ``held`` people would give them away (1..k−1)."""
    return 1 <= held < k


@dataclass(frozen=True)
class TieSummaryNulls:
    """Which summary values of a unit-targeted scale are null under rule 2."""

    within_mean: bool
    between_mean: bool
    mean: bool


def tie_summary_nulls(
    unit_rows: pl.DataFrame,
    mid: int,
    r: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    n_units: int,
    k: int,
    *,
    network: bool,
) -> TieSummaryNulls:
    """unit_rows: rows after both rules (unit, rollup, persp, mid, suppressed); r, a, b: the
    rater, the rater's home unit and the target of every tie score of the scale's ``index``
    (``mid``). The parts: ``internal`` rows (within_mean), ``incoming`` rows (between_mean),
    both (the scale mean), ``rollup: false``. Counted: the distinct raters of the ties that
    fall in suppressed parts (one rater can sit in several incoming rows). ``network``: the
    scale whose within/between means are published; then the mean is also null when exactly
    one of them is (the mean and the published one give the other)."""
    hidden = unit_rows.filter(
        (pl.col("mid") == mid) & ~pl.col("rollup") & pl.col("suppressed")
    ).select("unit", "persp")
    units = hidden["unit"].to_numpy().astype(np.int64)
    persp = hidden["persp"].to_numpy()
    hidden_internal = np.zeros(n_units, dtype=bool)
    hidden_internal[units[persp == INTERNAL]] = True
    hidden_incoming = np.zeros(n_units, dtype=bool)
    hidden_incoming[units[persp == INCOMING]] = True
    internal = (a == b) & hidden_internal[b]
    incoming = (a != b) & hidden_incoming[b]
    within = differenced(distinct(r[internal]), k)
    between = differenced(distinct(r[incoming]), k)
    mean = differenced(distinct(r[internal | incoming]), k)
    if network:
        mean = mean or within != between
    return TieSummaryNulls(within_mean=within, between_mean=between, mean=mean)


def response_rate_null(
    participation: pl.DataFrame, tree: UnitTree, organisation_published: bool, k: int
) -> bool:
    """Whether the summary's response rate must be null. Headcounts are public, so the rate
    publishes the respondents of the units with a known headcount (``known``) in total.

    participation: rows after both rules (unit, rollup, respondents, suppressed). The parts are
    the ``rollup: false`` rows of the known units: null when the suppressed ones hold 1..k−1.
    The total also cuts across the published participation sums: each suppressed direct row
    belongs to the nearest published sum containing it (the unit's own or an ancestor's roll-up
    row, else the organisation total when ``organisation_published``); such a group's total is
    published, so the rate splits it into its known side and the rest, and either side gives
    the other. The exposed respondents are the smaller side of every group with both, plus the
    known rows in no group; null when they number 1..k−1 too."""
    if participation.height == 0:
        return False
    unit = ints(participation, "unit")
    rollup = participation["rollup"].to_numpy().astype(bool)
    suppressed = participation["suppressed"].to_numpy().astype(bool)
    n = ints(participation, "respondents")
    known = np.array([h is not None for h in tree.headcount], dtype=bool)
    hidden = ~rollup & suppressed
    h_unit, h_n = unit[hidden], n[hidden]
    h_known = known[h_unit]
    if differenced(int(h_n[h_known].sum()), k):
        return True
    published_rollup = np.zeros(tree.count, dtype=bool)
    published_rollup[unit[rollup & ~suppressed]] = True
    # the nearest published sum above each hidden row: a unit (its roll-up row), else the
    # organisation (group U + 1) or, when that is not published either, none (group U)
    group = np.where(tree.has_children[h_unit], h_unit, tree.parent[h_unit])
    open_ = group >= 0
    open_[open_] = ~published_rollup[group[open_]]
    while open_.any():
        group[open_] = tree.parent[group[open_]]
        open_ &= group >= 0
        open_[open_] = ~published_rollup[group[open_]]
    none = tree.count
    group = np.where(group >= 0, group, tree.count + 1 if organisation_published else none)
    size = tree.count + 2
    known_side = np.bincount(group, weights=np.where(h_known, h_n, 0), minlength=size)
    other_side = np.bincount(group, weights=np.where(h_known, 0, h_n), minlength=size)
    exposed = np.minimum(known_side, other_side)
    exposed[none] = known_side[none]
    return differenced(int(exposed.sum()), k)


def distinct(r: np.ndarray) -> int:
    """The number of distinct respondents (dense indices) in ``r``."""
    return int(np.count_nonzero(np.bincount(r))) if len(r) else 0
