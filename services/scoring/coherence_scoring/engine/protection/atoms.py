"""Atoms: what an attacker can and cannot tell apart among the hidden base cells.

Two hidden base cells that lie in exactly the same published rows are indistinguishable: every
published number depends only on their combined sum. An **atom** is a largest set of hidden base
cells with the same published rows (the same *signature*). Moving responses around inside an atom
— any way that keeps the atom's total — changes no published number, so the attacker's knowledge
of an atom is at most its total (privacy.md, "Why atoms are enough").

An atom is **safe** when, even with its total known exactly, every group of 1..k−1 people keeps at
least 1.0 scale point of uncertainty per response about their part of it:

* it holds at least k people, so no group of fewer covers it;
* the room above and below its total — Σ high − T and T − Σ low over its responses — is at least
  the largest number of responses k−1 of its people hold (else those people's part is pinned
  within less than one point per response);
* the other people's range, Σ (high − low) over the responses outside any group of k−1, is at
  least that group's number of responses (checked as: the total range is at least the largest
  Σ (high − low + 1) that k−1 people hold).

An atom whose signature is empty lies in no published row: nothing about it is published, so it
is safe whatever its size. Signatures are compared by two independent 64-bit hashes of their row
sets plus the number of rows (a collision would have to hit all three).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl

if TYPE_CHECKING:
    from coherence_scoring.engine.protection.incidence import Incidence
    from coherence_scoring.engine.protection.pieces import Pieces

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Hashes = npt.NDArray[np.uint64]


def row_weights(count: int, salt: int) -> Hashes:
    """A fixed pseudo-random 64-bit weight per row id (splitmix64 of the id)."""
    z = np.arange(count, dtype=np.uint64) + np.uint64((salt * 0x9E3779B97F4A7C15) % 2**64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@dataclass(frozen=True)
class Signatures:
    """Per base cell: the hashes and number of the published rows that pool it."""

    h1: Hashes
    h2: Hashes
    rows: Ints


def signatures(incidence: Incidence, published: Bools, w1: Hashes, w2: Hashes) -> Signatures:
    """Per base cell, the hashes and number of the published rows that pool it."""
    values = np.stack(
        [
            np.where(published, w1, np.uint64(0)),
            np.where(published, w2, np.uint64(0)),
            published.astype(np.uint64),
        ],
        axis=1,
    )
    sums = incidence.cell_sums(values)
    return Signatures(h1=sums[:, 0], h2=sums[:, 1], rows=sums[:, 2].astype(np.int64))


@dataclass(frozen=True)
class Atoms:
    """The atoms of the pieces that need one, with what decides whether each is safe."""

    #: per piece (pieces.py): its atom, or -1 when it needs none (a whole published cell)
    cell_atom: Ints
    #: per atom
    h1: Hashes
    h2: Hashes
    rows: Ints  # published rows in the signature (0: a free atom)
    representative: Ints  # one of its pieces
    people: Ints
    responses: Ints
    total: Ints
    room_up: Ints  # Σ high − total
    room_down: Ints  # total − Σ low
    width: Ints  # Σ (high − low)
    top_responses: Ints  # most responses k−1 of its people hold
    top_weight: Ints  # most Σ (high − low + 1) k−1 of its people hold
    safe: Bools

    @property
    def count(self) -> int:
        return len(self.rows)

    def deficit(self, k: int) -> npt.NDArray[np.float64]:
        """How far each atom is from safe (0 when safe); used to rank repairs."""
        return deficit(
            k,
            self.people,
            self.room_up,
            self.room_down,
            self.width,
            self.top_responses,
            self.top_weight,
        )


def deficit(
    k: int,
    people: Ints,
    room_up: Ints,
    room_down: Ints,
    width: Ints,
    top_responses: Ints,
    top_weight: Ints,
) -> npt.NDArray[np.float64]:
    total: npt.NDArray[np.float64] = (
        np.maximum(k - people, 0) * 4.0
        + np.maximum(top_responses - room_up, 0)
        + np.maximum(top_responses - room_down, 0)
        + np.maximum(top_weight - width, 0)
    ).astype(np.float64)
    return total


def atoms(cells: Pieces, hidden: Bools, sig: Signatures, k: int) -> Atoms:
    """Group the pieces that need an atom (``hidden``) by signature and decide which atoms
    are safe."""
    hidden_cells = np.flatnonzero(hidden)
    cell_atom = np.full(cells.count, -1, dtype=np.int64)
    frame = pl.DataFrame(
        {
            "cell": hidden_cells,
            "h1": sig.h1[hidden_cells],
            "h2": sig.h2[hidden_cells],
            "rows": sig.rows[hidden_cells],
        }
    )
    grouped = frame.group_by("h1", "h2", "rows").agg(first=pl.col("cell").min()).sort("first")
    atom_of = frame.join(grouped.with_row_index("atom"), on=["h1", "h2", "rows"], how="left").sort(
        "cell"
    )
    cell_atom[atom_of["cell"].to_numpy()] = atom_of["atom"].to_numpy().astype(np.int64)
    n_atoms = grouped.height

    def per_atom(values: Ints) -> Ints:
        mine = cell_atom[hidden_cells]
        return np.bincount(mine, weights=values[hidden_cells], minlength=n_atoms).astype(np.int64)

    responses = per_atom(cells.responses)
    total = per_atom(cells.total)
    high = per_atom(cells.high * cells.responses)
    low = per_atom(cells.low * cells.responses)
    width = high - low

    # per (atom, person): responses held and Σ (range + 1); people; the top k−1 of each
    in_hidden = hidden[cells.response_piece]
    resp_cell = cells.response_piece[in_hidden]
    atom_of_response = cell_atom[resp_cell]
    person = cells.response_person[in_hidden]
    span = int(person.max()) + 1 if len(person) else 1
    key, inverse = np.unique(atom_of_response * span + person, return_inverse=True)
    inverse = inverse.reshape(-1)
    held = np.bincount(inverse, minlength=len(key)).astype(np.int64)
    weight = np.bincount(
        inverse, weights=(cells.high - cells.low + 1)[resp_cell], minlength=len(key)
    ).astype(np.int64)
    owner = key // span
    people = np.bincount(owner, minlength=n_atoms).astype(np.int64)
    top_responses = _top(owner, held, k - 1, n_atoms)
    top_weight = _top(owner, weight, k - 1, n_atoms)
    rows = grouped["rows"].to_numpy().astype(np.int64)
    safe = (rows == 0) | (
        (people >= k)
        & (high - total >= top_responses)
        & (total - low >= top_responses)
        & (width >= top_weight)
    )
    return Atoms(
        cell_atom=cell_atom,
        h1=grouped["h1"].to_numpy(),
        h2=grouped["h2"].to_numpy(),
        rows=rows,
        representative=grouped["first"].to_numpy().astype(np.int64),
        people=people,
        responses=responses,
        total=total,
        room_up=high - total,
        room_down=total - low,
        width=width,
        top_responses=top_responses,
        top_weight=top_weight,
        safe=safe,
    )


def _top(owner: Ints, value: Ints, take: int, n_atoms: int) -> Ints:
    """Per atom, the sum of the ``take`` largest ``value`` over its people (``owner``: the atom
    of each (atom, person) entry, sorted)."""
    if len(owner) == 0:
        return np.zeros(n_atoms, dtype=np.int64)
    order = np.lexsort((-value, owner))
    owner, value = owner[order], value[order]
    first = np.searchsorted(owner, owner)  # start of each entry's atom (owner is sorted)
    rank = np.arange(len(owner)) - first
    return np.bincount(owner[rank < take], weights=value[rank < take], minlength=n_atoms).astype(
        np.int64
    )
