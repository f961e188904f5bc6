"""Choosing the complementary suppressions: which published rows to hide next.

Hiding a published row only ever merges atoms (cells that it alone told apart now share a
signature) or adds the cells of a hidden base-cell row to an atom. Merging safe atoms gives a
safe atom (every quantity of the safety test adds up), so hiding rows makes progress, and the
protection ends — at worst when an unsafe atom lies in no published row at all. Rows are hidden a
**family** at a time (rows.py): one referent and perspective (a roll-up: all its perspectives)
across the measures of a scale. Each round of repairs looks at every unsafe atom and picks, for
each, the cheapest of:

* **hide a family in its signature**: the atom then lies in fewer rows and merges with every atom
  that has the same rows left (atoms that lose the same family merge with it too);
* **hide a family in another atom's signature** that then has exactly the unsafe atom's rows (a
  remainder one level down is pulled up into it);
* **absorb**: hide a published referent (a tie or a unit, all measures of the scale) whose base
  cell would then have the unsafe atom's signature, adding its people — alone, or together with
  one more family of that cell's signature (a unit and the roll-up above it, say).

The cost of hiding a row is the number of people it describes, weighted by what the method reports
first (rows.py). Candidates are ranked by cost times a penalty: 1 when the merged atom is
estimated safe, 2 when it is only estimated closer (smaller deficit), 8 for hiding a family of
the atom's own signature with no estimated gain (always progress, but blind). Ties go to the
lower row id, so the choice is deterministic. The estimates add people and rooms up
(optimistic when groups share people); the next round's exact test is what decides.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from coherence_scoring.engine.layout import Measures
from coherence_scoring.engine.protection.atoms import Atoms, Hashes, Signatures, deficit
from coherence_scoring.engine.protection.cells import BaseCells, Memberships
from coherence_scoring.engine.protection.pieces import Pieces
from coherence_scoring.engine.protection.rows import RowIndex

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

_STATS = ["people", "room_up", "room_down", "width", "top_responses", "top_weight"]
_SIG = ["h1", "h2", "rows"]


def rows_to_hide(
    *,
    cells: BaseCells,
    pieces: Pieces,
    members: Memberships,
    rows: RowIndex,
    own_row: Ints,
    published: Bools,
    sig: Signatures,
    found: Atoms,
    measures: Measures,
    w1: Hashes,
    w2: Hashes,
    k: int,
) -> Ints:
    """Row ids to hide next (never empty while an unsafe atom exists)."""
    unsafe = np.flatnonzero(~found.safe)
    if len(unsafe) == 0:
        return np.zeros(0, dtype=np.int64)
    constrained = np.flatnonzero(found.rows > 0)
    atoms = _atom_frame(found, constrained)
    rep_cell = pieces.cell[found.representative[constrained]]
    here = rep_cell >= 0  # an atom of pieces only seen elsewhere has no row here to hide
    which, row = members.of(rep_cell[here])
    which = np.flatnonzero(here)[which]
    keep = published[row]
    row = row[keep]
    fam = pl.DataFrame(
        {
            "atom": constrained[which[keep]],
            "row": row,
            "family": rows.family[row],
            "w1": w1[row],
            "w2": w2[row],
        }
    )
    # key of an atom after hiding a family of its signature (wrapping sums modulo 2**64)
    keyed = (
        fam.group_by("atom", "family")
        .agg(dw1=pl.col("w1").sum(), dw2=pl.col("w2").sum(), drows=pl.len())
        .join(atoms, on="atom")
        .select(
            "atom",
            "family",
            *_STATS,
            h1=pl.col("h1") - pl.col("dw1"),
            h2=pl.col("h2") - pl.col("dw2"),
            rows=pl.col("rows") - pl.col("drows"),
        )
    )
    family_cost = (
        pl.DataFrame({"family": rows.family[published], "cost": rows.cost[published]})
        .group_by("family")
        .agg(pl.col("cost").sum(), first_row=pl.lit(0))
    )
    first_row = (
        pl.DataFrame({"family": rows.family, "row": np.arange(rows.count)})
        .group_by("family")
        .agg(first_row=pl.col("row").min())
    )
    family_cost = family_cost.drop("first_row").join(first_row, on="family")
    groups = keyed.group_by("family", *_SIG).agg(pl.col(s).sum() for s in _STATS)
    unsafe_frame = _atom_frame(found, unsafe)
    options = pl.concat(
        [
            _own_family(keyed, groups, atoms, unsafe_frame),
            _other_family(groups, unsafe_frame),
            _absorbs(
                cells,
                pieces,
                members,
                rows,
                own_row,
                published,
                sig,
                unsafe_frame,
                _candidate_cells(fam, unsafe, members),
                w1,
                w2,
            ),
        ],
        how="diagonal_relaxed",
    )
    if "extra" not in options.columns:
        options = options.with_columns(extra=pl.lit(-1, dtype=pl.Int64))
    options = (
        options.with_columns(pl.col("extra").fill_null(-1))
        .join(family_cost, on="family")
        .join(
            family_cost.select(pl.col("family").alias("extra"), extra_cost="cost"),
            on="extra",
            how="left",
        )
        .with_columns(cost=pl.col("cost") + pl.col("extra_cost").fill_null(0))
    )
    chosen = _choose(options, unsafe_frame, k)
    return _family_rows(chosen, found, cells, pieces, rows, measures, published)


def _family_rows(
    chosen: pl.DataFrame,
    found: Atoms,
    cells: BaseCells,
    pieces: Pieces,
    rows: RowIndex,
    measures: Measures,
    published: Bools,
) -> Ints:
    """The published rows of the chosen families that measure the atom's items: each item,
    its subscale and its scale's index (the family's other items stay published). A family
    with no such row (its rows measure another atom's items) is hidden whole."""
    here = pieces.cell >= 0
    atom_items = (
        pl.DataFrame({"atom": found.cell_atom[here], "item": cells.item[pieces.cell[here]]})
        .filter(pl.col("atom") >= 0)
        .unique()
    )
    picks = pl.concat(
        [chosen.select("atom", pl.col(column).alias("family")) for column in ("family", "extra")]
    ).filter(pl.col("family") >= 0)
    item = picks.join(atom_items, on="atom")
    items = item["item"].to_numpy()
    chains = [measures.item_mid[items], measures.subscale_mid[items], measures.index_mid[items]]
    wanted = pl.concat(
        [
            pl.DataFrame({"family": item["family"], "mid": chain}).filter(pl.col("mid") >= 0)
            for chain in chains
        ]
    ).unique()
    ids = np.flatnonzero(published)
    candidates = pl.DataFrame({"row": ids, "family": rows.family[ids], "mid": rows.mid[ids]})
    narrow = candidates.join(wanted, on=["family", "mid"])
    whole = candidates.join(
        picks.select("family")
        .unique()
        .join(narrow.select("family").unique(), on="family", how="anti"),
        on="family",
    )
    return np.unique(np.r_[narrow["row"].to_numpy(), whole["row"].to_numpy()])


def _atom_frame(found: Atoms, ids: Ints) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "atom": ids,
            "h1": found.h1[ids],
            "h2": found.h2[ids],
            "rows": found.rows[ids],
            **{name: getattr(found, name)[ids] for name in _STATS},
        }
    )


