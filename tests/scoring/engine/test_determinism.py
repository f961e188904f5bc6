"""SCORING.md §6: the same answers give bit-identical results — including what the protection
hides — whatever the row order and whatever the respondent ids."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from coherence_core.synthetic import generate_organisation, to_scoring_input
from coherence_scoring.engine import (
    ScoringInput,
    ScoringResult,
    ScoringSettings,
    score,
)
from coherence_scoring.engine import respondent as respondent_module
from tests.scoring.engine.builders import RL, Round, same


@pytest.fixture(scope="module")
def round_input() -> ScoringInput:
    org = generate_organisation(400, 25, seed=11, tiny_unit_share=0.3)
    return to_scoring_input(org, ScoringSettings(min_group_size=4))


def reshuffled(
    inp: ScoringInput, seed: int, keep_order: bool = False
) -> tuple[ScoringInput, dict[int, int]]:
    """Every frame in another row order and every respondent under another id (``keep_order``:
    new ids in the same order as the old)."""
    rng = np.random.default_rng(seed)
    old = inp.respondents["respondent"].to_numpy()
    new = rng.choice(10**12, size=len(old), replace=False).astype(np.int64)
    if keep_order:
        new = np.sort(new)[np.argsort(np.argsort(old))]
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
            preview=inp.preview,
            noise_key=inp.noise_key,
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
    hidden = first.unit_scores.filter(pl.col("suppression_reason") == "complementary")
    assert hidden.height > 0  # the protection's choices must not depend on the order either
    for seed in (1, 2):
        again, _ = reshuffled(round_input, seed)
        assert_identical(first, score(again))


def test_both_ways_of_numbering_rows_agree(
    round_input: ScoringInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = score(round_input)
    monkeypatch.setattr(respondent_module, "ROW_TABLE_MIN", -(10**12))
    assert_identical(first, score(round_input))


def test_a_preview_does_not_depend_on_row_order(round_input: ScoringInput) -> None:
    """An open round's preview (SCORING.md §5.3) is bit-identical whatever the row order (the
    noise of a cell is keyed by whose responses, by respondent id, it holds and with which
    values); other ids are other people, so their cells draw other noise."""
    preview = replace(round_input, preview=True, noise_key=2024)
    first = score(preview)
    assert first.preview
    exact = score(round_input)
    published = ~first.unit_scores["suppressed"]
    assert (first.unit_scores["mean"] != exact.unit_scores["mean"]).filter(published).any()
    again = replace(
        preview,
        units=preview.units.sample(fraction=1.0, shuffle=True, seed=4),
        respondents=preview.respondents.sample(fraction=1.0, shuffle=True, seed=5),
        answers=preview.answers.sample(fraction=1.0, shuffle=True, seed=6),
    )
    assert_identical(first, score(again))
    renamed, _ = reshuffled(preview, 4, keep_order=True)
    assert not score(renamed).unit_scores["mean"].equals(first.unit_scores["mean"])


def test_preview_noise_of_an_unchanged_cell_ignores_other_respondents() -> None:
    """u's cells hold the same people with the same answers in both versions; in the second a
    respondent with a lower id than theirs has joined another unit."""

    def version(with_newcomer: bool) -> ScoringInput:
        rnd = Round()
        rnd.unit("u")
        rnd.unit("w")
        if with_newcomer:
            rnd.person("w", same(RL, 2), respondent=1)
        for i, v in enumerate((3, 4, 5, 4)):
            rnd.person("u", same(RL, v), respondent=100 + i)
        for i, v in enumerate((2, 3, 5)):
            rnd.person("w", same(RL, v), respondent=200 + i)
        return replace(rnd.inputs(k=3), preview=True, noise_key=12345)

    def items_of_u(result: ScoringResult) -> pl.DataFrame:
        # the item rows of u are u's base cells
        return result.unit_scores.filter(
            pl.col("unit") == "u", ~pl.col("rollup"), pl.col("measure").is_in(RL)
        ).select("measure", "n", "mean", "suppressed")

    before, after = score(version(False)), score(version(True))
    assert items_of_u(before).height == len(RL)
    assert items_of_u(before).equals(items_of_u(after))
