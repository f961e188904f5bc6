"""What counts as a response (SCORING.md §2–3, scoring method 2): reversal, recoding, "don't
know", and eligibility — a respondent's responses to a scale about a referent count only when
they answered at least ``ceil(items / 2)`` of its items about it, and then in every row (index,
subscale and item rows alike); subscales have no minimum of their own.

Respondent-level values never leave the engine, so every test reads published rows of rounds
with three or more people per (referent, item) cell (k = 3), where nothing is hidden beyond
rule 1.
"""

from __future__ import annotations

from fractions import Fraction as F

import polars as pl
import pytest

from coherence_core.instruments import InstrumentDefinition
from coherence_scoring.engine import ScoringResult, score
from tests.scoring.engine.builders import (
    PS,
    RC,
    RL,
    Round,
    assert_nothing_hidden_beyond_rule_one,
    assert_published,
    row,
    rows,
    same,
)


def scored(rnd: Round) -> ScoringResult:
    result = score(rnd.inputs(k=3))
    assert_nothing_hidden_beyond_rule_one(result)
    return result


def members(result: ScoringResult, scale: str, measure: str) -> dict[str, object]:
    return row(result.unit_scores, unit="u", scale=scale, measure=measure, rollup=False)


def measures(result: ScoringResult, scale: str, **where: object) -> set[str]:
    return set(rows(result.unit_scores, scale=scale, **where)["measure"])


def test_reversed_items_score_min_plus_max_minus_value() -> None:
    rnd = Round()
    rnd.unit("u")
    # raw answers to held against (R), raise problems, reject different (R), safe risk;
    # scored (R: 6 − raw):
    rnd.person("u", {PS[0]: 2, PS[1]: 5, PS[2]: 1, PS[3]: 3})  # 4 5 5 3 → 17
    rnd.person("u", {PS[0]: 1, PS[1]: 4, PS[2]: 2, PS[3]: 3})  # 5 4 4 3 → 16
    rnd.person("u", {PS[0]: 5, PS[1]: 2, PS[2]: 4, PS[3]: 1})  # 1 2 2 1 → 6
    result = scored(rnd)
    ps = "psychological_safety"
    assert_published(members(result, ps, PS[0]), F(10, 3), [4, 5, 1])
    assert_published(members(result, ps, PS[1]), F(11, 3), [5, 4, 2])
    assert_published(members(result, ps, PS[2]), F(11, 3), [5, 4, 2])
    assert_published(members(result, ps, PS[3]), F(7, 3), [3, 3, 1])
    # 4 of 7 answered (the minimum): index (17 + 16 + 6) / 12
    assert_published(members(result, ps, "index"), F(39, 12), [F(17, 4), 4, F(6, 4)])
    # unanswered items have no row; psychological safety has no subscales
    assert measures(result, ps) == {"index", *PS[:4]}


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
    rnd.person("u", {"amount": 3, "plain": 6, "flipped": 0})  # 6 − 6 = 0, 6, 6 − 0 = 6
    rnd.person("u", {"amount": 1, "plain": 0, "flipped": 6})  # 6 − 2 = 4, 0, 0
    rnd.person("u", {"amount": 6, "plain": 3, "flipped": 3})  # 6 − 0 = 6, 3, 3
    result = scored(rnd)
    assert_published(members(result, "wellbeing", "amount"), F(10, 3), [0, 4, 6])
    assert_published(members(result, "wellbeing", "plain"), F(3), [6, 0, 3])
    assert_published(members(result, "wellbeing", "flipped"), F(3), [6, 0, 3])
    # (12 + 4 + 12) / 9
    assert_published(members(result, "wellbeing", "index"), F(28, 9), [4, F(4, 3), 4])


def test_dont_know_is_not_an_answer_and_ineligible_answers_count_nowhere() -> None:
    rnd = Round()
    rnd.unit("u")
    # three answer 5 items (the minimum for 9) and say "don't know" to 4
    for value in (3, 4, 5):
        rnd.person("u", {**same(RL[:5], value), **same(RL[5:], None)})
    # one answers 4 items with 1 (below the minimum): counts in no row, not even the items
    rnd.person("u", {**same(RL[:4], 1), **same(RL[4:], None)})
    result = scored(rnd)
    rl = "relational_leadership"
    assert_published(members(result, rl, "index"), F(60, 15), [3, 4, 5])
    assert_published(members(result, rl, RL[0]), F(12, 3), [3, 4, 5])  # not the 1
    # only items with a counted response have rows: the first 5, framing and engaging
    assert measures(result, rl, unit="u") == {"index", "framing", "engaging", *RL[:5]}
    # engaging: RL[3] and RL[4] of the three, 2 responses each
    assert_published(members(result, rl, "engaging"), F(24, 6), [3, 4, 5])
    # the ineligible respondent still responded: they count in participation
    assert result.participation.filter(unit="u")["respondents"].to_list() == [4]
    assert result.summary["respondents"] == 4


