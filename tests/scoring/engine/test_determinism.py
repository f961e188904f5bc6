"""SCORING.md §6: the same answers give bit-identical results, whatever the row order and
whatever the respondent ids."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from coherence_core.synthetic import generate_organisation, to_scoring_input
from coherence_scoring.engine import (
    ScoringInput,
    ScoringResult,
    ScoringSettings,
    cell_values,
    score,
)
from coherence_scoring.engine import respondent as respondent_module


@pytest.fixture(scope="module")
def round_input() -> ScoringInput:
    org = generate_organisation(400, 25, seed=11, tiny_unit_share=0.3)
    return to_scoring_input(org, ScoringSettings(min_group_size=4))


def reshuffled(inp: ScoringInput, seed: int) -> tuple[ScoringInput, dict[int, int]]:
    """Every frame in another row order and every respondent under another id."""
    rng = np.random.default_rng(seed)
    old = inp.respondents["respondent"].to_numpy()
    new = rng.choice(10**12, size=len(old), replace=False).astype(np.int64)
    renamed = dict(zip(old.tolist(), new.tolist(), strict=True))

    def rename(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.col("respondent").replace_strict(old, new, return_dtype=pl.Int64)
        ).sample(fraction=1.0, shuffle=True, seed=seed)

    return (
        ScoringInput(
            instrument=inp.instrument,
            units=inp.units.sample(fraction=1.0, shuffle=True, seed=seed),
            respondents=rename(inp.respondents),
            answers=rename(inp.answers),
            settings=inp.settings,
        ),
        renamed,
    )


def assert_identical(first: ScoringResult, again: ScoringResult) -> None:
    assert first.unit_scores.equals(again.unit_scores)
    assert first.tie_scores.equals(again.tie_scores)
    assert first.participation.equals(again.participation)
    assert first.summary == again.summary


def test_row_order_and_respondent_ids_do_not_change_the_result(round_input: ScoringInput) -> None:
    first = score(round_input)
    assert first.unit_scores.filter(pl.col("suppressed")).height > 0
    for seed in (1, 2):
        again, _ = reshuffled(round_input, seed)
        assert_identical(first, score(again))


def test_cell_values_follow_the_respondents(round_input: ScoringInput) -> None:
    first = cell_values(round_input)
    again_input, renamed = reshuffled(round_input, 3)
    again = cell_values(again_input)
    back = {v: k for k, v in renamed.items()}
    restored = again.with_columns(
        pl.col("respondent").replace_strict(list(back), list(back.values()))
    ).sort(first.columns[:6])
    assert first.equals(restored)


def test_both_ways_of_numbering_rows_agree(
    round_input: ScoringInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = score(round_input)
    monkeypatch.setattr(respondent_module, "ROW_TABLE_MIN", -(10**12))
    assert_identical(first, score(round_input))


def test_cell_values_reproduce_the_published_means(round_input: ScoringInput) -> None:
    published = score(round_input).unit_scores.filter(
        ~pl.col("suppressed") & (pl.col("scale") != "coherence")
    )
    means = (
        cell_values(round_input)
        .group_by("unit", "scale", "measure", "perspective", "rollup")
        .agg(pl.col("value").mean().alias("expected"), pl.len().alias("count"))
    )
    joined = published.join(means, on=["unit", "scale", "measure", "perspective", "rollup"])
    assert joined.height == published.height
    assert (joined["n"] == joined["count"]).all()
    assert ((joined["mean"] - joined["expected"]).abs() < 1e-12).all()
