"""The anonymity rules (SCORING.md §5) — the one place they are implemented.

Rule 1: a row computed from fewer than ``k`` respondents is suppressed (``min_group_size``).
Rule 2 (no differencing): in every family — an aggregate and the disjoint parts it is made of —
the suppressed parts must hold 0 or at least ``k`` respondents when the aggregate is published,
and at least ``k`` when it is suppressed, unless every part is (else the hidden aggregate is the
sum of its published parts, and whatever it was hidden to protect can be differenced out one
level up). While a family breaks this, the published part with the smallest ``n`` (ties broken
by its unit's external id, then the ``to`` unit's) is suppressed too (``complementary``); when
no published part is left and the aggregate is published, the aggregate is. The families
(scoring-decisions.md), per scale and measure:

1. incoming column: the ``incoming`` row of unit b (no roll-up) → the ties R[a,b], a ≠ b;
2. hierarchy: the ``members`` roll-up row of p → p's direct row and, per child c, c's roll-up
   row when c has children, else c's direct row;
3. organisation: all respondents (published as the summary's scale mean) → each root's row
   (roll-up when the root has children).

Participation rows form families 2 and 3 too, with ``respondents`` as n. Every family is checked
whether or not its aggregate is itself suppressed, and the families are re-checked until nothing
changes (suppression only grows).

After rule 2, the rows of unit-targeted scales that are parts of no family — ``outgoing``
(``rollup: false``) and the roll-up ``internal``, ``incoming`` and ``outgoing`` rows — are
checked against the tie rows whose scores they pool (``pooled_rows``): a row is suppressed
(``complementary``) when the suppressed ones among them hold 1..k−1 distinct raters.

After both rules, summary values that pool published rows are aggregates too (the within and
between means, a unit-targeted scale's mean, the response rate): ``tie_summary_nulls`` and
``response_rate_null`` say when one must be null because the rows it pools that are suppressed
hold 1..k−1 people. No row is suppressed for a summary value.
"""

from coherence_scoring.engine.anonymity.families import (
    COMPLEMENTARY,
    MIN_GROUP_SIZE,
    PARTICIPATION,
    Published,
    apply_rules,
)
from coherence_scoring.engine.anonymity.pooled import pooled_rows
from coherence_scoring.engine.anonymity.summary_values import (
    TieSummaryNulls,
    differenced,
    distinct,
    response_rate_null,
    tie_summary_nulls,
)

__all__ = [
    "COMPLEMENTARY",
    "MIN_GROUP_SIZE",
    "PARTICIPATION",
    "Published",
    "TieSummaryNulls",
    "apply_rules",
    "differenced",
    "distinct",
    "pooled_rows",
    "response_rate_null",
    "tie_summary_nulls",
]
