"""Earlier final publications that hold some of the same responses (SCORING.md §5.3).

The ledger (jobs, ``publication_respondent``) finds the organisation's earlier finals in which a
respondent of this round sent exactly the same answers. For each, this module rebuilds the linear
structure of what it published — its base cells, which of its rows are published, the signature
of each cell over them — and matches its responses to this round's: the same respondent, item,
target unit (by external id) and value are the same unknown in both. The protection then splits
this round's cells into pieces by what the earlier publication shows of them (pieces.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from coherence_scoring.engine.protection import Earlier
from coherence_scoring.engine.protection.atoms import row_weights, signatures
from coherence_scoring.engine.protection.rows import lookup
from coherence_scoring.engine.respondent import SELF
from coherence_scoring.engine.types import LinkedPublication, ScoringInput, ScoringResult

if TYPE_CHECKING:
    from coherence_scoring.engine.scoring import Analysis

Ints = npt.NDArray[np.int64]


def earlier_publications(analysis: Analysis, inputs: ScoringInput) -> list[Earlier]:
    """The ``Earlier`` view of every publication linked to ``inputs``."""
    from coherence_scoring.engine.scoring import analyse, published_in

    out = []
    for salt, link in enumerate(inputs.linked, start=3):
        there = analyse(link.inputs)
        rows = there.structure.rows
        as_result = ScoringResult(
            unit_scores=link.unit_scores,
            tie_scores=link.tie_scores,
            participation=link.unit_scores.clear(),
            summary=link.summary,
        )
        published = published_in(
            as_result, rows, there.rnd.measures, there.rnd.tree, there.network_mid
        )
        w1 = row_weights(rows.count, 2 * salt + 1)
        w2 = row_weights(rows.count, 2 * salt + 2)
        out.append(
            Earlier(
                cells=there.structure.cells,
                signature=signatures(there.structure.incidence, published, w1, w2),
                cell_published=published[there.structure.own_row],
                same_response=_same_responses(analysis, inputs, there, link),
            )
        )
    return out


def _same_responses(
    here: Analysis, inputs: ScoringInput, there: Analysis, link: LinkedPublication
) -> Ints:
    """For every counted response here, the index of the same response there, or -1."""
    items: dict[str, int] = {}
    targets: dict[str, int] = {}

    def keys(analysis: Analysis, instrument_inputs: ScoringInput, person_id: Ints) -> Ints:
        cells = analysis.structure.cells
        item_code = np.array(
            [
                items.setdefault(item.key, len(items))
                for _, item in instrument_inputs.instrument.items
            ],
            dtype=np.int64,
        )
        target_code = np.array(
            [targets.setdefault(e, len(targets)) for e in analysis.rnd.tree.external_id],
            dtype=np.int64,
        )
        cell = cells.response_cell
        b = cells.b[cell]
        target = np.where(b == SELF, -1, target_code[np.maximum(b, 0)])
        person = person_id[cells.response_person]
        return np.stack([person, item_code[cells.item[cell]], target, cells.response_value], axis=1)

    ids_here = here.rnd.data.respondents["respondent"].to_numpy().astype(np.int64)
    ids_there = there.rnd.data.respondents["respondent"].to_numpy().astype(np.int64)
    mapped = np.array([link.same_respondents.get(int(i), -1) for i in ids_there], dtype=np.int64)
    key_here = keys(here, inputs, ids_here)
    key_there = keys(there, link.inputs, mapped)
    # one integer per key (dense codes of every column), then a sorted lookup
    stacked = np.vstack([key_here, key_there])
    codes = np.zeros(len(stacked), dtype=np.int64)
    for column in range(stacked.shape[1]):
        values, code = np.unique(stacked[:, column], return_inverse=True)
        codes = codes * len(values) + code.reshape(-1)
    code_here, code_there = codes[: len(key_here)], codes[len(key_here) :]
    shared = np.flatnonzero(key_there[:, 0] >= 0)
    return lookup(code_there[shared], shared, code_here)
