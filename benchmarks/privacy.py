"""Privacy (issue 7): what the protection costs — in time, and in what it hides or perturbs.

For each size (1,000 / 10,000 / 50,000 respondents; the scoring section's shape: about 120 units
per 10,000 respondents, ~12 target units each, k = 5), in this process:

1. the engine with the protection and its audit against the same engine publishing rule 1 only
   (`rule_one_only()`: the protection replaced by "hide rows under k", the audit by nothing) —
   the cost of SCORING.md §5 in compute time, alternating, best of N;
2. what the final publication hides: rows by reason (rule 1, complementary) per perspective, and
   the share of published base cells, ties and incoming rows;
3. the preview of the same round (noise keyed to each cell's respondents): the share of published
   rows whose mean is perturbed, and the mean absolute perturbation of a published mean by its n.

The job-level goal (scoring job within 1.5× of the job without the protection) is measured by the
scoring section, end to end against Postgres (benchmarks/scoring.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

from benchmarks.common import BenchConfig, Goal, fmt_int, fmt_s, log, print_table, timed
from coherence_core.synthetic import generate_organisation, to_scoring_input
from coherence_scoring.engine import ScoringResult, ScoringSettings, score

FULL_SIZES = (1_000, 10_000, 50_000)
QUICK_SIZES = (1_000, 10_000)
MIN_GROUP_SIZE = 5
N_BUCKETS = ((5, 9), (10, 19), (20, 49), (50, 199), (200, 10**9))


def units_for(respondents: int) -> int:
    return max(12, round(120 * respondents / 10_000))


@contextlib.contextmanager
def rule_one_only() -> Iterator[None]:
    """The engine as it would publish with rule 1 alone: the baseline of the protection's cost
    (never used outside benchmarks and tests)."""
    from coherence_scoring.engine import scoring
    from coherence_scoring.engine.protection import Protection

    def protect(*, rows: Any, k: int, **_: Any) -> Protection:
        published = rows.n[rows.canonical] >= k
        return Protection(
            published=published,
            reason=np.where(published, 0, 1),
            pools_hidden=np.zeros(len(published), dtype=bool),
            rounds=0,
            atoms=0,
        )

    saved = scoring.protect, scoring.audit
    scoring.protect, scoring.audit = protect, lambda **_: None  # type: ignore[assignment]
    try:
        yield
    finally:
        scoring.protect, scoring.audit = saved


def _hidden_table(result: ScoringResult) -> list[list[str]]:
    units = result.unit_scores.filter(pl.col("measure") == "index")
    rows = []
    for (scale, perspective, rollup), part in sorted(
        units.group_by("scale", "perspective", "rollup"), key=lambda g: g[0]
    ):
        total = part.height
        rule_one = part.filter(pl.col("suppression_reason") == "min_group_size").height
        complementary = part.filter(pl.col("suppression_reason") == "complementary").height
        rows.append(
            [
                f"{scale} {perspective}{' (roll-up)' if rollup else ''}",
                fmt_int(total),
                f"{rule_one / total:.0%}",
                f"{complementary / total:.0%}",
                f"{(total - rule_one - complementary) / total:.0%}",
            ]
        )
    ties = result.tie_scores.filter(
        (pl.col("measure") == "index") & (pl.col("from_unit") != pl.col("to_unit"))
    )
    rule_one = ties.filter(pl.col("suppression_reason") == "min_group_size").height
    complementary = ties.filter(pl.col("suppression_reason") == "complementary").height
    rows.append(
        [
            "ties between units (index)",
            fmt_int(ties.height),
            f"{rule_one / ties.height:.0%}",
            f"{complementary / ties.height:.0%}",
            f"{(ties.height - rule_one - complementary) / ties.height:.0%}",
        ]
    )
    return rows


def _perturbation(final: ScoringResult, preview: ScoringResult) -> list[list[str]]:
    keys = ["unit", "scale", "measure", "perspective", "rollup"]
    both = final.unit_scores.join(preview.unit_scores, on=keys, suffix="_p").filter(
        ~pl.col("suppressed") & ~pl.col("suppressed_p") & (pl.col("scale") != "coherence")
    )
    ties = final.tie_scores.join(
        preview.tie_scores, on=["from_unit", "to_unit", "scale", "measure"], suffix="_p"
    ).filter(~pl.col("suppressed") & ~pl.col("suppressed_p"))
    rows = pl.concat([both.select("n", "mean", "mean_p"), ties.select("n", "mean", "mean_p")])
    rows = rows.with_columns(delta=(pl.col("mean_p") - pl.col("mean")).abs())
    out = []
    for low, high in N_BUCKETS:
        part = rows.filter(pl.col("n").is_between(low, high))
        if part.height == 0:
            continue
        out.append(
            [
                f"n {low}–{high}" if high < 10**9 else f"n ≥ {low}",
                fmt_int(part.height),
                f"{(part['delta'] > 0).mean():.0%}",
                f"{part['delta'].mean():.3f}",
                f"{part['delta'].quantile(0.95):.3f}",
            ]
        )
    return out


def measure(respondents: int, repeats: int) -> dict[str, Any]:
    org = generate_organisation(
        n_respondents=respondents,
        n_units=units_for(respondents),
        targets_per_respondent=12,
        seed=1,
    )
    inputs = dataclasses.replace(
        to_scoring_input(org), settings=ScoringSettings(min_group_size=MIN_GROUP_SIZE)
    )
    final = score(inputs)
    with rule_one_only():
        score(inputs)  # warm-up
    protected, baseline = [], []
    for _ in range(repeats):
        protected.append(timed(lambda: score(inputs)))
        with rule_one_only():
            baseline.append(timed(lambda: score(inputs)))
    preview = score(dataclasses.replace(inputs, preview=True, noise_key=20261201))
    return {
        "inputs": inputs,
        "final": final,
        "preview": preview,
        "protected": min(protected),
        "baseline": min(baseline),
    }


def run(config: BenchConfig) -> list[Goal]:
    sizes = QUICK_SIZES if config.quick else FULL_SIZES
    results = {}
    for respondents in sizes:
        started = time.perf_counter()
        results[respondents] = measure(respondents, repeats=3 if respondents <= 10_000 else 2)
        log(f"privacy: {respondents:,} respondents in {fmt_s(time.perf_counter() - started)}")
    print_table(
        "Privacy: compute time of the protection and its audit (engine alone, k = 5)",
        ["respondents", "units", "with protection + audit", "rule 1 only", "ratio", "repairs"],
        [
            [
                fmt_int(n),
                fmt_int(units_for(n)),
                fmt_s(r["protected"]),
                fmt_s(r["baseline"]),
                f"{r['protected'] / r['baseline']:.2f}×",
                str(r["final"].diagnostics["repair_rounds"]),
            ]
            for n, r in results.items()
        ],
        note="Best of 3 (2 at 50,000), alternating, after one warm-up each; same frames.",
    )
    for n, r in results.items():
        d: dict[str, Any] = r["final"].diagnostics
        hidden = d["base_cells_hidden"] / d["base_cells"]
        print_table(
            f"Privacy: what the final publication hides, {n:,} respondents "
            f"({d['rows']:,} rows; base cells hidden {hidden:.0%})",
            ["rows (index measure)", "rows", "rule 1", "complementary", "published"],
            _hidden_table(r["final"]),
        )
        print_table(
            f"Privacy: preview perturbation of published means, {n:,} respondents",
            ["published rows", "rows", "perturbed", "mean |Δ|", "95th pct |Δ|"],
            _perturbation(r["final"], r["preview"]),
            note="Same round scored as an open round (preview) and as a closed one (exact).",
        )
    return []
