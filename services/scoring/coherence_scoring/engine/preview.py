"""Previews of open rounds: cell-key noise that cannot be averaged or differenced away.

While a round is open its results change with every accepted batch; exact successive versions
would give a new respondent's answers away by subtraction (SCORING.md §5.3). A preview therefore
adds to every base cell's sum an integer of noise chosen by the cell's **key** — a keyed hash of
the cell and of exactly whose responses, with which values, it holds. The same cell with the
same responses always gets the same noise, so reading a preview again, or any number of
versions in which the cell did not change, tells nothing new; any change in the cell draws fresh,
independent noise. Rows are sums of base cells, so every row's noise is the sum of its cells'
noise: the published tables stay additive and consistent, and no combination of rows sees less
noise than the smallest cell in it.

The noise is two-sided geometric ("discrete Laplace") with P(0) = 1/2: P(e) = ρ^|e|·(1 − ρ)/(1 + ρ)
with ρ = 1/3 (standard deviation 1.22 per base cell), on sums of integer answers. Subtracting
the final from a preview (or two previews) that differ by one person's answer leaves that answer
behind the noise of one (two) cells: a 90% interval about it spans at least ±2 scale points, and
no bound is ever certain.
Measured costs: docs/privacy.md, "Previews".
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from coherence_scoring.engine.protection.cells import BaseCells

Ints = npt.NDArray[np.int64]

#: ρ of the two-sided geometric distribution (P(0) = (1 − ρ)/(1 + ρ) = 1/2).
RHO = 1.0 / 3.0


def _mix(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finaliser: a bijective 64-bit mix."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def cell_noise(cells: BaseCells, key: int, respondent_ids: Ints) -> Ints:
    """The noise of every base cell: a function of the secret ``key`` (per round), the cell,
    and the set of (respondent id, value) of its responses — nothing else (``respondent_ids``
    maps the dense respondent index of ``cells`` to the round's respondent ids)."""
    secret = np.uint64(key % 2**64)
    with np.errstate(over="ignore"):
        person = respondent_ids[cells.response_person].astype(np.uint64)
        value = cells.response_value.astype(np.uint64)
        response = _mix(_mix(person ^ secret) + value * np.uint64(0x9E3779B97F4A7C15))
        content = np.zeros(cells.count, dtype=np.uint64)
        np.add.at(content, cells.response_cell, response)  # order-free: a sum modulo 2**64
        where = (
            cells.a.astype(np.uint64) * np.uint64(0x100000001B3)
            + (cells.b + 1).astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
            + cells.item.astype(np.uint64)
        )
        u = _mix(_mix(where ^ secret) ^ content)
    # two uniform draws from the 64 bits: the sign and the magnitude
    uniform = (u >> np.uint64(12)).astype(np.float64) / float(2**52)
    negative = (u & np.uint64(1)).astype(bool)
    # |e| = 0 with probability 1/2; else geometric: P(|e| = m | m ≥ 1) = (1 − ρ) ρ^(m − 1)
    magnitude = np.where(
        uniform < 0.5,
        0,
        1 + np.floor(np.log(np.maximum(2.0 * (1.0 - uniform), 1e-300)) / np.log(RHO)),
    ).astype(np.int64)
    return np.where(negative, -magnitude, magnitude)
