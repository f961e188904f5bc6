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
from coherence_scoring.engine.protection.cells import BaseCells
from coherence_scoring.engine.protection.incidence import Incidence
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
    incidence: Incidence,
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
    which, row = incidence.rows_of(rep_cell[here])
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
            _absorbs(cells, pieces, incidence, rows, own_row, published, sig, unsafe_frame, w1, w2),
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


def _absorbs(
    cells: BaseCells,
    pieces: Pieces,
    incidence: Incidence,
    rows: RowIndex,
    own_row: Ints,
    published: Bools,
    sig: Signatures,
    unsafe: pl.DataFrame,
    w1: Hashes,
    w2: Hashes,
) -> pl.DataFrame:
    """Hide a published referent (its rows measuring the cell's item) so that its base cell
    joins an unsafe atom — alone, or with the roll-up family just above its unit. Candidate
    ``family`` is the referent's; ``extra`` the roll-up's, or -1. Only a cell that is one whole
    piece can be absorbed (a split cell is in atoms already)."""
    whole_piece = np.full(cells.count, -1, dtype=np.int64)
    is_whole = pieces.whole & (pieces.cell >= 0)
    whole_piece[pieces.cell[is_whole]] = np.flatnonzero(is_whole)
    open_cells = np.flatnonzero(published[own_row] & (whole_piece >= 0))
    if len(open_cells) == 0:
        return pl.DataFrame()
    # the referent's own rows that pool the cell: its tie (or members) rows of the item,
    # its subscale and its index
    own_ids = incidence.direct[open_cells, :, 0]
    own_ok = (own_ids >= 0) & published[np.maximum(own_ids, 0)]
    zero = np.uint64(0)
    with np.errstate(over="ignore"):
        dw1 = np.where(own_ok, w1[np.maximum(own_ids, 0)], zero).sum(axis=1, dtype=np.uint64)
        dw2 = np.where(own_ok, w2[np.maximum(own_ids, 0)], zero).sum(axis=1, dtype=np.uint64)
    drows = own_ok.sum(axis=1)
    p = whole_piece[open_cells]
    c = open_cells
    base = pl.DataFrame(
        {
            "cell": c,
            "family": rows.family[own_row[c]],
            "h1": sig.h1[p] - dw1,
            "h2": sig.h2[p] - dw2,
            "rows": sig.rows[p] - drows,
            "add_people": cells.responses[c],
            "add_room_up": cells.high[c] * cells.responses[c] - cells.total[c],
            "add_room_down": cells.total[c] - cells.low[c] * cells.responses[c],
            "add_width": (cells.high[c] - cells.low[c]) * cells.responses[c],
            "add_top_responses": np.zeros(len(c), dtype=np.int64),
            "add_top_weight": np.zeros(len(c), dtype=np.int64),
        }
    )
    alone = base.with_columns(extra=pl.lit(-1, dtype=pl.Int64))
    # with the cell's outgoing or incoming rows, or with the roll-up just above its unit (the
    # unit's own roll-up rows when it has children, else its parent's)
    paired = [_with_direct(base, c, incidence, rows, published, w1, w2, kind) for kind in (1, 2)]
    unit = cells.a[c]
    above = np.where(incidence.tree.has_children[unit], unit, incidence.tree.parent[unit])
    paired.append(_with_rollup_above(base, above, cells, c, incidence, rows, published, w1, w2))
    options = pl.concat([alone, *(p for p in paired if p.height)], how="diagonal_relaxed")
    return options.join(unsafe.select("atom", *_SIG), on=_SIG).select(
        "atom",
        "family",
        "extra",
        pl.lit(False).alias("own"),
        *(f"add_{s}" for s in _STATS),
    )


def _with_direct(
    base: pl.DataFrame,
    c: Ints,
    incidence: Incidence,
    rows: RowIndex,
    published: Bools,
    w1: Hashes,
    w2: Hashes,
    kind: int,
) -> pl.DataFrame:
    """``base`` options that also hide the cell's incoming (kind 1) or outgoing (kind 2) rows
    of its item, subscale and index."""
    ids = incidence.direct[c, :, kind]
    ok = (ids >= 0) & published[np.maximum(ids, 0)]
    has = ok.any(axis=1)
    if not has.any():
        return pl.DataFrame()
    zero = np.uint64(0)
    safe = np.maximum(ids, 0)
    with np.errstate(over="ignore"):
        ew1 = np.where(ok, w1[safe], zero).sum(axis=1, dtype=np.uint64)
        ew2 = np.where(ok, w2[safe], zero).sum(axis=1, dtype=np.uint64)
    first = np.where(ok, safe, np.iinfo(np.int64).max).min(axis=1)
    extra = pl.DataFrame(
        {
            "cell": c[has],
            "extra": rows.family[first[has]],
            "ew1": ew1[has],
            "ew2": ew2[has],
            "erows": ok.sum(axis=1)[has],
        }
    )
    return (
        base.join(extra, on="cell")
        .with_columns(
            h1=pl.col("h1") - pl.col("ew1"),
            h2=pl.col("h2") - pl.col("ew2"),
            rows=pl.col("rows") - pl.col("erows"),
        )
        .drop("ew1", "ew2", "erows")
    )


def _with_rollup_above(
    base: pl.DataFrame,
    above: Ints,
    cells: BaseCells,
    c: Ints,
    incidence: Incidence,
    rows: RowIndex,
    published: Bools,
    w1: Hashes,
    w2: Hashes,
) -> pl.DataFrame:
    """``base`` options that also hide the roll-up rows of ``above`` pooling each cell (the
    rows of the cell's item, subscale and index, every roll-up perspective it lies in)."""
    has = above >= 0
    if not has.any():
        return pl.DataFrame()
    which, row = incidence.rows_of(c[has])
    unit_of_row = np.full(rows.count, -1, dtype=np.int64)
    rollup_ids = incidence.rollup[incidence.rollup >= 0]
    unit_of_row[rollup_ids] = np.nonzero(incidence.rollup >= 0)[1]
    match = (unit_of_row[row] == above[has][which]) & published[row]
    which, row = which[match], row[match]
    if len(row) == 0:
        return pl.DataFrame()
    extra = (
        pl.DataFrame(
            {
                "cell": c[has][which],
                "extra": rows.family[row],
                "ew1": w1[row],
                "ew2": w2[row],
            }
        )
        .group_by("cell", "extra")
        .agg(ew1=pl.col("ew1").sum(), ew2=pl.col("ew2").sum(), erows=pl.len())
    )
    del cells
    return (
        base.join(extra, on="cell")
        .with_columns(
            h1=pl.col("h1") - pl.col("ew1"),
            h2=pl.col("h2") - pl.col("ew2"),
            rows=pl.col("rows") - pl.col("erows"),
        )
        .drop("ew1", "ew2", "erows")
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