@pytest.mark.parametrize(("answered", "eligible"), [(5, True), (4, False)])  # ceil(9 / 2) = 5
def test_minimum_answers_for_a_scale(answered: int, eligible: bool) -> None:
    rnd = Round()
    rnd.unit("u")
    rnd.people_in("u", 3, dict(zip(RL[:answered], [1, 2, 3, 4, 5], strict=False)))
    result = scored(rnd)
    leadership = rows(result.unit_scores, scale="relational_leadership")
    if eligible:  # (1 + 2 + 3 + 4 + 5) / 5 for each of the three
        assert_published(members(result, "relational_leadership", "index"), F(3), [3, 3, 3])
        assert_published(members(result, "relational_leadership", RL[4]), F(5), [5, 5, 5])
    else:  # no counted response: no row at all, not even for the items answered
        assert leadership.height == 0


@pytest.mark.parametrize(("answered", "eligible"), [(4, True), (3, False)])  # ceil(7 / 2) = 4
def test_minimum_answers_for_seven_items(answered: int, eligible: bool) -> None:
    rnd = Round()
    rnd.unit("u")
    not_reversed = [PS[1], PS[3], PS[5], PS[6]]
    rnd.people_in("u", 3, same(not_reversed[:answered], 4))
    result = scored(rnd)
    assert rows(result.unit_scores, scale="psychological_safety").height == (
        1 + answered if eligible else 0
    )


def test_subscales_have_no_minimum_of_their_own() -> None:
    """framing (RL 1-3), engaging (4-6), involving (7-9). Each of e1..e3 answers 5 items:
    two framing, one engaging, two involving; q answers 4 (not eligible)."""
    rnd = Round()
    rnd.unit("u")
    rnd.person("u", {RL[0]: 2, RL[1]: 5, RL[3]: 3, RL[6]: 4, RL[7]: 4})  # 18 / 5
    rnd.person("u", {RL[0]: 4, RL[1]: 4, RL[3]: 5, RL[6]: 3, RL[7]: 2})  # 18 / 5
    rnd.person("u", {RL[0]: 3, RL[1]: 3, RL[3]: 1, RL[6]: 5, RL[7]: 5})  # 17 / 5
    rnd.person("u", {RL[0]: 1, RL[1]: 1, RL[3]: 1, RL[4]: 1})  # 2 framing answers, but 4 < 5
    result = scored(rnd)
    rl = "relational_leadership"
    # framing: (7 + 8 + 6) / 6, person values 7/2, 4, 3 (q's two answers do not count)
    assert_published(members(result, rl, "framing"), F(21, 6), [F(7, 2), 4, 3])
    # engaging: one answer each (method 1 needed 2 of 3 for a subscale score): 3, 5, 1
    assert_published(members(result, rl, "engaging"), F(9, 3), [3, 5, 1])
    # involving: (8 + 5 + 10) / 6
    assert_published(members(result, rl, "involving"), F(23, 6), [4, F(5, 2), 5])
    assert_published(members(result, rl, "index"), F(53, 15), [F(18, 5), F(18, 5), F(17, 5)])
    # RL[4] was answered by q only: no counted response, no row
    assert rows(result.unit_scores, measure=RL[4]).height == 0


def test_eligibility_is_decided_per_target() -> None:
    """x1..x3 rate their own unit a fully and answer only 4 of 9 items about b (not eligible
    about b); y1..y3 answer 5 items about b with 2."""
    rnd = Round()
    rnd.unit("a")
    rnd.unit("b")
    about_b = {RC[0]: 5, RC[1]: 4, RC[2]: None, RC[3]: 3, RC[7]: 2, RC[8]: None}
    rnd.people_in("a", 3, about={"a": same(RC, 4), "b": about_b})
    rnd.people_in("a", 3, about={"b": same([RC[0], RC[1], RC[3], RC[7], RC[8]], 2)})
    result = scored(rnd)
    ties = result.tie_scores
    rc = "relational_capacity"

    def tie(measure: str) -> dict[str, object]:
        return row(ties, from_unit="a", to_unit="b", scale=rc, measure=measure)

    # about b only the y's count: the x's 5, 4, 3, 2 would raise every mean below
    assert_published(tie("index"), F(2), [2, 2, 2])
    assert_published(tie("communication"), F(2), [2, 2, 2])  # RC 1-4: 3 answers each
    assert_published(tie("capacity"), F(2), [2, 2, 2])  # RC 8-9: 2 answers each
    assert_published(tie(RC[0]), F(2), [2, 2, 2])
    assert rows(ties, from_unit="a", to_unit="b", measure="relationships").height == 0
    assert rows(ties, from_unit="a", to_unit="b", measure=RC[2]).height == 0
    # about a the x's count
    assert_published(row(ties, from_unit="a", to_unit="a", measure="index"), F(4), [4, 4, 4])
    outgoing = row(result.unit_scores, unit="a", measure="index", perspective="outgoing")
    assert_published(outgoing, F(2), [2, 2, 2])  # three people, not six
    assert result.participation.filter(pl.col("unit") == "a")["respondents"].to_list() == [6]
