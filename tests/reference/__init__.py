"""An independent, deliberately plain reference implementation of the scoring rules.

Written from ``SCORING.md`` (the specification) and ``docs/scoring-decisions.md`` only, never
from the engine's code, so that ``tests/scoring/test_engine_matches_reference.py`` can compare the
two row by row. Clarity beats speed here: dicts, lists and loops.
"""

from tests.reference.scoring import reference_changes, reference_score

__all__ = ["reference_changes", "reference_score"]
