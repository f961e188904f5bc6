"""An independent, deliberately plain reference implementation of scoring method 2.

Written from ``SCORING.md`` (the specification) and ``docs/scoring-decisions.md`` only, never
from the engine's code, so that tests can hold the engine against it row by row. Clarity beats
speed here: dicts, lists, loops and exact fractions. Anonymity is rule 1 only (see
``tests/reference/scoring.py``).
"""

from tests.reference.scoring import reference_changes, reference_row_members, reference_score

__all__ = ["reference_changes", "reference_row_members", "reference_score"]
