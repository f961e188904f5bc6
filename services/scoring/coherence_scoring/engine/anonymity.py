"""The anonymity rules (SCORING.md §5) — the one place they are implemented.

Rule 1: a row computed from fewer than ``k`` respondents is suppressed (``min_group_size``).
Rule 2 (no differencing): in every family — an aggregate and the disjoint parts it is made of —
the suppressed parts must hold 0 or at least ``k`` respondents when the aggregate is published,
and at least ``k`` when it is suppressed, unless every part is (else the hidden aggregate is the
sum of its published parts, and whatever it was hidden to protect can be differenced out one
level up). While a family breaks this, the published part with the smallest ``n`` (ties broken
by its unit's external id, then the ``to`` unit's) is suppressed too (``complementary``); when
no published part is left and the aggregate is published, the aggregate is. The families
(scoring-decisions.md), per scale and measure:

1. incoming column: the ``incoming`` row of unit b (no roll-up) → the ties R[a,b], a ≠ b;
2. hierarchy: the ``members`` roll-up row of p → p's direct row and, per child c, c's roll-up
   row when c has children, else c's direct row;
3. organisation: all respondents (published as the summary's scale mean) → each root's row
   (roll-up when the root has children).

Participation rows form families 2 and 3 too, with ``respondents`` as n. Every family is checked
whether or not its aggregate is itself suppressed, and the families are re-checked until nothing
changes (suppression only grows).

After rule 2, the rows of unit-targeted scales that are parts of no family — ``outgoing``
(``rollup: false``) and the roll-up ``internal``, ``incoming`` and ``outgoing`` rows — are
checked against the tie rows whose scores they pool (``pooled_rows``): a row is suppressed
(``complementary``) when the suppressed ones among them hold 1..k−1 distinct raters.

After both rules, summary values that pool published rows are aggregates too (the within and
between means, a unit-targeted scale's mean, the response rate): ``tie_summary_nulls`` and
``response_rate_null`` say when one must be null because the rows it pools that are suppressed
hold 1..k−1 people. No row is suppressed for a summary value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from coherence_scoring.engine.layout import INCOMING, INTERNAL, MEMBERS, OUTGOING, UnitTree

MIN_GROUP_SIZE = "min_group_size"
COMPLEMENTARY = "complementary"
#: ``mid`` of participation rows in the families below (they have no measure).
PARTICIPATION = -1
_ORG = -1
#: Offset of the family ids of families 2 and 3 (family 1 ids stay below it).
_MEMBERS_FAMILIES = 2**40


@dataclass(frozen=True)
class Published:
    """The inputs with ``suppressed`` and ``suppression_reason`` columns added."""

    unit_rows: pl.DataFrame
    tie_rows: pl.DataFrame
    participation: pl.DataFrame
    #: mid (or PARTICIPATION) → whether the organisation-wide aggregate is suppressed
    organisation_suppressed: dict[int, bool]


def apply_rules(
    unit_rows: pl.DataFrame,
    tie_rows: pl.DataFrame,
    participation: pl.DataFrame,
    tree: UnitTree,
    k: int,
) -> Published:
    """unit_rows: unit, rollup, persp, mid, n, …; tie_rows: from, to, mid, n, …;
    participation: unit, rollup, respondents, …. Row ids: unit rows, then ties, then
    participation rows, then one virtual row per organisation aggregate."""
    n_u, n_t, n_p = unit_rows.height, tie_rows.height, participation.height
    stride = tree.count + 2
    rank = tree.external_rank

    # family 1: the incoming column of b → ties R[a, b], a ≠ b
    t_from = _ints(tie_rows, "from")
    t_to = _ints(tie_rows, "to")
    t_mid = _ints(tie_rows, "mid")
    external = np.flatnonzero(t_from != t_to)
    u_unit, u_mid, u_persp = (_ints(unit_rows, c) for c in ("unit", "mid", "persp"))
    u_rollup = unit_rows["rollup"].to_numpy().astype(bool)
    fam1_id = (t_mid[external] + 2) * stride + t_to[external] + 1
    is_incoming = ~u_rollup & (u_persp == INCOMING)
    fam1_agg = _lookup(
        ((u_mid + 2) * stride + u_unit + 1)[is_incoming], np.flatnonzero(is_incoming), fam1_id
    )

    # families 2 and 3: members rows and participation rows (mid = PARTICIPATION)
    is_members = u_persp == MEMBERS
    m_rid = np.r_[np.flatnonzero(is_members), np.arange(n_p) + n_u + n_t]
    m_unit = np.r_[u_unit[is_members], _ints(participation, "unit")]
    m_rollup = np.r_[u_rollup[is_members], participation["rollup"].to_numpy().astype(bool)]
    m_mid = np.r_[u_mid[is_members], np.full(n_p, PARTICIPATION, dtype=np.int64)]
    m_n = np.r_[_ints(unit_rows, "n")[is_members], _ints(participation, "respondents")]
    has_children = tree.has_children[m_unit]
    fam_unit = np.where(has_children & ~m_rollup, m_unit, tree.parent[m_unit])
    fam23_id = (m_mid + 2) * stride + fam_unit + 1 + _MEMBERS_FAMILIES
    at_org = fam_unit == _ORG
    org_mids = np.unique(m_mid[at_org])
    org_n = np.array([m_n[at_org & (m_mid == mid)].sum() for mid in org_mids], dtype=np.int64)
    org_rid = np.arange(len(org_mids), dtype=np.int64) + n_u + n_t + n_p
    fam23_agg = np.where(
        at_org,
        _lookup(org_mids, org_rid, m_mid),
        _lookup(
            ((m_mid + 2) * stride + m_unit + 1 + _MEMBERS_FAMILIES)[m_rollup],
            m_rid[m_rollup],
            fam23_id,
        ),
    )

    parts = _Parts(
        fam=np.r_[fam1_id, fam23_id],
        rid=np.r_[external + n_u, m_rid],
        agg=np.r_[fam1_agg, fam23_agg],
        rank1=np.r_[rank[t_from[external]], rank[m_unit]],
        rank2=np.r_[rank[t_to[external]], np.zeros(len(m_rid), dtype=np.int64)],
    )
    n_all = np.r_[
        _ints(unit_rows, "n"), _ints(tie_rows, "n"), _ints(participation, "respondents"), org_n
    ]
    suppressed, reason = _repair(parts, n_all, k)

    def status(frame: pl.DataFrame, offset: int) -> pl.DataFrame:
        s = suppressed[offset : offset + frame.height]
        rc = reason[offset : offset + frame.height]
        labels = np.array([None, MIN_GROUP_SIZE, COMPLEMENTARY], dtype=object)[rc]
        return frame.with_columns(
            suppressed=pl.Series(s, dtype=pl.Boolean),
            suppression_reason=pl.Series(labels.tolist(), dtype=pl.String),
        )

    return Published(
        unit_rows=status(unit_rows, 0),
        tie_rows=status(tie_rows, n_u),
        participation=status(participation, n_u + n_t),
        organisation_suppressed={
            int(mid): bool(suppressed[rid]) for mid, rid in zip(org_mids, org_rid, strict=True)
        },
    )


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[keys == q] for each q of query (keys unique), -1 where absent."""
    if len(keys) == 0:
        return np.full(len(query), -1, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    pos = np.clip(np.searchsorted(keys[order], query), 0, len(keys) - 1)
    found = keys[order][pos] == query
    return np.where(found, values[order][pos], -1).astype(np.int64)


def _ints(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy().astype(np.int64)


@dataclass(frozen=True)
class _Parts:
    fam: np.ndarray  # family id (any integers)
    rid: np.ndarray  # the part's row id
    agg: np.ndarray  # the family's aggregate row id, -1 when it has none
    rank1: np.ndarray
    rank2: np.ndarray


def _repair(parts: _Parts, n_all: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rule 1, then rule 2 until nothing changes. Returns (suppressed, reason code 0/1/2)."""
    suppressed = n_all < k
    reason = np.where(suppressed, 1, 0).astype(np.int64)
    if len(parts.fam) == 0:
        return suppressed, reason
    fam_codes, fam = np.unique(parts.fam, return_inverse=True)
    fam = fam.reshape(-1)
    n_fam = len(fam_codes)
    n = n_all[parts.rid]
    agg_of = np.full(n_fam, -1, dtype=np.int64)
    agg_of[fam] = parts.agg
    has_agg = agg_of >= 0
    while True:
        hidden = suppressed[parts.rid]
        held = np.bincount(fam, weights=np.where(hidden, n, 0), minlength=n_fam).astype(np.int64)
        open_parts = np.bincount(fam, weights=~hidden, minlength=n_fam) > 0
        agg_hidden = np.zeros(n_fam, dtype=bool)
        agg_hidden[has_agg] = suppressed[agg_of[has_agg]]
        # a published aggregate: the hidden parts hold 0 or ≥ k; a suppressed one: they hold
        # ≥ k, or every part is hidden (else the aggregate minus its published parts, or the
        # published parts themselves, would give away fewer than k people)
        violated = np.where(agg_hidden, open_parts & (held < k), (held > 0) & (held < k))
        if not violated.any():
            break
        candidates = np.flatnonzero(~hidden & violated[fam])
        order = np.lexsort(
            (parts.rank2[candidates], parts.rank1[candidates], n[candidates], fam[candidates])
        )
        cand = candidates[order]
        cand_fam = fam[cand]
        cand_n = n[cand]
        running = np.cumsum(cand_n)
        first = np.r_[True, cand_fam[1:] != cand_fam[:-1]] if len(cand) else np.zeros(0, bool)
        starts = np.flatnonzero(first)
        group_base = np.repeat(running[starts] - cand_n[starts], np.diff(np.r_[starts, len(cand)]))
        # respondents held by the suppressed parts before this part would be suppressed
        before = held[cand_fam] + running - cand_n - group_base
        newly = cand[before < k]
        after = held + np.bincount(fam[newly], weights=n[newly], minlength=n_fam).astype(np.int64)
        aggregates = agg_of[violated & (after < k)]
        aggregates = aggregates[aggregates >= 0]
        targets = np.r_[parts.rid[newly], aggregates]
        fresh = targets[~suppressed[targets]]
        if len(fresh) == 0:
            break
        suppressed[fresh] = True
        reason[fresh] = 2
    return suppressed, reason


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
    column = _lookup(mids.astype(np.int64), np.arange(len(mids)), _ints(hidden_ties, "mid"))
    hidden = np.zeros((len(mids), u_count * u_count), dtype=bool)
    cell = _ints(hidden_ties, "from") * u_count + _ints(hidden_ties, "to")
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
        _ints(unit_rows, "mid"),
        _ints(unit_rows, "persp"),
        unit_rows["rollup"].to_numpy().astype(np.int64),
        _ints(unit_rows, "unit"),
    )
    rid = _lookup(u_key, np.arange(unit_rows.height), key(mid[entry], persp, rollup, unit))
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
        found = _lookup(u_key, np.arange(len(u_key)), key(m, persp, np.ones_like(m), unit))
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
    unit = _ints(participation, "unit")
    rollup = participation["rollup"].to_numpy().astype(bool)
    suppressed = participation["suppressed"].to_numpy().astype(bool)
    n = _ints(participation, "respondents")
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
