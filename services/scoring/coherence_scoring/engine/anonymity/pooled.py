"""Rows that pool tie scores but are parts of no family: outgoing and roll-up rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import polars as pl

from coherence_scoring.engine.anonymity.arrays import ints, lookup
from coherence_scoring.engine.anonymity.families import COMPLEMENTARY, Published
from coherence_scoring.engine.layout import INCOMING, INTERNAL, OUTGOING, UnitTree


def pooled_rows(
    published: Published,
    r: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    mids: np.ndarray,
    has: np.ndarray,
    tree: UnitTree,
    k: int,
) -> Published:
    """Rule 2 for the rows that pool tie scores but are parts of no family: each is the
    aggregate of the tie rows (``rollup: false``, same measure) whose scores it pools —

    * ``outgoing`` of a, ``rollup: false``: the ties R[a, b], b ≠ a;
    * roll-up ``internal`` of p: R[a, b] with a and b in the subtree S(p);
    * roll-up ``incoming`` of p: R[a, b] with a outside S(p), b in S(p);
    * roll-up ``outgoing`` of p: R[a, b] with a in S(p), b outside S(p) —

    and is suppressed (``complementary``) when the distinct raters of its suppressed ties
    number 1..k−1 (one rater can sit in several of them). Suppressing these rows changes no
    family, so one pass is enough.

    r, a, b: the rater, the rater's home unit and the target of every row of the tie scores;
    ``has[i, j]``: row i has a score for measure ``mids[j]``."""
    unit_rows, ties = published.unit_rows, published.tie_rows
    u_count = tree.count
    hidden_ties = ties.filter(pl.col("suppressed"))
    if hidden_ties.height == 0 or len(r) == 0:
        return published
    # hidden[j, a·U + b]: the tie R[a, b] of measure mids[j] is suppressed
    column = lookup(mids.astype(np.int64), np.arange(len(mids)), ints(hidden_ties, "mid"))
    hidden = np.zeros((len(mids), u_count * u_count), dtype=bool)
    cell = ints(hidden_ties, "from") * u_count + ints(hidden_ties, "to")
    hidden[column[column >= 0], cell[column >= 0]] = True
    pair = a * u_count + b
    any_hidden = np.asarray(hidden.any(axis=0), dtype=bool)
    some = np.flatnonzero(any_hidden[pair])  # rows with a hidden tie of some measure
    row, col = np.nonzero(has[some] & hidden[:, pair[some]].T)
    row = some[row]
    r, a, b, mid = r[row], a[row], b[row], mids[col].astype(np.int64)

    # (unit, persp, rollup) of every row each hidden tie score falls in
    parts = [(np.flatnonzero(a != b), a[a != b], OUTGOING, 0)]
    anc = tree.ancestor_at
    for d in range(anc.shape[1]):
        pa, pb = anc[a, d], anc[b, d]
        rolled_a = pa >= 0
        rolled_a[rolled_a] = tree.has_children[pa[rolled_a]]
        rolled_b = pb >= 0
        rolled_b[rolled_b] = tree.has_children[pb[rolled_b]]
        same = pa == pb
        parts.append((np.flatnonzero(rolled_a & same), pa[rolled_a & same], INTERNAL, 1))
        parts.append((np.flatnonzero(rolled_a & ~same), pa[rolled_a & ~same], OUTGOING, 1))
        parts.append((np.flatnonzero(rolled_b & ~same), pb[rolled_b & ~same], INCOMING, 1))
    entry = np.concatenate([e for e, *_ in parts])
    unit = np.concatenate([u for _, u, *_ in parts])
    persp = np.concatenate([np.full(len(e), p, dtype=np.int64) for e, _, p, _ in parts])
    rollup = np.concatenate([np.full(len(e), f, dtype=np.int64) for e, _, _, f in parts])

    def key(m: np.ndarray, p: np.ndarray, f: np.ndarray, u: np.ndarray) -> np.ndarray:
        return ((m * 4 + p) * 2 + f) * u_count + u

    u_key = key(
        ints(unit_rows, "mid"),
        ints(unit_rows, "persp"),
        unit_rows["rollup"].to_numpy().astype(np.int64),
        ints(unit_rows, "unit"),
    )
    rid = lookup(u_key, np.arange(unit_rows.height), key(mid[entry], persp, rollup, unit))
    suppressed = unit_rows["suppressed"].to_numpy().astype(bool)
    open_ = rid >= 0
    open_[open_] = ~suppressed[rid[open_]]
    span = int(r.max()) + 1
    pairs = np.unique(rid[open_] * span + r[entry][open_])  # distinct (row, rater)
    raters = np.bincount(pairs // span, minlength=unit_rows.height)
    fresh = (raters >= 1) & (raters < k)
    fresh |= _nested_internal(
        suppressed | fresh, u_key, key, r, a, b, col, mids.astype(np.int64), tree, k
    )
    if not fresh.any():
        return published
    reason = unit_rows["suppression_reason"].to_numpy().astype(object)
    reason[fresh] = COMPLEMENTARY
    return dataclasses.replace(
        published,
        unit_rows=unit_rows.with_columns(
            suppressed=pl.Series(suppressed | fresh, dtype=pl.Boolean),
            suppression_reason=pl.Series(reason.tolist(), dtype=pl.String),
        ),
    )


def _nested_internal(
    suppressed: np.ndarray,
    u_key: np.ndarray,
    key: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    r: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    col: np.ndarray,
    mids: np.ndarray,
    tree: UnitTree,
    k: int,
) -> np.ndarray:
    """Nested roll-up ``internal`` rows: for q ⊋ p (both with children) whose roll-up internal
    rows are both published, q's × n − p's × n is the aggregate of the ties D = R[a, b], a and
    b in S(q) but not both in S(p); q's row is suppressed (``complementary``) when the distinct
    raters of D's suppressed ties number 1..k−1. Every violating pair is found against the
    status before the pass, then their q rows are suppressed; repeated until nothing changes.

    suppressed: the unit rows' status; r, a, b, col: the rater, home unit, target and measure
    column (into ``mids``) of every suppressed tie score. Returns the rows newly suppressed.

    Per rater (one home unit h) the depths of the lowest common ancestors of h and the targets
    of its suppressed ties form a bit mask; the rater is in D(q, p) when h is in S(q) but not
    in S(p) and a depth ≥ depth(q) is set, or h is in S(p) and a depth in [depth(q), depth(p))
    is."""
    fresh = np.zeros(len(suppressed), dtype=bool)
    anc = tree.ancestor_at
    levels = anc.shape[1]
    ps = np.flatnonzero(tree.has_children & (tree.depth > 0))
    if len(r) == 0 or len(ps) == 0:
        return fresh
    # pairs (q, p): p with children, q a proper ancestor of p
    pair_p = np.repeat(ps, tree.depth[ps])
    pair_dq = np.concatenate([np.arange(d) for d in tree.depth[ps]]).astype(np.int64)
    pair_q = anc[pair_p, pair_dq]
    pair_dp = tree.depth[pair_p]

    lca = tree.lca_depth[a, b].astype(np.int64)
    keep = lca >= 0
    u_count = tree.count
    span = int(r.max()) + 1
    jr_bit = np.unique((col[keep] * span + r[keep]) * levels + lca[keep])
    jr, inverse = np.unique(jr_bit // levels, return_inverse=True)
    mask = np.bincount(inverse.reshape(-1), weights=1 << (jr_bit % levels)).astype(np.int64)
    home = np.zeros(span, dtype=np.int64)
    home[r] = a
    cell = (jr // span) * u_count + home[jr % span]
    n_mids = len(mids)
    # held[j, u, d1, d2]: raters of measure j with home in S(u) and a depth in [d1, d2) set
    own = np.zeros((n_mids * u_count, levels, levels + 1), dtype=np.float64)
    for d1 in range(levels):
        for d2 in range(d1 + 1, levels + 1):
            bits = (mask >> d1) & ((1 << (d2 - d1)) - 1)
            own[:, d1, d2] = np.bincount(cell, weights=bits != 0, minlength=n_mids * u_count)
    own = own.reshape(n_mids, u_count, levels, levels + 1)
    units = np.arange(u_count)
    inside = units[:, None] == anc[:, tree.depth].T  # inside[u, h]: h is in S(u)
    held = np.einsum("uh,jhxy->juxy", inside.astype(np.float64), own)
    count = (
        held[:, pair_q, pair_dq, levels]
        - held[:, pair_p, pair_dq, levels]
        + held[:, pair_p, pair_dq, pair_dp]
    ).round()

    def rows(u: np.ndarray) -> np.ndarray:
        m = np.repeat(mids, len(u))
        unit = np.tile(u, n_mids)
        persp = np.full(len(m), INTERNAL, dtype=np.int64)
        found = lookup(u_key, np.arange(len(u_key)), key(m, persp, np.ones_like(m), unit))
        return found.reshape(n_mids, len(u))

    rid_q, rid_p = rows(pair_q), rows(pair_p)
    exposed = (count >= 1) & (count < k) & (rid_q >= 0) & (rid_p >= 0)
    rid_q, rid_p = rid_q[exposed], rid_p[exposed]
    status = suppressed.copy()
    while True:
        hit = rid_q[~status[rid_q] & ~status[rid_p]]
        if len(hit) == 0:
            return fresh
        status[hit] = True
        fresh[hit] = True


# --------------------------------------------------------------------------------------------
# Summary values as aggregates (scoring-decisions.md, "Summary"). A summary value that pools
# published rows is differenced by subtracting the published ones; when the rows it pools that
# are suppressed (after both rules) hold 1..k−1 people, the summary value is null. No further
# row is suppressed for a summary value.
# --------------------------------------------------------------------------------------------
