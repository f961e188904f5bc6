"""The implicit incidence of base cells and rows agrees with listing every pair explicitly.

``Incidence.cell_sums`` (prefix sums down the tree at a, b and their lowest common ancestor) and
``Incidence.row_sums`` (subtree sums up the tree) must give exactly what summing over the explicit
``rows_of_cells`` lists gives, on trees with depth, several roots and diagonal ties.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from coherence_core.synthetic import generate_organisation, to_scoring_input
from coherence_scoring.engine import ScoringSettings
from coherence_scoring.engine.protection.incidence import lowest_common_ancestors
from coherence_scoring.engine.scoring import analyse


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_implicit_sums_equal_explicit_ones(seed: int) -> None:
    org = generate_organisation(n_respondents=150, n_units=14, targets_per_respondent=5, seed=seed)
    inputs = dataclasses.replace(to_scoring_input(org), settings=ScoringSettings(min_group_size=3))
    structure = analyse(inputs).structure
    incidence, rows, cells = structure.incidence, structure.rows, structure.cells
    every = np.arange(cells.count)
    position, row = incidence.rows_of(every)
    rng = np.random.default_rng(seed)

    row_values = rng.integers(0, 1000, size=(rows.count, 2)).astype(np.int64)
    explicit = np.zeros((cells.count, 2), dtype=np.int64)
    np.add.at(explicit, position, row_values[row])
    assert np.array_equal(incidence.cell_sums(row_values), explicit)

    cell_values = rng.integers(0, 1000, size=(cells.count, 1)).astype(np.int64)
    explicit_rows = np.zeros((rows.count, 1), dtype=np.int64)
    np.add.at(explicit_rows, row, cell_values[position])
    assert np.array_equal(incidence.row_sums(cell_values), explicit_rows)


def test_lowest_common_ancestors_by_walking_up() -> None:
    org = generate_organisation(n_respondents=60, n_units=30, targets_per_respondent=3, seed=5)
    tree = analyse(to_scoring_input(org)).rnd.tree
    a, b = np.meshgrid(np.arange(tree.count), np.arange(tree.count))
    a, b = a.ravel(), b.ravel()

    def ancestors(u: int) -> list[int]:
        chain = [u]
        while tree.parent[chain[-1]] >= 0:
            chain.append(int(tree.parent[chain[-1]]))
        return chain

    expected = []
    for x, y in zip(a, b, strict=True):
        mine = ancestors(int(x))
        theirs = set(ancestors(int(y)))
        expected.append(next((u for u in mine if u in theirs), -1))
    assert lowest_common_ancestors(tree, a, b).tolist() == expected