def _own_family(
    keyed: pl.DataFrame, groups: pl.DataFrame, atoms: pl.DataFrame, unsafe: pl.DataFrame
) -> pl.DataFrame:
    """Hide a family of the unsafe atom's signature: it merges with every atom that loses the
    same family and is left with the same rows, and with the atom that already has them."""
    mine = keyed.join(unsafe.select("atom"), on="atom").select("atom", "family", *_SIG)
    grouped = mine.join(groups, on=["family", *_SIG])  # includes the atom itself
    already = atoms.rename({s: f"x_{s}" for s in _STATS}).drop("atom")
    merged = grouped.join(already, on=_SIG, how="left")
    own = unsafe.select("atom", *(pl.col(s).alias(f"o_{s}") for s in _STATS))
    return merged.join(own, on="atom").select(
        "atom",
        "family",
        pl.lit(True).alias("own"),
        *(
            (pl.col(s) + pl.col(f"x_{s}").fill_null(0) - pl.col(f"o_{s}")).alias(f"add_{s}")
            for s in _STATS
        ),
    )


def _other_family(groups: pl.DataFrame, unsafe: pl.DataFrame) -> pl.DataFrame:
    """Hide a family of other atoms when they are then left with the unsafe atom's rows."""
    return (
        unsafe.select("atom", *_SIG)
        .join(groups, on=_SIG)
        .select(
            "atom",
            "family",
            pl.lit(False).alias("own"),
            *(pl.col(s).alias(f"add_{s}") for s in _STATS),
        )
    )


def _candidate_cells(fam: pl.DataFrame, unsafe: Ints, members: Memberships) -> Ints:
    """Cells that could join an unsafe atom: a cell joins only if it lies in every row of the
    atom's signature, so the cells of each unsafe atom's smallest row are enough."""
    mine = fam.join(pl.DataFrame({"atom": unsafe}), on="atom")
    if mine.height == 0:
        return np.zeros(0, dtype=np.int64)
    row = mine["row"].to_numpy()
    size = members.row_starts[row + 1] - members.row_starts[row]
    smallest = (
        mine.with_columns(size=pl.Series(size))
        .sort("atom", "size", "row")
        .group_by("atom", maintain_order=True)
        .first()["row"]
        .to_numpy()
    )
    _, cell = members.cells_of(np.unique(smallest))
    return np.unique(cell)


