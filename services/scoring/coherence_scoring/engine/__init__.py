"""The pure scoring engine: polars frames in, polars frames out, no I/O (SCORING.md).

``score(inputs)`` publishes a round; ``cell_values(inputs)`` gives the respondent-level values
behind its unit rows (for tests of change between rounds; never to be published).
"""

from coherence_scoring.engine.scoring import CELL_VALUES_SCHEMA, cell_values, score
from coherence_scoring.engine.types import (
    ANSWERS_SCHEMA,
    METHOD_VERSION,
    RESPONDENTS_SCHEMA,
    TIE_SCORES_SCHEMA,
    UNIT_PARTICIPATION_SCHEMA,
    UNIT_SCORES_SCHEMA,
    UNITS_SCHEMA,
    ScoringInput,
    ScoringResult,
    ScoringSettings,
)

__all__ = [
    "ANSWERS_SCHEMA",
    "CELL_VALUES_SCHEMA",
    "METHOD_VERSION",
    "RESPONDENTS_SCHEMA",
    "TIE_SCORES_SCHEMA",
    "UNITS_SCHEMA",
    "UNIT_PARTICIPATION_SCHEMA",
    "UNIT_SCORES_SCHEMA",
    "ScoringInput",
    "ScoringResult",
    "ScoringSettings",
    "cell_values",
    "score",
]
