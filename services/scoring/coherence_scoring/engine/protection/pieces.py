"""Pieces: what the protection groups into atoms — base cells, split where other publications
see their responses differently.

Alone, a publication's pieces are its base cells. With earlier final publications that hold some
of the same responses (the same respondent, the same answers: SCORING.md §5.3 "two rounds"), a
base cell is split by which earlier base cell each of its responses also lies in, and the
earlier publication's responses that this round does not hold become pieces of their own. A
piece's signature is the signature of its base cell here plus that of its base cell in each
earlier publication (fixed: those rows are already out). A piece needs no atom when it is a
whole base cell whose own row is published (here or in the earlier publication): that row alone
already says everything the piece can give away — the single-row baseline of SCORING.md §5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from coherence_scoring.engine.protection.atoms import Hashes, Signatures
from coherence_scoring.engine.protection.cells import BaseCells

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Pieces:
    """Per piece: its base cell here (-1: only in an earlier publication), the fixed part of its
    signature, whether it is a whole base cell here or a whole published one elsewhere, and
    the statistics of its responses; per response: its piece, person, value and bounds."""

    cell: Ints
    fixed: Signatures
    whole: Bools
    published_elsewhere: Bools
    responses: Ints
    total: Ints
    low: Ints
    high: Ints
    response_piece: Ints
    response_person: Ints

    @property
    def count(self) -> int:
        return len(self.cell)

    def signatures(self, here: Signatures) -> Signatures:
        """The whole signature of every piece: here (through its base cell) plus the fixed part."""
        has_cell = self.cell >= 0
        cell = np.maximum(self.cell, 0)
        zero = np.uint64(0)
        with np.errstate(over="ignore"):
            return Signatures(
                h1=np.where(has_cell, here.h1[cell], zero) + self.fixed.h1,
                h2=np.where(has_cell, here.h2[cell], zero) + self.fixed.h2,
                rows=np.where(has_cell, here.rows[cell], 0) + self.fixed.rows,
            )

    def exempt(self, cell_published: Bools) -> Bools:
        """Pieces that are a whole published base cell (here or elsewhere): no atom needed."""
        here = self.whole & (self.cell >= 0) & cell_published[np.maximum(self.cell, 0)]
        return here | self.published_elsewhere


def alone(cells: BaseCells) -> Pieces:
    """The pieces of a publication with nothing to link: its base cells."""
    zeros = np.zeros(cells.count, dtype=np.uint64)
    return Pieces(
        cell=np.arange(cells.count, dtype=np.int64),
        fixed=Signatures(h1=zeros, h2=zeros.copy(), rows=np.zeros(cells.count, dtype=np.int64)),
        whole=np.ones(cells.count, dtype=bool),
        published_elsewhere=np.zeros(cells.count, dtype=bool),
        responses=cells.responses,
        total=cells.total,
        low=cells.low,
        high=cells.high,
        response_piece=cells.response_cell,
        response_person=cells.response_person,
    )


@dataclass(frozen=True)
class Earlier:
    """An earlier final publication, as the protection needs it: its base cells, the signature
    of each over its published rows (hashed with its own row weights), whether each cell's own
    row was published, and, for each response here, the earlier response that is the same
    variable (its index into ``cells``' responses, or -1)."""

    cells: BaseCells
    signature: Signatures
    cell_published: Bools
    same_response: Ints


def linked(cells: BaseCells, earlier: list[Earlier]) -> Pieces:
    """Split the base cells here by the earlier cells their responses also lie in, and add the
    earlier responses that are not here as pieces of their own."""
    if not earlier:
        return alone(cells)
    n_here = len(cells.response_cell)
    # every response, here and in each earlier publication, as (cell here, cell in each
    # earlier publication) with -1 where it is absent; people: here's ids, then fresh ids
    cols_here = [cells.response_cell]
    persons = [cells.response_person]
    values_low = [cells.low[cells.response_cell]]
    values_high = [cells.high[cells.response_cell]]
    values = [_values(cells)]
    foreign_cols: list[list[Ints]] = [[] for _ in earlier]
    for e, link in enumerate(earlier):
        same = link.same_response
        foreign_cols[e].append(
            np.where(same >= 0, link.cells.response_cell[np.maximum(same, 0)], -1)
        )
    offset = int(cells.response_person.max(initial=-1)) + 1
    for e, link in enumerate(earlier):
        used = np.zeros(len(link.cells.response_cell), dtype=bool)
        used[link.same_response[link.same_response >= 0]] = True
        only = np.flatnonzero(~used)
        cols_here.append(np.full(len(only), -1, dtype=np.int64))
        persons.append(link.cells.response_person[only] + offset)
        offset += int(link.cells.response_person.max(initial=-1)) + 1
        cell_e = link.cells.response_cell[only]
        values_low.append(link.cells.low[cell_e])
        values_high.append(link.cells.high[cell_e])
        values.append(_values(link.cells)[only])
        for f in range(len(earlier)):
            foreign_cols[f].append(cell_e if f == e else np.full(len(only), -1, dtype=np.int64))
    here = np.concatenate(cols_here)
    foreign = [np.concatenate(cols) for cols in foreign_cols]
    key = np.stack([here, *foreign], axis=1)
    piece_keys, piece = np.unique(key, axis=0, return_inverse=True)
    piece = piece.reshape(-1)
    n_pieces = len(piece_keys)
    responses = np.bincount(piece, minlength=n_pieces).astype(np.int64)
    value = np.concatenate(values)
    low = np.concatenate(values_low)
    high = np.concatenate(values_high)

    def per_piece(x: Ints) -> Ints:
        return np.bincount(piece, weights=x, minlength=n_pieces).astype(np.int64)

    piece_cell = piece_keys[:, 0]
    whole = (piece_cell >= 0) & (responses == cells.responses[np.maximum(piece_cell, 0)])
    h1 = np.zeros(n_pieces, dtype=np.uint64)
    h2 = np.zeros(n_pieces, dtype=np.uint64)
    rows = np.zeros(n_pieces, dtype=np.int64)
    elsewhere = np.zeros(n_pieces, dtype=bool)
    for e, link in enumerate(earlier):
        c = piece_keys[:, e + 1]
        has = c >= 0
        c0 = np.maximum(c, 0)
        with np.errstate(over="ignore"):
            h1 += np.where(has, link.signature.h1[c0], np.uint64(0))
            h2 += np.where(has, link.signature.h2[c0], np.uint64(0))
        rows += np.where(has, link.signature.rows[c0], 0)
        whole_there = has & (responses == link.cells.responses[c0])
        elsewhere |= whole_there & link.cell_published[c0]
    del n_here
    return Pieces(
        cell=piece_cell.astype(np.int64),
        fixed=Signatures(h1=h1, h2=h2, rows=rows),
        whole=whole,
        published_elsewhere=elsewhere,
        responses=responses,
        total=per_piece(value),
        low=per_piece(low) // np.maximum(responses, 1),
        high=per_piece(high) // np.maximum(responses, 1),
        response_piece=piece.astype(np.int64),
        response_person=np.concatenate(persons).astype(np.int64),
    )


def _values(cells: BaseCells) -> Ints:
    return cells.response_value


__all__ = ["Earlier", "Hashes", "Pieces", "alone", "linked"]
