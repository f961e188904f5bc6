"""Anonymity (SCORING.md §5) for one publication — the one place it is decided.

The whole publication is one linked table over base cells (cells.py): every row the round can
publish — unit rows of every perspective and roll-up, ties, summary means, at every measure — is
the sum of a set of base cells. Rule 1 hides every row with fewer than k people. Then the
protection looks at what an attacker can tell apart among the hidden base cells (atoms.py) and
hides further rows (repair.py, ``complementary``) until every atom is safe. The final test is the
audit: ``audit`` recomputes the atoms from nothing but the published rows and fails loudly when
one is unsafe, so a publication that breaks the guarantee is never written.

Why this is enough, what it costs and what it does not cover: docs/privacy.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from coherence_scoring.engine.layout import MEMBERS, Measures
from coherence_scoring.engine.protection.atoms import Atoms, atoms, row_weights, signatures
from coherence_scoring.engine.protection.cells import BaseCells, base_cells, summary_people
from coherence_scoring.engine.protection.incidence import Incidence
from coherence_scoring.engine.protection.pieces import Earlier, linked
from coherence_scoring.engine.protection.repair import rows_to_hide
from coherence_scoring.engine.protection.rows import BETWEEN, ORG, WITHIN, RowIndex, build_rows
from coherence_scoring.engine.respondent import SELF

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

#: Suppression reason codes.
PUBLISHED, MIN_GROUP_SIZE, COMPLEMENTARY = 0, 1, 2
REASONS = (None, "min_group_size", "complementary")

#: A repair round hides at least one row, so this bounds nothing in practice; it only turns a
#: bug into an error instead of a hang.
MAX_ROUNDS = 10_000


class UnsafePublication(AssertionError):
    """The audit found an atom that breaks SCORING.md §5: nothing may be published."""


@dataclass(frozen=True)
class Protection:
    """Per row id (``RowIndex``): published or not, why not, and whether it pools a hidden
    base cell (then its second moments are not published)."""

    published: Bools
    reason: Ints
    pools_hidden: Bools
    rounds: int
    atoms: int


def own_rows(cells: BaseCells, rows: RowIndex, measures: Measures) -> Ints:
    """The row that publishes each base cell on its own: the item row of its tie or unit."""
    mid = measures.item_mid[cells.item]
    tie = cells.b != SELF
    own = np.where(
        tie,
        rows.tie_row(cells.a, np.maximum(cells.b, 0), mid),
        rows.unit_row(cells.a, np.zeros_like(mid), np.full_like(mid, MEMBERS), mid),
    )
    if (own < 0).any():
        raise ValueError("a base cell has no row of its own")
    return own


def protect(
    *,
    cells: BaseCells,
    incidence: Incidence,
    rows: RowIndex,
    own_row: Ints,
    measures: Measures,
    k: int,
    earlier: list[Earlier] | None = None,
) -> Protection:
    """Rule 1, then complementary suppression until the audit finds every atom safe — of this
    publication, and of it together with the ``earlier`` final publications that hold some of
    the same responses (pieces.py)."""
    canonical = rows.canonical
    published = rows.n[canonical] >= k
    reason = np.where(published, PUBLISHED, MIN_GROUP_SIZE).astype(np.int64)
    views = _views_first(cells, incidence, rows, published[own_row])
    views = views[published[views]]  # rows below k keep their rule-1 reason
    published[views] = False
    reason[views] = COMPLEMENTARY
    pieces = linked(cells, earlier or [])
    w1, w2 = row_weights(rows.count, 1), row_weights(rows.count, 2)
    rounds = 0
    for rounds in range(1, MAX_ROUNDS + 1):  # noqa: B007 (reported below)
        sig = pieces.signatures(signatures(incidence, published, w1, w2))
        found = atoms(pieces, ~pieces.exempt(published[own_row]), sig, k)
        if found.safe.all():
            break
        hide = rows_to_hide(
            cells=cells,
            pieces=pieces,
            incidence=incidence,
            rows=rows,
            own_row=own_row,
            published=published,
            sig=sig,
            found=found,
            measures=measures,
            w1=w1,
            w2=w2,
            k=k,
        )
        hide = hide[published[hide]]
        if len(hide) == 0:
            raise UnsafePublication("the protection found no row to hide for an unsafe atom")
        published[hide] = False
        reason[hide] = COMPLEMENTARY
    else:
        raise UnsafePublication(f"the protection did not settle in {MAX_ROUNDS} rounds")
    published = published[canonical]
    reason = reason[canonical]
    return Protection(
        published=published,
        reason=reason,
        pools_hidden=_pools_hidden(incidence, ~published[own_row])[canonical],
        rounds=rounds,
        atoms=found.count,
    )


def audit(
    *,
    cells: BaseCells,
    incidence: Incidence,
    own_row: Ints,
    published: Bools,
    k: int,
    earlier: list[Earlier] | None = None,
) -> Atoms:
    """Recompute the atoms of a finished publication (with the earlier finals it is linked to)
    from its published rows alone; raise ``UnsafePublication`` when one is unsafe.
    ``published`` is indexed by canonical row id."""
    count = len(published)
    pieces = linked(cells, earlier or [])
    here = signatures(incidence, published, row_weights(count, 1), row_weights(count, 2))
    found = atoms(pieces, ~pieces.exempt(published[own_row]), pieces.signatures(here), k)
    unsafe = np.flatnonzero(~found.safe)
    if len(unsafe):
        a = int(unsafe[0])
        raise UnsafePublication(
            f"{len(unsafe)} unsafe atom(s); the first holds {found.people[a]} people and "
            f"{found.responses[a]} responses in {found.rows[a]} published rows"
        )
    return found


def _views_first(
    cells: BaseCells, incidence: Incidence, rows: RowIndex, cell_published: Bools
) -> Ints:
    """The ``outgoing`` rows (roll-up or not) that pool a tie below k raters.

    A hidden tie (x, b) lies in the incoming row of b and the outgoing row of x, which no other
    tie shares: with both published it is an atom of its own, and it has fewer than k people.
    One of the two must go for every such tie; the method reports the incoming view first
    (the same responses, seen by the unit they are about, and what the leadership–collaboration
    relation uses), so the outgoing rows go, once and together, before the repair starts."""
    small = ~cell_published & (cells.b >= 0) & (cells.a != cells.b)
    pooled = incidence.row_sums(small.astype(np.int64)[:, None])[:, 0] > 0
    return np.flatnonzero(pooled & rows.is_outgoing)


def _pools_hidden(incidence: Incidence, hidden_cell: Bools) -> Bools:
    return incidence.row_sums(hidden_cell.astype(np.int64)[:, None])[:, 0] > 0


__all__ = [
    "BETWEEN",
    "COMPLEMENTARY",
    "MIN_GROUP_SIZE",
    "ORG",
    "PUBLISHED",
    "REASONS",
    "WITHIN",
    "BaseCells",
    "Earlier",
    "Incidence",
    "Memberships",
    "Protection",
    "RowIndex",
    "UnsafePublication",
    "audit",
    "base_cells",
    "build_rows",
    "own_rows",
    "protect",
    "summary_people",
]