def _absorbs(
    cells: BaseCells,
    pieces: Pieces,
    members: Memberships,
    rows: RowIndex,
    own_row: Ints,
    published: Bools,
    sig: Signatures,
    unsafe: pl.DataFrame,
    candidates: Ints,
    w1: Hashes,
    w2: Hashes,
) -> pl.DataFrame:
    """Hide a published referent (and at most one more family) so that its base cell joins an
    unsafe atom. Candidate ``family`` is the referent's; ``extra`` the other one, or -1.
    Only cells that are one whole piece can be absorbed (a split cell is already in atoms)."""
    whole_piece = np.full(cells.count, -1, dtype=np.int64)
    is_whole = pieces.whole & (pieces.cell >= 0)
    whole_piece[pieces.cell[is_whole]] = np.flatnonzero(is_whole)
    open_cells = candidates[published[own_row[candidates]] & (whole_piece[candidates] >= 0)]
    if len(open_cells) == 0:
        return pl.DataFrame()
    which, row = members.of(open_cells)
    keep = published[row]
    cell = open_cells[which[keep]]
    row = row[keep]
    per_family = (
        pl.DataFrame(
            {
                "cell": cell,
                "fam": rows.family[row],
                "own": rows.family[row] == rows.family[own_row[cell]],
                "w1": w1[row],
                "w2": w2[row],
            }
        )
        .group_by("cell", "fam", "own")
        .agg(dw1=pl.col("w1").sum(), dw2=pl.col("w2").sum(), drows=pl.len())
    )
    own = per_family.filter(pl.col("own")).drop("own", "fam")
    other = (
        per_family.filter(~pl.col("own"))
        .drop("own")
        .rename({"fam": "extra", "dw1": "ew1", "dw2": "ew2", "drows": "erows"})
    )
    c = own["cell"].to_numpy()
    p = whole_piece[c]
    base = own.with_columns(
        family=pl.Series(rows.family[own_row[c]]),
        h1=pl.Series(sig.h1[p]) - pl.col("dw1"),
        h2=pl.Series(sig.h2[p]) - pl.col("dw2"),
        rows=pl.Series(sig.rows[p]) - pl.col("drows"),
        add_people=pl.Series(cells.responses[c]),
        add_room_up=pl.Series(cells.high[c] * cells.responses[c] - cells.total[c]),
        add_room_down=pl.Series(cells.total[c] - cells.low[c] * cells.responses[c]),
        add_width=pl.Series((cells.high[c] - cells.low[c]) * cells.responses[c]),
        add_top_responses=pl.lit(0, dtype=pl.Int64),
        add_top_weight=pl.lit(0, dtype=pl.Int64),
    ).drop("dw1", "dw2", "drows")
    alone = base.with_columns(extra=pl.lit(-1, dtype=pl.Int64))
    paired = base.join(other, on="cell").with_columns(
        h1=pl.col("h1") - pl.col("ew1"),
        h2=pl.col("h2") - pl.col("ew2"),
        rows=pl.col("rows") - pl.col("erows"),
    )
    options = pl.concat([alone, paired.drop("ew1", "ew2", "erows")], how="diagonal_relaxed")
    return options.join(unsafe.select("atom", *_SIG), on=_SIG).select(
        "atom",
        "family",
        "extra",
        pl.lit(False).alias("own"),
        *(f"add_{s}" for s in _STATS),
    )


def _choose(options: pl.DataFrame, unsafe: pl.DataFrame, k: int) -> pl.DataFrame:
    """Per unsafe atom, the cheapest family to hide among those that reduce its deficit or
    belong to its own signature."""
    o = options.join(unsafe, on="atom")
    merged = {s: (o[s] + o[f"add_{s}"]).to_numpy().astype(np.int64) for s in _STATS}
    before = deficit(k, *(o[s].to_numpy().astype(np.int64) for s in _STATS))
    after = deficit(k, *(merged[s] for s in _STATS))
    penalty = np.where(after <= 0, 1, np.where(after < before, 2, 8))
    scored = o.select("atom", "family", "extra", "own", "first_row").with_columns(
        score=pl.Series(o["cost"].to_numpy().astype(np.int64) * penalty),
        useful=pl.Series(after < before),
    )
    return (
        scored.filter(pl.col("own") | pl.col("useful"))
        .sort(["atom", "score", "first_row"])
        .group_by("atom", maintain_order=True)
        .first()
        .select("atom", "family", "extra")
    )
