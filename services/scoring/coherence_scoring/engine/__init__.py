"""The pure scoring engine: polars frames in, polars frames out, no I/O (SCORING.md).

``score(inputs)`` publishes a round: every number it returns has passed the protection of
SCORING.md §5 (``engine/protection``).
"""

from coherence_scoring.engine.protection import UnsafePublication
from coherence_scoring.engine.scoring import score
from coherence_scoring.engine.types import (
    ANSWERS_SCHEMA,
    METHOD_VERSION,
    RESPONDENTS_SCHEMA,
    TIE_SCORES_SCHEMA,
    UNIT_PARTICIPATION_SCHEMA,
    UNIT_SCORES_SCHEMA,
    UNITS_SCHEMA,
    LinkedPublication,
    ScoringInput,
    ScoringResult,
    ScoringSettings,
)

__all__ = [
    "ANSWERS_SCHEMA",
    "METHOD_VERSION",
    "RESPONDENTS_SCHEMA",
    "TIE_SCORES_SCHEMA",
    "UNITS_SCHEMA",
    "UNIT_PARTICIPATION_SCHEMA",
    "UNIT_SCORES_SCHEMA",
    "LinkedPublication",
    "ScoringInput",
    "ScoringResult",
    "ScoringSettings",
    "UnsafePublication",
    "score",
]
