"""Change since an earlier round (SCORING.md §4): difference of means and a Welch t-test.

Welch's test needs only each group's n, mean and sample sd, which the published unit rows carry;
a change is published only where both rows are, so nothing beyond published rows is used.
"""

from __future__ import annotations

import math

from scipy import stats

from coherence_api.errors import Conflict
from coherence_api.results.schemas import ChangeOut
from coherence_core.db.models import UnitScore


class NotComparable(Conflict):
    title, type_slug = "Rounds not comparable", "not-comparable"


def welch_p(n1: int, m1: float, s1: float, n2: int, m2: float, s2: float) -> float | None:
    """Two-sided p of Welch's t-test from the two rows' published statistics; None when
    undefined (fewer than 2 people on a side, or no spread at all)."""
    if n1 < 2 or n2 < 2:
        return None
    result = stats.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False)
    p = float(result.pvalue)
    return None if math.isnan(p) else p


def change_of(later: UnitScore, earlier: UnitScore) -> ChangeOut:
    common = {
        "unit": later.unit,
        "scale": later.scale,
        "measure": later.measure,
        "perspective": later.perspective,
        "rollup": later.rollup,
    }
    if later.mean is None or earlier.mean is None or later.n is None or earlier.n is None:
        reason = later.suppression_reason or earlier.suppression_reason or "min_group_size"
        return ChangeOut(
            **common,
            mean=None,
            earlier_mean=None,
            difference=None,
            p_value=None,
            suppressed=True,
            suppression_reason=reason,
        )
    p_value = None
    if later.sd is not None and earlier.sd is not None:
        p_value = welch_p(later.n, later.mean, later.sd, earlier.n, earlier.mean, earlier.sd)
    return ChangeOut(
        **common,
        mean=later.mean,
        earlier_mean=earlier.mean,
        difference=later.mean - earlier.mean,
        p_value=p_value,
        suppressed=False,
        suppression_reason=None,
    )
