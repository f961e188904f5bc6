"""Rule 1 and the rule-2 families (an aggregate and its disjoint parts), to a fixed point."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from coherence_scoring.engine.anonymity.arrays import ints, lookup
from coherence_scoring.engine.layout import INCOMING, MEMBERS, UnitTree

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
    t_from = ints(tie_rows, "from")
    t_to = ints(tie_rows, "to")
    t_mid = ints(tie_rows, "mid")
    external = np.flatnonzero(t_from != t_to)
    u_unit, u_mid, u_persp = (ints(unit_rows, c) for c in ("unit", "mid", "persp"))
    u_rollup = unit_rows["rollup"].to_numpy().astype(bool)
    fam1_id = (t_mid[external] + 2) * stride + t_to[external] + 1
    is_incoming = ~u_rollup & (u_persp == INCOMING)
    fam1_agg = lookup(
        ((u_mid + 2) * stride + u_unit + 1)[is_incoming], np.flatnonzero(is_incoming), fam1_id
    )

    # families 2 and 3: members rows and participation rows (mid = PARTICIPATION)
    is_members = u_persp == MEMBERS
    m_rid = np.r_[np.flatnonzero(is_members), np.arange(n_p) + n_u + n_t]
    m_unit = np.r_[u_unit[is_members], ints(participation, "unit")]
    m_rollup = np.r_[u_rollup[is_members], participation["rollup"].to_numpy().astype(bool)]
    m_mid = np.r_[u_mid[is_members], np.full(n_p, PARTICIPATION, dtype=np.int64)]
    m_n = np.r_[ints(unit_rows, "n")[is_members], ints(participation, "respondents")]
    has_children = tree.has_children[m_unit]
    fam_unit = np.where(has_children & ~m_rollup, m_unit, tree.parent[m_unit])
    fam23_id = (m_mid + 2) * stride + fam_unit + 1 + _MEMBERS_FAMILIES
    at_org = fam_unit == _ORG
    org_mids = np.unique(m_mid[at_org])
    org_n = np.array([m_n[at_org & (m_mid == mid)].sum() for mid in org_mids], dtype=np.int64)
    org_rid = np.arange(len(org_mids), dtype=np.int64) + n_u + n_t + n_p
    fam23_agg = np.where(
        at_org,
        lookup(org_mids, org_rid, m_mid),
        lookup(
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
        ints(unit_rows, "n"), ints(tie_rows, "n"), ints(participation, "respondents"), org_n
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
