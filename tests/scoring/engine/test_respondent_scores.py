"""Respondent-level scores (SCORING.md §2): reversal, recoding, "don't know", minimum answers."""

from __future__ import annotations

import polars as pl
import pytest

from coherence_core.instruments import InstrumentDefinition
from coherence_scoring.engine import ScoringInput, cell_values
from tests.scoring.engine.builders import PS, RC, RL, Round, same


def values(
    inp: ScoringInput, scale: str, measure: str, perspective: str = "members"
) -> dict[int, float]:
    """respondent → value for the unit rows without roll-up."""
    frame = cell_values(inp).filter(
        pl.col("scale") == scale,
        pl.col("measure") == measure,
        pl.col("perspective") == perspective,
        ~pl.col("rollup"),
    )
    return dict(zip(frame["respondent"], frame["value"], strict=True))


def test_reversed_items_score_min_plus_max_minus_value() -> None:
    rnd = Round()
    rnd.unit("u")
    # raw: held against (reversed) 2, raise problems 5, reject different (reversed) 1, safe risk 3
    p = rnd.person("u", {PS[0]: 2, PS[1]: 5, PS[2]: 1, PS[3]: 3})
    inp = rnd.inputs()
    assert values(inp, "psychological_safety", PS[0]) == {p: 4.0}
    assert values(inp, "psychological_safety", PS[1]) == {p: 5.0}
    assert values(inp, "psychological_safety", PS[2]) == {p: 5.0}
    # 4 of 7 answered: index = (4 + 5 + 5 + 3) / 4
    assert values(inp, "psychological_safety", "index") == {p: 4.25}


def _recoding_instrument() -> InstrumentDefinition:
    text = {"en": "Statement."}
    return InstrumentDefinition.model_validate(
        {
            "key": "recoding",
            "name": {"en": "Recoding"},
            "scales": [
                {
                    "key": "wellbeing",
                    "targeting": "self",
                    "response_min": 0,
                    "response_max": 6,
                    "items": [
                        # "just right" (3) is best: recoded to 6; then reversed: 0 + 6 − 6 = 0
                        {
                            "key": "amount",
                            "recode": {0: 0, 1: 2, 2: 4, 3: 6, 4: 4, 5: 2, 6: 0},
                            "reversed": True,
                            "text": text,
                        },
                        {"key": "plain", "text": text},
                        {"key": "flipped", "reversed": True, "text": text},
                    ],
                }
            ],
        }
    )


def test_recode_map_applies_before_reversal_on_a_0_to_6_scale() -> None:
    rnd = Round(instrument=_recoding_instrument())
    rnd.unit("u")
    a = rnd.person("u", {"amount": 3, "plain": 6, "flipped": 0})
    b = rnd.person("u", {"amount": 1, "plain": 0, "flipped": 6})
    inp = rnd.inputs()
    assert values(inp, "wellbeing", "amount") == {a: 0.0, b: 4.0}  # 6 − recode(1) = 6 − 2
    assert values(inp, "wellbeing", "plain") == {a: 6.0, b: 0.0}
    assert values(inp, "wellbeing", "flipped") == {a: 6.0, b: 0.0}
    assert values(inp, "wellbeing", "index") == {a: 4.0, b: 4.0 / 3.0}


def test_dont_know_is_not_an_answer() -> None:
    rnd = Round()
    rnd.unit("u")
    # 5 answered (the minimum for 9 items) and 4 "don't know"
    p = rnd.person("u", {**same(RL[:5], 4), **same(RL[5:], None)})
    q = rnd.person("u", {**same(RL[:4], 4), **same(RL[4:], None)})
    inp = rnd.inputs()
    assert values(inp, "relational_leadership", "index") == {p: 4.0}
    assert values(inp, "relational_leadership", RL[6]) == {}  # nobody has a "don't know" item
    assert values(inp, "relational_leadership", RL[0]) == {p: 4.0, q: 4.0}


@pytest.mark.parametrize(
    ("answered", "has_index"),
    [(5, True), (4, False)],  # ceil(9 / 2) = 5
)
def test_minimum_answers_for_a_scale(answered: int, has_index: bool) -> None:
    rnd = Round()
    rnd.unit("u")
    p = rnd.person("u", dict(zip(RL[:answered], [1, 2, 3, 4, 5], strict=False)))
    got = values(rnd.inputs(), "relational_leadership", "index")
    expected = sum([1, 2, 3, 4, 5][:answered]) / answered
    assert got == ({p: expected} if has_index else {})


@pytest.mark.parametrize(("answered", "has_index"), [(4, True), (3, False)])  # ceil(7 / 2) = 4
def test_minimum_answers_for_seven_items(answered: int, has_index: bool) -> None:
    rnd = Round()
    rnd.unit("u")
    p = rnd.person("u", same(PS[1 : 1 + answered], 4))  # not reversed: items 1, 3 and 5..6
    got = values(rnd.inputs(), "psychological_safety", "index")
    assert (p in got) is has_index


def test_minimum_answers_for_subscales() -> None:
    # framing has 3 items (needs 2), communication 4 (needs 2), capacity 2 (needs 1)
    rnd = Round()
    rnd.unit("u")
    two = rnd.person("u", {RL[0]: 2, RL[1]: 5, RL[3]: 3})  # framing 2 answered, engaging 1
    one = rnd.person("u", {RL[0]: 4, RL[3]: 3, RL[4]: 3})  # framing 1, engaging 2
    inp = rnd.inputs()
    assert values(inp, "relational_leadership", "framing") == {two: 3.5}
    assert values(inp, "relational_leadership", "engaging") == {one: 3.0}
    assert values(inp, "relational_leadership", "index") == {}  # 3 answers < 5


def test_tie_scores_and_subscales_per_target() -> None:
    rnd = Round()
    rnd.unit("a")
    rnd.unit("b")
    about_b = {RC[0]: 5, RC[1]: 4, RC[2]: None, RC[3]: 3, RC[7]: 2, RC[8]: None}
    p = rnd.person("a", about={"a": same(RC, 4), "b": about_b})
    inp = rnd.inputs()
    assert values(inp, "relational_capacity", "index", "internal") == {p: 4.0}
    # about b only 4 of 9 items are answered: no tie score
    assert values(inp, "relational_capacity", "index", "incoming") == {}
    # communication: 3 of 4 answered → (5 + 4 + 3) / 3; capacity: 1 of 2 answered → 2
    assert values(inp, "relational_capacity", "communication", "incoming") == {p: 4.0}
    assert values(inp, "relational_capacity", "capacity", "incoming") == {p: 2.0}
    assert values(inp, "relational_capacity", "relationships", "incoming") == {}
